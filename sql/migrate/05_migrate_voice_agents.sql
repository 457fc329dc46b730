-- Agents keep their legacy ids under their creator's tenant, or are quarantined with a reason;
-- the id sequence is left past the highest migrated id so the application's next insert fits.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
SELECT
    mapped.*,
    CASE
        {{ c.owner_reason("mapped.created_by", "mapped") }}
        WHEN mapped.legacy_id NOT BETWEEN -2147483648 AND 2147483647 THEN 'out_of_range:id'
        {{ c.too_long("mapped.agent_name", 255, "agent_name") }}
        {{ c.too_long("mapped.agent_language", 10, "agent_language") }}
    END AS reason
FROM (
    SELECT
        a.id AS legacy_id,
        a.id::text AS source_id,
        a.id::text AS target_id,
        to_jsonb(a) AS source_row,
        a.created_by,
        u.id,
        u.organization_id,
        a.name AS agent_name,
        coalesce(a.language, 'en') AS agent_language,
        a.voice_id::text AS voice_id,
        jsonb_build_object(
            'gender', a.gender,
            'agent_instructions', a.agent_instructions,
            'system_instructions', a.system_instructions,
            'outbound_starter_prompt', a.outbound_starter_prompt,
            'inbound_starter_prompt', a.inbound_starter_prompt,
            'default_number_id', a.default_number,
            'created_by_user_id', u.user_id
        ) AS metadata,
        (a.created_at AT TIME ZONE 'UTC') AS created_at
    FROM {{ c.src }}.agents_voiceagent AS a
    LEFT JOIN {{ c.src }}.users_voiceagent AS u ON a.created_by = u.id
) AS mapped;

{% call c.counted_upsert("agents_voiceagent", staged="staged") %}
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

{{ c.record_outcome("agents_voiceagent", "voice_agents", staged="staged") }};

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
