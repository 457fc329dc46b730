-- Passes when every migrated row holds what the mapping guide says it must, recomputed here from
-- the legacy rows (UTC timestamps, defaults, metadata), independently of the migration steps: a wrong
-- transform or a row edited in the target after migration fails it. Covers voices, phone numbers,
-- agents and (the run's window of) calls; leads (merged) and permissions (remapped resources) are
-- covered by the other checks only.
-- Expected rows: the legacy rows not quarantined, each hashed with its target id as the mapping
-- computes it. Found rows: the target rows whose id is a legacy row's, hashed the same way.
-- Per table and tenant, each side is reduced to an order-independent digest (the sum of its row
-- hashes) in one pass over its own table, never joining the two. First every call of the target is
-- taken as found: where that digest equals the expected one, the tenant's calls are exactly the
-- expected rows. Only where it differs are the target's calls narrowed to those with a legacy id (the
-- application may hold calls of its own), and only where that still differs are the sides joined on
-- id, to name a few differing rows.
{% import "_common.sql" as c with context %}
{%- set window = migration_window() %}
{#-
  The legacy call columns the guide moves into voice_calls.metadata, each under its own name: the
  jsonb documents (large: hashed as they stand, never copied into a new object) and the scalars
  (small: the one object they make is hashed).
-#}
{%- set document_keys = ["vapi_data", "cost_breakdown", "transcriptions"] -%}
{%- set scalar_keys = ["vapi_call_id", "call_type", "cost", "call_duration", "job_id", "room_name", "batch_id"] -%}
{%- set document_key_array = "ARRAY['" ~ document_keys | join("', '") ~ "']" -%}
{#- An expected row is a legacy row the migration did not quarantine. -#}
{%- macro not_quarantined(source_table, source_id) -%}
NOT EXISTS (
    SELECT 1 FROM {{ c.tgt }}.migration_rejects AS r
    WHERE r.source_table = '{{ source_table }}' AND r.source_id = {{ source_id }}
)
{%- endmacro -%}
WITH expected AS NOT MATERIALIZED (
    SELECT
        'voices_voiceagent' AS source_table,
        {{ c.system_tenant }} AS tenant_id,
        v.id::text AS id,
        hash_record_extended((
            v.id::text,
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
        ), 0) AS row_hash
    FROM {{ c.src }}.voices_voiceagent AS v
    WHERE
        {{ not_quarantined("voices_voiceagent", "v.id::text") }}
    UNION ALL
    SELECT
        'numbers_voiceagent',
        {{ c.system_tenant }},
        n.id::text,
        hash_record_extended((
            md5('numbers_voiceagent:' || n.id::text)::uuid,
            {{ c.system_tenant }},
            nullif(btrim(n.phone_number), ''),
            coalesce(n.provider, 'custom'),
            coalesce(n.type, 'local'),
            '["voice"]'::jsonb,
            coalesce(lower(btrim(n.status)) = 'active', FALSE),
            jsonb_build_object('old_id', n.id, 'status', n.status, 'default_agent', n.default_agent),
            n.created_at AT TIME ZONE 'UTC'
        ), 0)
    FROM {{ c.src }}.numbers_voiceagent AS n
    WHERE
        {{ not_quarantined("numbers_voiceagent", "n.id::text") }}
    UNION ALL
    SELECT
        'agents_voiceagent',
        u.organization_id,
        a.id::text,
        hash_record_extended((
            a.id::integer,
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
        ), 0)
    FROM {{ c.src }}.agents_voiceagent AS a
    LEFT JOIN {{ c.src }}.users_voiceagent AS u ON a.created_by = u.id
    WHERE
        {{ not_quarantined("agents_voiceagent", "a.id::text") }}
    UNION ALL
    SELECT
        'call_logs_voiceagent',
        u.organization_id,
        cl.id::text,
        hash_record_extended((
            cl.id,
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
            -- metadata: each document under its key (JSON null for a NULL column), then the object
            -- of everything else: the scalars and the original status where normalising changed it.
            {%- for key in document_keys %}
                coalesce(cl.{{ key }}, 'null'::jsonb),
            {%- endfor %}
            jsonb_build_object(
                {%- for key in scalar_keys %}
                    '{{ key }}', cl.{{ key }}{{ "," if not loop.last }}
                {%- endfor %}
            ) || CASE
                WHEN cl.status <> lower(btrim(cl.status)) THEN jsonb_build_object('legacy_status', cl.status)
                ELSE '{}'::jsonb
            END
        ), 0)
    FROM {{ c.src }}.call_logs_voiceagent AS cl
    LEFT JOIN {{ c.src }}.users_voiceagent AS u ON cl.initiated_by = u.id
    LEFT JOIN {{ c.src }}.numbers_voiceagent AS n ON cl.from_number_id = n.id
    LEFT JOIN {{ c.src }}.leads_voiceagent AS l ON cl.target = l.id
    LEFT JOIN {{ c.tgt }}.migration_lineage AS lead_map
        ON lead_map.source_table = 'leads_voiceagent' AND l.id::text = lead_map.source_id
    WHERE
        {{ c.in_window("cl.started_at", window) }}
        AND {{ not_quarantined("call_logs_voiceagent", "cl.id::text") }}
),

-- The small tables' rows with a legacy id; every call of the window.
found_any AS NOT MATERIALIZED (
    SELECT
        'voices_voiceagent' AS source_table,
        t.tenant_id,
        t.id::text AS id,
        hash_record_extended((
            t.id::text,
            t.tenant_id,
            t.voice_name::text,
            t.description,
            t.voice_sample_url,
            t.provider::text,
            t.language::text,
            t.gender::text,
            t.is_active,
            t.metadata
        ), 0) AS row_hash
    FROM {{ c.tgt }}.voices AS t
    WHERE
        EXISTS (
            SELECT 1 FROM {{ c.src }}.voices_voiceagent AS v
            WHERE v.id::text = t.id::text
        )
    UNION ALL
    SELECT
        'numbers_voiceagent',
        t.tenant_id,
        n.id::text,
        hash_record_extended((
            t.id,
            t.tenant_id,
            t.phone_number::text,
            t.provider::text,
            t.number_type::text,
            t.capabilities,
            t.is_active,
            t.metadata,
            t.created_at
        ), 0)
    FROM {{ c.tgt }}.phone_numbers AS t
    INNER JOIN {{ c.src }}.numbers_voiceagent AS n ON md5('numbers_voiceagent:' || n.id::text)::uuid = t.id
    UNION ALL
    SELECT
        'agents_voiceagent',
        t.tenant_id,
        t.id::text,
        hash_record_extended((
            t.id,
            t.tenant_id,
            t.agent_name::text,
            t.agent_language::text,
            t.voice_id::text,
            t.is_active,
            t.metadata,
            t.created_at
        ), 0)
    FROM {{ c.tgt }}.voice_agents AS t
    WHERE
        EXISTS (
            SELECT 1 FROM {{ c.src }}.agents_voiceagent AS a
            WHERE a.id = t.id
        )
    UNION ALL
    SELECT
        'call_logs_voiceagent',
        t.tenant_id,
        t.id::text,
        hash_record_extended((
            t.id,
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
            {%- for key in document_keys %}
                t.metadata -> '{{ key }}',
            {%- endfor %}
            t.metadata - {{ document_key_array }}
        ), 0)
    FROM {{ c.tgt }}.voice_calls AS t
    WHERE
        -- started_at is UTC wall-clock time here: placed in the window as a UTC instant.
        {{ c.in_window("(t.started_at AT TIME ZONE 'UTC')", window) }}
),

-- The found rows proper: those with a legacy id.
found AS NOT MATERIALIZED (
    SELECT
        fa.source_table,
        fa.tenant_id,
        fa.id,
        fa.row_hash
    FROM found_any AS fa
    WHERE
        fa.source_table <> 'call_logs_voiceagent'
        OR EXISTS (
            SELECT 1 FROM {{ c.src }}.call_logs_voiceagent AS cl
            WHERE cl.id = fa.id::uuid
        )
),

digests AS (
    SELECT
        sides.source_table,
        sides.tenant_id,
        sum(sides.expected_rows) AS expected_rows,
        sum(sides.expected) AS expected,
        sum(sides.found) AS found_any
    FROM (
        SELECT
            e.source_table,
            e.tenant_id,
            count(*) AS expected_rows,
            sum(e.row_hash::numeric) AS expected,
            0 AS found
        FROM expected AS e
        GROUP BY e.source_table, e.tenant_id
        UNION ALL
        SELECT
            f.source_table,
            f.tenant_id,
            0,
            0,
            sum(f.row_hash::numeric)
        FROM found_any AS f
        GROUP BY f.source_table, f.tenant_id
    ) AS sides
    GROUP BY sides.source_table, sides.tenant_id
),

-- Where the digest of every found row differs: the digest of the rows with a legacy id.
suspects AS (
    SELECT
        d.source_table,
        d.tenant_id,
        d.expected_rows,
        d.expected,
        coalesce((
            SELECT sum(fo.row_hash::numeric)
            FROM found AS fo
            WHERE fo.source_table = d.source_table AND fo.tenant_id IS NOT DISTINCT FROM d.tenant_id
        ), 0) AS found
    FROM digests AS d
    WHERE d.expected IS DISTINCT FROM d.found_any
),

mismatched AS (
    SELECT
        d.source_table,
        d.tenant_id,
        d.expected_rows,
        (
            -- Only for a digest that differs: the rows of that table and tenant whose hash differs
            -- or that one side lacks.
            SELECT array_agg(differing.id ORDER BY differing.id)
            FROM (
                SELECT coalesce(e.id, f.id) AS id
                FROM (
                    SELECT
                        ex.id,
                        ex.row_hash
                    FROM expected AS ex
                    WHERE ex.source_table = d.source_table AND ex.tenant_id IS NOT DISTINCT FROM d.tenant_id
                ) AS e
                FULL JOIN (
                    SELECT
                        fo.id,
                        fo.row_hash
                    FROM found AS fo
                    WHERE fo.source_table = d.source_table AND fo.tenant_id IS NOT DISTINCT FROM d.tenant_id
                ) AS f ON e.id = f.id
                WHERE e.row_hash IS DISTINCT FROM f.row_hash
                ORDER BY coalesce(e.id, f.id)
                LIMIT 5
            ) AS differing
        ) AS example_ids
    FROM suspects AS d
    WHERE d.expected IS DISTINCT FROM d.found
)

SELECT
    NOT EXISTS (SELECT 1 FROM mismatched) AS content_matches,
    coalesce(
        (
            SELECT
                string_agg(
                    format(
                        '%s tenant %s: content differs from the legacy rows (%s expected) e.g. %s',
                        m.source_table, coalesce(m.tenant_id::text, '(none)'), m.expected_rows,
                        array_to_string(m.example_ids, ' ')
                    ),
                    '; ' ORDER BY m.source_table, m.tenant_id
                )
            FROM mismatched AS m
        ),
        (SELECT format('%s tenant digests match', count(*)) FROM digests)
    ) AS detail
