-- What a dry run would do, per legacy table: the run's own account (record_run_account), recorded by
-- the steps inside the dry run's single transaction just before it is rolled back, and the tenants,
-- derived from the users' organizations (a tenant this transaction wrote carries its xmin; it was an
-- update if it existed before the steps ran: dry_run_before.sql).
-- Rows in scope: every row of the small tables, the calls of the run's window (all without one).
{% import "_common.sql" as c with context %}
WITH tenants AS (
    SELECT
        0 AS position,
        'users_voiceagent.organization_id' AS source_table,
        'tenants' AS target_table,
        count(*) AS in_scope,
        count(*) FILTER (WHERE t.xmin = pg_current_xact_id()::xid AND before.id IS NULL) AS would_insert,
        count(*) FILTER (WHERE t.xmin = pg_current_xact_id()::xid AND before.id IS NOT NULL) AS would_update,
        count(*) FILTER (WHERE t.xmin <> pg_current_xact_id()::xid) AS unchanged,
        0 AS would_reject,
        0 AS would_delete,
        count(*) FILTER (WHERE t.id IS NULL) AS missing,
        '' AS rejected_by_reason
    FROM (
        SELECT DISTINCT organization_id FROM {{ c.src }}.users_voiceagent
        WHERE organization_id IS NOT NULL
    ) AS lg
    LEFT JOIN {{ c.tgt }}.tenants AS t ON lg.organization_id = t.id
    LEFT JOIN dry_run_tenants_before AS before ON t.id = before.id
),

legacy_tables AS (
    SELECT
        recon.position,
        recon.source_table,
        recon.target_table,
        recon.legacy_rows AS in_scope,
        coalesce(sum(a.inserted), 0)::bigint AS would_insert,
        coalesce(sum(a.updated), 0)::bigint AS would_update,
        coalesce(sum(a.unchanged), 0)::bigint AS unchanged,
        recon.rejected AS would_reject,
        recon.deleted AS would_delete,
        recon.missing,
        recon.rejected_by_reason
    FROM {{ c.tgt }}.migration_reconciliation AS recon
    LEFT JOIN {{ c.tgt }}.migration_run_tables AS a
        ON recon.run_id = a.run_id AND recon.source_table = a.source_table
    WHERE recon.run_id = {{ c.run }}
    GROUP BY
        recon.position, recon.source_table, recon.target_table, recon.legacy_rows, recon.rejected,
        recon.deleted, recon.missing, recon.rejected_by_reason
)

SELECT
    source_table,
    target_table,
    in_scope,
    would_insert,
    would_update,
    unchanged,
    would_reject,
    would_delete,
    missing,
    rejected_by_reason
FROM (
    SELECT * FROM tenants
    UNION ALL
    SELECT * FROM legacy_tables
) AS report
ORDER BY position
