-- This run's account per legacy table and tenant: rows in scope, what the run's upserts inserted and
-- updated (migration_run_writes), what it left unchanged, what is quarantined (by reason), and the
-- cross-tenant findings among its calls. Scope as for the reconciliation: every row of the small
-- tables, the calls of the run's window. A legacy row's tenant is its owner's organization (the
-- system tenant for voices and numbers); NULL when it has none.
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{% import "_common.sql" as c with context %}
{%- set window = migration_window() -%}
{%- set stored = catalog | selectattr("lineage", "equalto", "stored") | list -%}
{%- set same_id = catalog | selectattr("lineage", "equalto", "same id") | list -%}
{{ c.serialize_step() }}
-- The quarantine's and the findings' statistics are fresh (see record_reconciliation): the planner
-- knows how few calls they hold.

DELETE FROM {{ c.tgt }}.migration_run_tables
WHERE run_id = {{ c.run }};

INSERT INTO {{ c.tgt }}.migration_run_tables (
    run_id, source_table, target_table, tenant_id, in_scope, inserted, updated, unchanged, rejected,
    rejected_by_reason, cross_tenant_findings
)
-- The small tables, row by row.
WITH legacy AS (
    {%- for table in stored %}
    {{ "UNION ALL" if not loop.first }}
    {{ c.legacy_rows(table, window) }}
    {%- endfor %}
),

-- The calls are many: counted per tenant in one narrow pass, and only the few quarantined (or
-- flagged) ones are looked up by id, never a million ids joined as text.
call_tenants AS (
    {%- for table in same_id %}
    {{ "UNION ALL" if not loop.first }}
    SELECT
        lg.source_table,
        lg.tenant_id,
        count(*) AS in_scope
    FROM ({{ c.legacy_rows(table, window) }}) AS lg
    GROUP BY lg.source_table, lg.tenant_id
    {%- endfor %}
),

call_rejects AS (
    {%- for table in same_id %}
    {{ "UNION ALL" if not loop.first }}
    SELECT
        r.source_table,
        {{ c.tenant_of(table) }} AS tenant_id,
        r.reason
    FROM {{ c.tgt }}.migration_rejects AS r
    INNER JOIN {{ c.src }}.{{ table.source_table }} AS lg ON r.source_id::uuid = lg.id
    {{- c.owner_join(table) }}
    WHERE
        r.source_table = '{{ table.source_table }}'
        {%- if table.window_column %}
        AND {{ c.in_window("lg." ~ table.window_column, window) }}
        {%- endif %}
    {%- endfor %}
),

rejects AS (
    SELECT
        lg.source_table,
        lg.tenant_id,
        r.reason
    FROM legacy AS lg
    INNER JOIN {{ c.tgt }}.migration_rejects AS r
        ON lg.source_table = r.source_table AND lg.source_id = r.source_id
    UNION ALL
    SELECT
        cr.source_table,
        cr.tenant_id,
        cr.reason
    FROM call_rejects AS cr
),

per_tenant AS (
    SELECT
        scope.source_table,
        scope.tenant_id,
        scope.in_scope,
        (
            SELECT count(*) FROM rejects AS r
            WHERE r.source_table = scope.source_table AND r.tenant_id IS NOT DISTINCT FROM scope.tenant_id
        ) AS rejected
    FROM (
        SELECT
            lg.source_table,
            lg.tenant_id,
            count(*) AS in_scope
        FROM legacy AS lg
        GROUP BY lg.source_table, lg.tenant_id
        UNION ALL
        SELECT
            ct.source_table,
            ct.tenant_id,
            ct.in_scope
        FROM call_tenants AS ct
    ) AS scope
),

reasons AS (
    SELECT
        per_reason.source_table,
        per_reason.tenant_id,
        jsonb_object_agg(per_reason.reason, per_reason.n) AS rejected_by_reason
    FROM (
        SELECT
            r.source_table,
            r.tenant_id,
            r.reason,
            count(*) AS n
        FROM rejects AS r
        GROUP BY r.source_table, r.tenant_id, r.reason
    ) AS per_reason
    GROUP BY per_reason.source_table, per_reason.tenant_id
),

writes AS (
    SELECT
        w.source_table,
        w.tenant_id,
        sum(w.inserted) AS inserted,
        sum(w.updated) AS updated
    FROM {{ c.tgt }}.migration_run_writes AS w
    WHERE w.run_id = {{ c.run }}
    GROUP BY w.source_table, w.tenant_id
),

findings AS (
    SELECT
        f.tenant_id,
        count(DISTINCT f.source_id) AS cross_tenant_findings
    FROM {{ c.tgt }}.migration_findings AS f
    INNER JOIN {{ c.src }}.call_logs_voiceagent AS cl ON f.source_id::uuid = cl.id
    WHERE
        f.source_table = 'call_logs_voiceagent'
        AND f.kind LIKE '%\_in\_other\_tenant'
        AND {{ c.in_window("cl.started_at", window) }}
    GROUP BY f.tenant_id
)

SELECT
    {{ c.run }},
    t.source_table,
    t.target_table,
    pt.tenant_id,
    pt.in_scope,
    coalesce(w.inserted, 0) AS inserted,
    coalesce(w.updated, 0) AS updated,
    pt.in_scope - pt.rejected - coalesce(w.inserted, 0) - coalesce(w.updated, 0) AS unchanged,
    pt.rejected,
    coalesce(reasons.rejected_by_reason, '{}'::jsonb) AS rejected_by_reason,
    CASE WHEN t.source_table = 'call_logs_voiceagent' THEN coalesce(f.cross_tenant_findings, 0) ELSE 0 END
FROM {{ c.migrated_tables() }}
INNER JOIN per_tenant AS pt ON t.source_table = pt.source_table
LEFT JOIN writes AS w ON pt.source_table = w.source_table AND pt.tenant_id IS NOT DISTINCT FROM w.tenant_id
LEFT JOIN reasons
    ON pt.source_table = reasons.source_table AND pt.tenant_id IS NOT DISTINCT FROM reasons.tenant_id
LEFT JOIN findings AS f ON pt.tenant_id = f.tenant_id;
