-- Passes when the migration's rows and the legacy rows behind them match one to one:
-- - no row the migration wrote is left without a legacy row behind it: what each step found in its
--   own transaction (migration_run_lineage), so a legacy row deleted after the step is the next
--   run's, not a failure; every table of the catalog must have been recorded by this run;
-- - every lineage row and id the migration wrote still has its target row;
-- - no row the migration wrote is a second target row of a legacy row (a copy left behind: a row
--   carrying the migration's marker that no lineage points at, unless the application took it over);
-- - no row the application owns was written by the migration (a row a legacy row is linked onto, or
--   quarantined for, is not the migration's).
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{% import "_common.sql" as c with context %}
{#- A target row `t` the application has not taken over (a finding of the leads step). -#}
{%- macro not_taken_over(table) -%}
NOT EXISTS (
            SELECT 1 FROM {{ c.tgt }}.migration_findings AS f
            WHERE
                f.kind = 'taken_over_by_application'
                AND f.source_table = '{{ table.source_table }}'
                AND f.referenced_id = t.id::text
        )
{%- endmacro %}
WITH recorded AS (
    SELECT
        t.source_table,
        sum(l.orphaned) AS orphaned,
        string_agg(nullif(l.example_ids, ''), ' ') AS example_ids,
        count(l.run_id) AS records
    FROM {{ c.migrated_tables() }}
    LEFT JOIN {{ c.tgt }}.migration_run_lineage AS l
        ON l.run_id = {{ c.run }} AND t.source_table = l.source_table
    GROUP BY t.source_table
),

problems AS (
    SELECT
        r.source_table,
        CASE
            WHEN r.records = 0 THEN 'no step of this run recorded its lineage'
            ELSE format('%s rows the migration wrote have no legacy row behind them e.g. %s', r.orphaned, r.example_ids)
        END AS problem
    FROM recorded AS r
    WHERE r.records = 0 OR r.orphaned > 0
    {%- for table in catalog %}
    UNION ALL
    SELECT
        '{{ table.source_table }}',
        format('%s rows the migration wrote are gone from {{ table.target_table }} e.g. %s', count(*),
            array_to_string((array_agg(lost.id ORDER BY lost.id))[1:5], ' '))
    FROM (
        {%- if table.owned_ids %}
        SELECT written.id::text AS id
        FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
        WHERE NOT EXISTS (
            SELECT 1 FROM {{ c.tgt }}.{{ table.target_table }} AS t
            WHERE t.id = written.id
        )
        {%- else %}
        SELECT m.source_id AS id
        FROM {{ c.tgt }}.migration_lineage AS m
        WHERE
            m.source_table = '{{ table.source_table }}'
            AND NOT EXISTS (
                SELECT 1 FROM {{ c.tgt }}.{{ table.target_table }} AS t
                WHERE t.id::text = m.target_id
            )
        {%- endif %}
    ) AS lost
    HAVING count(*) > 0
    {%- if table.rollback_only %}
    UNION ALL
    SELECT
        '{{ table.source_table }}',
        format(
            '%s rows of {{ table.target_table }} the migration wrote have no legacy row (copies left behind) e.g. %s',
            count(*), array_to_string((array_agg(t.id::text ORDER BY t.id::text))[1:5], ' '))
    FROM {{ c.tgt }}.{{ table.target_table }} AS t
    WHERE
        {{ table.rollback_only }}
        AND NOT EXISTS (
            SELECT 1 FROM {{ c.tgt }}.migration_lineage AS m
            WHERE m.target_table = '{{ table.target_table }}' AND m.target_id = t.id::text AND NOT m.linked
        )
        AND {{ not_taken_over(table) }}
    HAVING count(*) > 0
    UNION ALL
    SELECT
        '{{ table.source_table }}',
        format('%s application rows of {{ table.target_table }} were written by the migration e.g. %s',
            count(*), array_to_string((array_agg(t.id::text ORDER BY t.id::text))[1:5], ' '))
    FROM {{ c.tgt }}.{{ table.target_table }} AS t
    INNER JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.target_table = '{{ table.target_table }}' AND t.id::text = m.target_id AND m.linked
    WHERE
        {{ table.rollback_only }}
        AND {{ not_taken_over(table) }}
    HAVING count(*) > 0
    {%- endif %}
    {%- endfor %}
    UNION ALL
    SELECT
        r.source_table,
        format('%s legacy rows quarantined as target_id_held_by_application point at a row the migration wrote e.g. %s',
            count(*), array_to_string((array_agg(r.source_id ORDER BY r.source_id))[1:5], ' '))
    FROM {{ c.tgt }}.migration_rejects AS r
    INNER JOIN {{ c.tgt }}.migration_lineage AS m
        ON r.source_table = m.source_table AND m.target_id = r.source_row ->> 'id' AND NOT m.linked
    WHERE r.reason = 'target_id_held_by_application'
    GROUP BY r.source_table
)

SELECT
    count(*) = 0 AS lineage_matches,
    coalesce(
        string_agg(format('%s: %s', p.source_table, p.problem), '; ' ORDER BY p.source_table),
        format('%s legacy tables: every migrated row has its legacy row and no other', {{ catalog | length }})
    ) AS detail
FROM problems AS p
