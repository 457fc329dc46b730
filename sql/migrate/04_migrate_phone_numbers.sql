-- Migrates numbers_voiceagent into phone_numbers: stages its mapping (sql/mapping/phone_numbers.sql), upserts the rows
-- that land (counting the writes), and records lineage and quarantine.
{% import "_common.sql" as c with context %}
{%- set table = catalog_table("numbers_voiceagent") %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
{% include "mapping/phone_numbers.sql" %};  -- noqa: CV06

-- A target id the application holds is never written: its legacy row is quarantined instead.
{{ c.quarantine_held_targets(table, "staged") }};

-- What the migration wrote that no legacy row maps onto any more leaves the target (deletion valve first).
{{ c.remove_unmapped(table, "staged") }};

-- A phone moving between the migration's own numbers (two numbers swapping phones) is freed first: the
-- unique phone cannot be held twice even for a moment. The upsert below gives each its new phone.
UPDATE {{ c.tgt }}.phone_numbers AS t
SET phone_number = 'moving:' || t.id::text
FROM staged AS s
WHERE
    s.reason IS NULL
    AND t.id = s.target_id::uuid
    AND t.phone_number <> s.phone_number
    AND EXISTS (
        SELECT 1 FROM staged AS other
        WHERE
            other.reason IS NULL
            AND other.phone_number = t.phone_number
            AND other.target_id <> s.target_id  -- noqa: RF01
    );

{% call c.counted_upsert(table.source_table, staged="staged") %}
    INSERT INTO {{ c.tgt }}.phone_numbers AS t (
        id, tenant_id, phone_number, provider, number_type, capabilities, is_active, metadata,
        created_at, updated_at
    )
    SELECT
        s.target_id::uuid,
        {{ c.system_tenant }},
        s.phone_number,
        s.provider,
        s.number_type,
        '["voice"]'::jsonb,
        s.is_active,
        s.metadata,
        s.created_at,
        (now() AT TIME ZONE 'UTC')
    FROM staged AS s
    WHERE s.reason IS NULL
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "phone_number", "provider", "number_type",
        "capabilities", "is_active", "metadata", "created_at"]) }}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %};

{{ c.record_outcome(table, "staged") }};

{{ c.record_orphans(table) }};

-- The table's account, in this step's snapshot.
{{ c.record_scope(table, None) }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
