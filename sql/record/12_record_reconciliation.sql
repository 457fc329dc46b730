-- Records, per legacy table: rows, landed (in the id map), rejected (in the quarantine, by reason),
-- and the rows that break conservation (in neither, or in both). Computed once per run, from the
-- legacy tables, the lineage, voice_calls and the quarantine; read by check_conservation and the
-- reconciliation report. Scoped to the run: the small tables whole (every run brings them up to
-- date), the calls of the run's window (all of them when it has none).
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{% import "_common.sql" as c with context %}
{%- set window = migration_window() -%}
{%- set windowed = catalog | selectattr("window_column") | map(attribute="source_table") | list -%}

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
-- The tables with stored lineage, row by row.
WITH legacy AS (
    {%- for table in catalog if table.lineage == "stored" %}
    {{ "UNION ALL" if not loop.first }}
    SELECT
        lg.source_table,
        lg.source_id
    FROM ({{ c.legacy_rows(table, window) }}) AS lg
    {%- endfor %}
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

-- The tables whose rows keep their legacy id (the calls): the target table is the id map.
same_id AS (
    {%- for table in catalog if table.lineage == "same id" %}
    {{ "UNION ALL" if not loop.first }}
    SELECT
        '{{ table.source_table }}' AS source_table,
        count(*) AS legacy_rows,
        count(landed.id) AS landed,
        count(r.source_id) AS rejected,
        count(*) FILTER (WHERE landed.id IS NULL AND r.source_id IS NULL) AS missing,
        count(*) FILTER (WHERE landed.id IS NOT NULL AND r.source_id IS NOT NULL) AS doubled,
        (
            array_agg(lg.id::text ORDER BY lg.id)
            FILTER (WHERE (landed.id IS NULL) = (r.source_id IS NULL))
        )[1:5
        ] AS unbalanced_ids
    FROM {{ c.src }}.{{ table.source_table }} AS lg
    LEFT JOIN {{ c.tgt }}.{{ table.target_table }} AS landed ON lg.id = landed.id
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = '{{ table.source_table }}' AND lg.id::text = r.source_id
    {%- if table.window_column %}
    WHERE {{ c.in_window("lg." ~ table.window_column, window) }}
    {%- endif %}
    {%- endfor %}
),

-- The quarantined rows in the run's scope (of a windowed table: its window's).
in_scope_rejects AS (
    SELECT
        r.source_table,
        r.reason
    FROM {{ c.tgt }}.migration_rejects AS r
    WHERE r.source_table NOT IN ({{ windowed | map("sql_literal") | join(", ") }})
    {%- for table in catalog if table.window_column %}
    UNION ALL
    SELECT
        r.source_table,
        r.reason
    FROM {{ c.tgt }}.migration_rejects AS r
    WHERE
        r.source_table = '{{ table.source_table }}'
        {%- if window %}
        AND EXISTS (
            SELECT 1 FROM {{ c.src }}.{{ table.source_table }} AS lg
            WHERE lg.id = r.source_id::uuid AND {{ c.in_window("lg." ~ table.window_column, window) }}
        )
        {%- endif %}
    {%- endfor %}
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
    {{ window.start_sql if window else "NULL" }},
    {{ window.end_sql if window else "NULL" }},
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
    SELECT * FROM same_id
) AS s
    ON t.source_table = s.source_table
LEFT JOIN reasons ON t.source_table = reasons.source_table;
