-- Migrates org_permissions_voiceagent into resource_permissions: stages its mapping
-- (sql/mapping/resource_permissions.sql), upserts the rows that land (counting the writes), and
-- records lineage and quarantine.
{% import "_common.sql" as c with context %}
{%- set table = catalog_table("org_permissions_voiceagent") %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
{% include "mapping/resource_permissions.sql" %};  -- noqa: CV06

-- A target id the application holds is never written: its legacy row is quarantined instead.
{{ c.quarantine_held_targets(table, "staged") }};

-- What the migration wrote that no legacy row maps onto any more leaves the target (deletion valve first).
{{ c.remove_unmapped(table, "staged") }};

{% call c.counted_upsert(table.source_table, staged="staged") %}
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

{{ c.record_outcome(table, "staged") }};

{{ c.record_orphans(table) }};

-- The table's account, in this step's snapshot.
{{ c.record_scope(table, None) }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
