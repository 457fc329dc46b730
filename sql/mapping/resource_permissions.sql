-- Legacy organization grants become resource_permissions ("Option 2"); grants on numbers follow the
-- number to its new uuid. Grants for an unknown organization or resource are quarantined.
-- The guide's mapping, column by column; `reason` is why a row is quarantined instead (NULL:
-- it lands). Staged and written by sql/migrate/08_migrate_resource_permissions.sql.
{% import "_common.sql" as c with context %}
SELECT
    mapped.*,
    CASE
        WHEN mapped.tenant_id IS NULL THEN 'organization_missing'
        WHEN NOT EXISTS (
            SELECT 1 FROM {{ c.tgt }}.tenants AS t
            WHERE t.id = mapped.tenant_id
        ) THEN 'organization_not_found'
        WHEN mapped.resource_type IS NULL OR mapped.resource_id IS NULL THEN 'resource_missing'
        {{ c.too_long("mapped.resource_type", 20, "resource_type") }}
        {{ c.too_long("mapped.resource_id", 100, "resource_id") }}
        {{ c.too_long("mapped.access_level", 20, "access_level") }}
        {{ c.too_long("mapped.granted_by", 100, "granted_by") }}
    END AS reason
FROM (
    SELECT
        p.id::text AS source_id,
        {{ c.stable_uuid("org_permissions_voiceagent", "p.id::text") }}::text AS target_id,
        to_jsonb(p) AS source_row,
        p.organization_id AS tenant_id,
        lower(btrim(p.resource_type)) AS resource_type,
        CASE
            WHEN lower(btrim(p.resource_type)) = 'number' THEN number_map.target_id
            ELSE p.resource_id::text
        END AS resource_id,
        coalesce(p.access_level, 'use') AS access_level,
        (p.granted_at AT TIME ZONE 'UTC') AS granted_at,
        p.granted_by,
        (p.expires_at AT TIME ZONE 'UTC') AS expires_at,
        coalesce(p.is_active, TRUE) AS is_active
    FROM {{ c.src }}.org_permissions_voiceagent AS p
    LEFT JOIN {{ c.tgt }}.migration_lineage AS number_map
        ON number_map.source_table = 'numbers_voiceagent' AND p.resource_id::text = number_map.source_id
) AS mapped
