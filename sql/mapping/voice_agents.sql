-- Agents keep their legacy ids under their creator's tenant, or are quarantined with a reason.
-- The guide's mapping, column by column; `reason` is why a row is quarantined instead (NULL:
-- it lands). Staged and written by sql/migrate/05_migrate_voice_agents.sql.
{% import "_common.sql" as c with context %}
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
) AS mapped
