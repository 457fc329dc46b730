-- The reconciliation recorded by this run's record_run_account step, one row per legacy table.
{% import "_common.sql" as c with context %}
SELECT
    source_table,
    target_table,
    legacy_rows,
    landed,
    rejected,
    pending,
    deleted,
    missing,
    doubled,
    unbalanced_ids,
    rejected_by_reason
FROM {{ c.tgt }}.migration_reconciliation
WHERE run_id = {{ c.run }}
ORDER BY position
