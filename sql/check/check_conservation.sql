-- Passes when every legacy row of every migrated table is landed or rejected, exactly once, as
-- recorded by this run's record_reconciliation step.
SELECT
    bool_and(recon.missing = 0 AND recon.doubled = 0) AS conserved,
    string_agg(
        format(
            '%s: legacy=%s landed=%s rejected=%s missing=%s doubled=%s%s',
            recon.source_table, recon.legacy_rows, recon.landed, recon.rejected, recon.missing, recon.doubled,
            CASE WHEN recon.unbalanced_ids <> '' THEN ' e.g. ' || recon.unbalanced_ids ELSE '' END
        ),
        '; '
    ) AS detail
FROM (
{% include "report/reconciliation.sql" %}
) AS recon
