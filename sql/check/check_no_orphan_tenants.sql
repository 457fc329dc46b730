-- Passes when no migrated row references a NULL or missing tenant (NULL-safe, unlike NOT IN).
{% import "_common.sql" as c with context %}
WITH tenant_refs AS (
    SELECT
        'voices' AS table_name,
        id::text AS row_id,
        tenant_id
    FROM {{ c.tgt }}.voices
    UNION ALL
    SELECT
        'phone_numbers',
        id::text,
        tenant_id
    FROM {{ c.tgt }}.phone_numbers
    UNION ALL
    SELECT
        'voice_agents',
        id::text,
        tenant_id
    FROM {{ c.tgt }}.voice_agents
    UNION ALL
    SELECT
        'resource_permissions',
        id::text,
        tenant_id
    FROM {{ c.tgt }}.resource_permissions
    UNION ALL
    SELECT
        'voice_calls',
        id::text,
        tenant_id
    FROM {{ c.tgt }}.voice_calls
    UNION ALL
    -- The main application's own leads are not the migration's to judge: only the migrated ones.
    SELECT
        'leads',
        ld.id::text,
        ld.tenant_id
    FROM {{ c.tgt }}.leads AS ld
    WHERE ld.id IN (
        SELECT m.target_id::uuid FROM {{ c.tgt }}.migration_lineage AS m
        WHERE m.source_table = 'leads_voiceagent'
    )
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
