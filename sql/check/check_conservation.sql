-- Passes when every legacy row of every table of the catalog is landed or rejected, exactly once, as
-- recorded by this run's record_run_account step (which must have recorded every table). A row written
-- after the run's snapshot and not taken yet is pending (the next run's), not missing.
{% import "_common.sql" as c with context %}
SELECT
    coalesce(bool_and(recon.missing = 0 AND recon.doubled = 0), FALSE)
    AND count(*) = {{ catalog | length }} AS conserved,
    CASE
        WHEN count(*) <> {{ catalog | length }}
            THEN format('the reconciliation recorded %s of the catalog''s {{ catalog | length }} tables; ', count(*))
        ELSE ''
    END
    || coalesce(string_agg(
        format(
            '%s: legacy=%s landed=%s rejected=%s pending=%s missing=%s doubled=%s%s',
            recon.source_table, recon.legacy_rows, recon.landed, recon.rejected, recon.pending, recon.missing,
            recon.doubled,
            CASE WHEN recon.unbalanced_ids <> '' THEN ' e.g. ' || recon.unbalanced_ids ELSE '' END
        ),
        '; '
    ), '') AS detail
FROM (
{% include "report/reconciliation.sql" %}
) AS recon
