-- Legacy organization grants become resource_permissions ("Option 2"); grants on numbers follow the
-- number to its new uuid. Grants for an unknown organization or resource are quarantined.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
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
) AS mapped;

{% call c.counted_upsert("org_permissions_voiceagent", staged="staged") %}
    INSERT INTO {{ c.tgt }}.resource_permissions AS t (
        id, tenant_id, resource_type, resource_id, access_level, granted_at, granted_by, expires_at, is_active
    )
    SELECT
        s.target_id::uuid,
        s.tenant_id,
        s.resource_type,
        s.resource_id,
        s.access_level,
        s.granted_at,
        s.granted_by,
        s.expires_at,
        s.is_active
    FROM staged AS s
    WHERE s.reason IS NULL
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "resource_type", "resource_id", "access_level",
        "granted_at", "granted_by", "expires_at", "is_active"], touch=False) }}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %};

{{ c.record_outcome("org_permissions_voiceagent", "resource_permissions", staged="staged") }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
