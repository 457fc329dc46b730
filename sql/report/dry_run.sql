-- What a dry run would do, per legacy table. Runs at the end of the dry run's single transaction,
-- after every migration step, before the rollback: a target row this transaction wrote carries its
-- xmin, and it was an update if its id was there before the steps ran (dry_run_before.sql).
-- Rows in scope: every row of the small tables, the calls of the run's window (all without one).
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{% import "_common.sql" as c with context %}
{%- set window = migration_window() %}
WITH this_transaction AS (
    SELECT pg_current_xact_id()::xid AS xid
),

outcome AS (
    SELECT
        'users_voiceagent.organization_id' AS source_table,
        'tenants' AS target_table,
        t.xmin AS row_xmin,
        t.id::text AS row_id,
        NULL AS reason
    FROM (
        SELECT DISTINCT organization_id FROM {{ c.src }}.users_voiceagent
        WHERE organization_id IS NOT NULL
    ) AS lg
    LEFT JOIN {{ c.tgt }}.tenants AS t ON lg.organization_id = t.id
    {%- for table in catalog %}
    UNION ALL
    SELECT
        '{{ table.source_table }}',
        '{{ table.target_table }}',
        t.xmin,
        t.id::text,
        r.reason
    FROM ({{ c.legacy_rows(table, window) }}) AS lg
    {%- if table.lineage == "stored" %}
    LEFT JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.source_table = '{{ table.source_table }}' AND lg.source_id = m.source_id
    LEFT JOIN {{ c.tgt }}.{{ table.target_table }} AS t ON m.target_id = t.id::text
    {%- else %}
    LEFT JOIN {{ c.tgt }}.{{ table.target_table }} AS t ON lg.source_id = t.id::text
    {%- endif %}
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = '{{ table.source_table }}' AND lg.source_id = r.source_id
    {%- endfor %}
),

classified AS (
    SELECT
        o.source_table,
        o.reason,
        CASE
            WHEN o.reason IS NOT NULL THEN 'rejected'
            WHEN o.row_xmin IS NULL THEN 'missing'
            WHEN o.row_xmin <> tx.xid THEN 'unchanged'
            WHEN existing.id IS NULL THEN 'inserted'
            ELSE 'updated'
        END AS outcome
    FROM outcome AS o
    CROSS JOIN this_transaction AS tx
    LEFT JOIN dry_run_existing AS existing
        ON o.target_table = existing.target_table AND o.row_id = existing.id
),

reasons AS (
    SELECT
        per_reason.source_table,
        string_agg(per_reason.reason || '=' || per_reason.n, ', ' ORDER BY per_reason.reason) AS rejected_by_reason
    FROM (
        SELECT
            cl.source_table,
            cl.reason,
            count(*) AS n
        FROM classified AS cl
        WHERE cl.reason IS NOT NULL
        GROUP BY cl.source_table, cl.reason
    ) AS per_reason
    GROUP BY per_reason.source_table
)

SELECT
    t.source_table,
    t.target_table,
    count(cl.outcome) AS in_scope,
    count(*) FILTER (WHERE cl.outcome = 'inserted') AS would_insert,
    count(*) FILTER (WHERE cl.outcome = 'updated') AS would_update,
    count(*) FILTER (WHERE cl.outcome = 'unchanged') AS unchanged,
    count(*) FILTER (WHERE cl.outcome = 'rejected') AS would_reject,
    count(*) FILTER (WHERE cl.outcome = 'missing') AS missing,
    coalesce(min(reasons.rejected_by_reason), '') AS rejected_by_reason
FROM {{ c.migrated_tables(with_tenants=True) }}
LEFT JOIN classified AS cl ON t.source_table = cl.source_table
LEFT JOIN reasons ON t.source_table = reasons.source_table
GROUP BY t.position, t.source_table, t.target_table
ORDER BY t.position
