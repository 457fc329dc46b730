-- This run's account per legacy table and tenant (recorded by record_run_account), for sign-off.
{% import "_common.sql" as c with context %}
SELECT
    d.source_table,
    coalesce(d.tenant_id::text, '(none)') AS tenant_id,
    d.in_scope,
    d.inserted,
    d.updated,
    d.unchanged,
    d.rejected,
    d.pending,
    d.deleted,
    coalesce(
        (
            SELECT string_agg(reason.key || '=' || reason.value, ', ' ORDER BY reason.key)
            FROM jsonb_each_text(d.rejected_by_reason) AS reason
        ),
        ''
    ) AS rejected_by_reason,
    d.cross_tenant_findings
FROM {{ c.tgt }}.migration_run_tables AS d
INNER JOIN {{ c.migrated_tables() }} ON d.source_table = t.source_table
WHERE d.run_id = {{ c.run }}
ORDER BY t.position, d.tenant_id NULLS LAST
