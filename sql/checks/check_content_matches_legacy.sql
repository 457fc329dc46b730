-- Passes when every migrated row holds what the mapping guide says it must, recomputed here from
-- the legacy rows (UTC timestamps, defaults, metadata), independently of the migration steps: a wrong
-- transform or a row edited in the target after migration fails it. Per table and tenant, an
-- order-independent digest (the sum of the rows' hashes) on each side: one pass over each; ids are
-- looked up only where digests differ. Covers voices, phone numbers, agents and (the run's window of)
-- calls; leads (merged) and permissions (remapped resources) are covered by the other checks only.
-- A row expected = legacy row not quarantined; a row found = the target row with the legacy row's id.
{% import "_common.sql" as c with context %}
WITH per_row AS (
    SELECT
        'voices_voiceagent' AS source_table,
        {{ c.system_tenant }} AS tenant_id,
        v.id::text AS id,
        CASE WHEN r.source_id IS NULL THEN hash_record_extended((
            {{ c.system_tenant }},
            coalesce(v.provider_voice_id, v.description, 'Voice ' || v.id::text),
            v.description,
            v.voice_sample_url,
            coalesce(v.provider, 'custom'),
            'en'::text,
            coalesce(v.gender, 'neutral'),
            TRUE,
            jsonb_build_object(
                'accent', v.accent, 'provider_config', v.provider_config, 'provider_voice_id', v.provider_voice_id
            )
        ), 0) END AS expected,
        CASE WHEN t.id IS NOT NULL THEN hash_record_extended((
            t.tenant_id,
            t.voice_name::text,
            t.description,
            t.voice_sample_url,
            t.provider::text,
            t.language::text,
            t.gender::text,
            t.is_active,
            t.metadata
        ), 0) END AS found
    FROM {{ c.src }}.voices_voiceagent AS v
    LEFT JOIN {{ c.tgt }}.voices AS t ON v.id::text = t.id::text
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'voices_voiceagent' AND v.id::text = r.source_id
    UNION ALL
    SELECT
        'numbers_voiceagent',
        {{ c.system_tenant }},
        n.id::text,
        CASE WHEN r.source_id IS NULL THEN hash_record_extended((
            {{ c.system_tenant }},
            nullif(btrim(n.phone_number), ''),
            coalesce(n.provider, 'custom'),
            coalesce(n.type, 'local'),
            '["voice"]'::jsonb,
            coalesce(lower(btrim(n.status)) = 'active', FALSE),
            jsonb_build_object('old_id', n.id, 'status', n.status, 'default_agent', n.default_agent),
            n.created_at AT TIME ZONE 'UTC'
        ), 0) END,
        CASE WHEN t.id IS NOT NULL THEN hash_record_extended((
            t.tenant_id,
            t.phone_number::text,
            t.provider::text,
            t.number_type::text,
            t.capabilities,
            t.is_active,
            t.metadata,
            t.created_at
        ), 0) END
    FROM {{ c.src }}.numbers_voiceagent AS n
    LEFT JOIN {{ c.tgt }}.phone_numbers AS t ON md5('numbers_voiceagent:' || n.id::text)::uuid = t.id
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'numbers_voiceagent' AND n.id::text = r.source_id
    UNION ALL
    SELECT
        'agents_voiceagent',
        u.organization_id,
        a.id::text,
        CASE WHEN r.source_id IS NULL THEN hash_record_extended((
            u.organization_id,
            a.name::text,
            coalesce(a.language, 'en')::text,
            a.voice_id::text,
            TRUE,
            jsonb_build_object(
                'gender', a.gender,
                'agent_instructions', a.agent_instructions,
                'system_instructions', a.system_instructions,
                'outbound_starter_prompt', a.outbound_starter_prompt,
                'inbound_starter_prompt', a.inbound_starter_prompt,
                'default_number_id', a.default_number,
                'created_by_user_id', u.user_id
            ),
            a.created_at AT TIME ZONE 'UTC'
        ), 0) END,
        CASE WHEN t.id IS NOT NULL THEN hash_record_extended((
            t.tenant_id,
            t.agent_name::text,
            t.agent_language::text,
            t.voice_id::text,
            t.is_active,
            t.metadata,
            t.created_at
        ), 0) END
    FROM {{ c.src }}.agents_voiceagent AS a
    LEFT JOIN {{ c.src }}.users_voiceagent AS u ON a.created_by = u.id
    LEFT JOIN {{ c.tgt }}.voice_agents AS t ON a.id = t.id
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'agents_voiceagent' AND a.id::text = r.source_id
    UNION ALL
    SELECT
        'call_logs_voiceagent',
        u.organization_id,
        cl.id::text,
        CASE WHEN r.source_id IS NULL THEN hash_record_extended((
            u.organization_id,
            cl.voice::text,
            cl.agent::integer,
            n.phone_number::text,
            nullif(btrim(l.lead_number), '')::text,
            lower(btrim(cl.status))::text,
            cl.added_context,
            lead_map.target_id::uuid,
            u.user_id::text,
            cl.call_recording_url,
            cl.started_at AT TIME ZONE 'UTC',
            cl.ended_at AT TIME ZONE 'UTC',
            cl.started_at AT TIME ZONE 'UTC',
            jsonb_hash_extended(
                jsonb_build_object(
                    'vapi_call_id', cl.vapi_call_id,
                    'vapi_data', cl.vapi_data,
                    'call_type', cl.call_type,
                    'cost', cl.cost,
                    'cost_breakdown', cl.cost_breakdown,
                    'call_duration', cl.call_duration,
                    'job_id', cl.job_id,
                    'room_name', cl.room_name,
                    'batch_id', cl.batch_id,
                    'transcriptions', cl.transcriptions
                ) || CASE
                    WHEN cl.status <> lower(btrim(cl.status)) THEN jsonb_build_object('legacy_status', cl.status)
                    ELSE '{}'::jsonb
                END,
                0
            )
        ), 0) END,
        CASE WHEN t.id IS NOT NULL THEN hash_record_extended((
            t.tenant_id,
            t.voice_id::text,
            t.agent_id,
            t.from_number::text,
            t.to_number::text,
            t.status::text,
            t.added_context,
            t.lead_id,
            t.initiated_by::text,
            t.recording_url,
            t.started_at,
            t.ended_at,
            t.created_at,
            jsonb_hash_extended(t.metadata, 0)
        ), 0) END
    FROM {{ c.src }}.call_logs_voiceagent AS cl
    LEFT JOIN {{ c.src }}.users_voiceagent AS u ON cl.initiated_by = u.id
    LEFT JOIN {{ c.src }}.numbers_voiceagent AS n ON cl.from_number_id = n.id
    LEFT JOIN {{ c.src }}.leads_voiceagent AS l ON cl.target = l.id
    LEFT JOIN {{ c.tgt }}.migration_lineage AS lead_map
        ON lead_map.source_table = 'leads_voiceagent' AND l.id::text = lead_map.source_id
    LEFT JOIN {{ c.tgt }}.voice_calls AS t ON cl.id = t.id
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'call_logs_voiceagent' AND cl.id::text = r.source_id
    WHERE {{ c.in_window("cl.started_at") }}
),

digests AS (
    SELECT
        source_table,
        tenant_id,
        count(*) AS legacy_rows,
        sum(expected::numeric) AS expected,
        sum(found::numeric) AS found
    FROM per_row
    GROUP BY source_table, tenant_id
),

mismatched AS (
    SELECT
        d.source_table,
        d.tenant_id,
        d.legacy_rows,
        (
            SELECT array_agg(differing.id ORDER BY differing.id)
            FROM (
                SELECT p.id
                FROM per_row AS p
                WHERE
                    p.source_table = d.source_table
                    AND p.tenant_id IS NOT DISTINCT FROM d.tenant_id
                    AND p.expected IS DISTINCT FROM p.found
                ORDER BY p.id
                LIMIT 5
            ) AS differing
        ) AS example_ids
    FROM digests AS d
    WHERE d.expected IS DISTINCT FROM d.found
)

SELECT
    NOT EXISTS (SELECT 1 FROM mismatched) AS content_matches,
    coalesce(
        (
            SELECT
                string_agg(
                    format(
                        '%s tenant %s: content differs from the legacy rows (of %s) e.g. %s',
                        m.source_table, coalesce(m.tenant_id::text, '(none)'), m.legacy_rows,
                        array_to_string(m.example_ids, ' ')
                    ),
                    '; ' ORDER BY m.source_table, m.tenant_id
                )
            FROM mismatched AS m
        ),
        (SELECT format('%s tenant digests match', count(*)) FROM digests)
    ) AS detail
