-- Migrates agents_voiceagent into voice_agents: stages its mapping (sql/mapping/voice_agents.sql), upserts the rows
-- that land (counting the writes), and records lineage and quarantine.
-- The id sequence is left past the highest migrated id so the application's next insert fits.
{% import "_common.sql" as c with context %}
{%- set table = catalog_table("agents_voiceagent") %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
{% include "mapping/voice_agents.sql" %};  -- noqa: CV06

-- A target id the application holds is never written: its legacy row is quarantined instead.
{{ c.quarantine_held_targets(table, "staged") }};

-- What the migration wrote that no legacy row maps onto any more leaves the target (deletion valve first).
{{ c.remove_unmapped(table, "staged") }};

{% call c.counted_upsert(table.source_table, staged="staged") %}
    INSERT INTO {{ c.tgt }}.voice_agents AS t (
        id, tenant_id, agent_name, agent_language, voice_id, is_active, metadata, created_at, updated_at
    )
    SELECT
        s.legacy_id::integer,
        s.organization_id,
        s.agent_name,
        s.agent_language,
        s.voice_id,
        TRUE,
        s.metadata,
        s.created_at,
        (now() AT TIME ZONE 'UTC')
    FROM staged AS s
    WHERE s.reason IS NULL
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "agent_name", "agent_language", "voice_id",
        "is_active", "metadata", "created_at"]) }}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %};

{{ c.record_outcome(table, "staged") }};

{{ c.record_orphans(table) }};

-- The table's account, in this step's snapshot.
{{ c.record_scope(table, None) }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;

-- Explicit ids do not advance a serial: move it past them (never backwards). Not in a dry run:
-- setval is never rolled back.
-- noqa: disable=LT02
{% if not params.dry_run -%}
SELECT setval(seq.id, top.max_id)
FROM (SELECT pg_get_serial_sequence('{{ c.tgt }}.voice_agents', 'id')::regclass AS id) AS seq
CROSS JOIN (SELECT max(id) AS max_id FROM {{ c.tgt }}.voice_agents) AS top
WHERE top.max_id > coalesce(pg_sequence_last_value(seq.id), 0);
{%- endif %}
-- noqa: enable=LT02
