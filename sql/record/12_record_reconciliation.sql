-- Records, per legacy table: rows, landed (in the id map), rejected (in the quarantine, by reason),
-- and the rows that break conservation (in neither, or in both). Computed once per run, from the
-- legacy tables, the lineage, voice_calls and the quarantine; read by check_conservation and the
-- reconciliation report. Scoped to the run: the small tables whole (every run brings them up to
-- date), the calls of the run's window (all of them when it has none).
{% import "_common.sql" as c with context %}

{#- For a windowed run: the rejected call is one of the window's. -#}
{%- macro call_in_window(call_id) -%}
{{ "" if not c.window else " AND EXISTS (SELECT 1 FROM " ~ c.src ~ ".call_logs_voiceagent AS cl WHERE cl.id = "
    ~ call_id ~ " AND " ~ c.in_window("cl.started_at") ~ ")" }}
{%- endmacro -%}

{{ c.serialize_step() }}
-- A pass over every legacy row: hash joins only. The quarantine and the findings may have grown by
-- thousands of rows in this run, unseen by autovacuum yet: analyse them first, or the planner may
-- pick a nested loop over them against a million calls, which takes minutes.
SET LOCAL enable_nestloop = off;
ANALYZE {{ c.tgt }}.migration_rejects, {{ c.tgt }}.migration_findings, {{ c.tgt }}.migration_lineage;

DELETE FROM {{ c.tgt }}.migration_reconciliation
WHERE run_id = {{ c.run }};

INSERT INTO {{ c.tgt }}.migration_reconciliation (
    run_id, window_start, window_end, position, source_table, target_table, legacy_rows, landed, rejected,
    missing, doubled, unbalanced_ids, rejected_by_reason
)
WITH legacy AS (
    SELECT
        'voices_voiceagent' AS source_table,
        id::text AS source_id
    FROM {{ c.src }}.voices_voiceagent
    UNION ALL
    SELECT
        'numbers_voiceagent',
        id::text
    FROM {{ c.src }}.numbers_voiceagent
    UNION ALL
    SELECT
        'agents_voiceagent',
        id::text
    FROM {{ c.src }}.agents_voiceagent
    UNION ALL
    SELECT
        'leads_voiceagent',
        id::text
    FROM {{ c.src }}.leads_voiceagent
    UNION ALL
    SELECT
        'org_permissions_voiceagent',
        id::text
    FROM {{ c.src }}.org_permissions_voiceagent
),

small_tables AS (
    SELECT
        lg.source_table,
        count(*) AS legacy_rows,
        count(m.source_id) AS landed,
        count(r.source_id) AS rejected,
        count(*) FILTER (WHERE m.source_id IS NULL AND r.source_id IS NULL) AS missing,
        count(*) FILTER (WHERE m.source_id IS NOT NULL AND r.source_id IS NOT NULL) AS doubled,
        (
            array_agg(lg.source_id ORDER BY lg.source_id)
            FILTER (WHERE (m.source_id IS NULL) = (r.source_id IS NULL))
        )[1:5
        ] AS unbalanced_ids
    FROM legacy AS lg
    LEFT JOIN {{ c.tgt }}.migration_lineage AS m
        ON lg.source_table = m.source_table AND lg.source_id = m.source_id
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON lg.source_table = r.source_table AND lg.source_id = r.source_id
    GROUP BY lg.source_table
),

calls AS (
    SELECT
        'call_logs_voiceagent' AS source_table,
        count(*) AS legacy_rows,
        count(vc.id) AS landed,
        count(r.source_id) AS rejected,
        count(*) FILTER (WHERE vc.id IS NULL AND r.source_id IS NULL) AS missing,
        count(*) FILTER (WHERE vc.id IS NOT NULL AND r.source_id IS NOT NULL) AS doubled,
        (
            array_agg(cl.id::text ORDER BY cl.id)
            FILTER (WHERE (vc.id IS NULL) = (r.source_id IS NULL))
        )[1:5
        ] AS unbalanced_ids
    FROM {{ c.src }}.call_logs_voiceagent AS cl
    LEFT JOIN {{ c.tgt }}.voice_calls AS vc ON cl.id = vc.id
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'call_logs_voiceagent' AND cl.id::text = r.source_id
    WHERE {{ c.in_window("cl.started_at") }}
),

in_scope_rejects AS (
    SELECT
        r.source_table,
        r.reason
    FROM {{ c.tgt }}.migration_rejects AS r
    WHERE r.source_table <> 'call_logs_voiceagent'
    UNION ALL
    SELECT
        r.source_table,
        r.reason
    FROM {{ c.tgt }}.migration_rejects AS r
    WHERE r.source_table = 'call_logs_voiceagent'{{ call_in_window("r.source_id::uuid") }}
),

reasons AS (
    SELECT
        source_table,
        string_agg(reason || '=' || n, ', ' ORDER BY reason) AS rejected_by_reason
    FROM (
        SELECT
            source_table,
            reason,
            count(*) AS n
        FROM in_scope_rejects
        GROUP BY source_table, reason
    ) AS per_reason
    GROUP BY source_table
)

SELECT
    {{ c.run }},
    {{ c.window.start_sql if c.window else "NULL" }},
    {{ c.window.end_sql if c.window else "NULL" }},
    t.position,
    t.source_table,
    t.target_table,
    coalesce(s.legacy_rows, 0)::integer AS legacy_rows,
    coalesce(s.landed, 0)::integer AS landed,
    coalesce(s.rejected, 0)::integer AS rejected,
    coalesce(s.missing, 0)::integer AS missing,
    coalesce(s.doubled, 0)::integer AS doubled,
    coalesce(array_to_string(s.unbalanced_ids, ' '), '') AS unbalanced_ids,
    coalesce(reasons.rejected_by_reason, '') AS rejected_by_reason
FROM {{ c.migrated_tables() }}
LEFT JOIN (
    SELECT * FROM small_tables
    UNION ALL
    SELECT * FROM calls
) AS s
    ON t.source_table = s.source_table
LEFT JOIN reasons ON t.source_table = reasons.source_table;
