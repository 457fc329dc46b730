-- Passes when no migrated row references a NULL or missing tenant (NULL-safe, unlike NOT IN).
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{% import "_common.sql" as c with context %}
-- Every table of the catalog; where the application keeps rows of its own (leads), those are not the
-- migration's to judge: only the migrated ones.
WITH tenant_refs AS (
    {%- for table in catalog %}
    {{ "UNION ALL" if not loop.first }}
    SELECT
        '{{ table.target_table }}' AS table_name,
        t.id::text AS row_id,
        t.tenant_id
    FROM {{ c.tgt }}.{{ table.target_table }} AS t
    {%- if table.application_rows %}
    WHERE t.id::text IN (
        SELECT m.target_id FROM {{ c.tgt }}.migration_lineage AS m
        WHERE m.source_table = '{{ table.source_table }}'
    )
    {%- endif %}
    {%- endfor %}
),

orphans AS (
    SELECT
        r.table_name,
        count(*) AS orphan_rows,
        (array_agg(coalesce(r.row_id, '?') ORDER BY r.row_id))[1:5] AS sample_ids
    FROM tenant_refs AS r
    WHERE
        r.tenant_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM {{ c.tgt }}.tenants AS t
            WHERE t.id = r.tenant_id
        )
    GROUP BY r.table_name
),

-- Caches may hold NULL tenant_ids (rows the application has not assigned yet), never unknown ones.
cache_orphans AS (
    SELECT
        caches.cache_name AS table_name,
        {{ c.tgt }}.migration_unknown_tenant_refs(caches.rel) AS orphan_rows
    FROM (
        SELECT
            cache_name,
            to_regclass(format('%I.%I', {{ params.target_schema | sql_literal }}, cache_name)) AS rel
        FROM (VALUES ('company_search_cache'), ('employees_cache')) AS names (cache_name)
    ) AS caches
    WHERE caches.rel IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_attribute AS att
        WHERE att.attrelid = caches.rel AND att.attname = 'tenant_id' AND NOT att.attisdropped
    )
),

found AS (
    SELECT
        table_name,
        orphan_rows,
        array_to_string(sample_ids, ' ') AS sample_ids
    FROM orphans
    UNION ALL
    SELECT
        table_name,
        orphan_rows,
        ''
    FROM cache_orphans
    WHERE orphan_rows > 0
)

SELECT
    count(*) = 0 AS no_orphans,
    coalesce(
        string_agg(format('%s: %s rows without a valid tenant e.g. %s', table_name, orphan_rows, sample_ids), '; '),
        'every tenant reference resolves'
    ) AS detail
FROM found
