-- Migrates voices_voiceagent into voices: stages its mapping (sql/mapping/voices.sql), upserts the rows
-- that land (counting the writes), and records lineage and quarantine.
{% import "_common.sql" as c with context %}
{%- set table = catalog_table("voices_voiceagent") %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
{% include "mapping/voices.sql" %};  -- noqa: CV06

-- A target id the application holds is never written: its legacy row is quarantined instead.
{{ c.quarantine_held_targets(table, "staged") }};

-- What the migration wrote that no legacy row maps onto any more leaves the target (deletion valve first).
{{ c.remove_unmapped(table, "staged") }};

{% call c.counted_upsert(table.source_table, staged="staged") %}
    INSERT INTO {{ c.tgt }}.voices AS t (
        id, tenant_id, voice_name, description, voice_sample_url, provider, language, gender,
        is_active, metadata, created_at, updated_at
    )
    SELECT
        s.target_id,
        {{ c.system_tenant }},
        s.voice_name,
        s.description,
        s.voice_sample_url,
        s.provider,
        'en',
        s.gender,
        TRUE,
        s.metadata,
        (now() AT TIME ZONE 'UTC'),
        (now() AT TIME ZONE 'UTC')
    FROM staged AS s
    WHERE s.reason IS NULL
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "voice_name", "description", "voice_sample_url",
        "provider", "language", "gender", "is_active", "metadata"]) }}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %};

{{ c.record_outcome(table, "staged") }};

{{ c.record_orphans(table) }};

-- The table's account, in this step's snapshot.
{{ c.record_scope(table, None) }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
