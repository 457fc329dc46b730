-- Passes when every row the migration wrote holds what the mapping guide says it must, recomputed here
-- from the legacy rows (UTC timestamps, defaults, metadata), independently of the migration steps: a
-- wrong transform or a row edited in the target after migration fails it. Covers voices, phone numbers,
-- agents and (the run's window of) calls; leads (merged) and permissions (remapped resources) are
-- covered by the other checks only.
-- Expected rows: the legacy rows not quarantined, each hashed with its target id as the mapping
-- computes it. A call whose number or lead the legacy database deleted keeps the from / to number it
-- holds in the target (the mapping's kept history), and its lead_id is NULL.
-- Found rows: the rows the migration wrote, hashed the same way: for the small tables, the target rows
-- a non-linked lineage row of the legacy table points at; for calls, those of migration_calls. The
-- application's rows are never judged, even when they hold a legacy row's id.
-- Not judged, on either side: a legacy row written after the run's snapshot (pending for the next run;
-- for an agent or a call, also when its user was; for a call, also its number or its lead), and a row
-- whose owner is gone or without organization while it is still landed (the owner changed after its
-- step: the next run quarantines it). The detail says how many rows were left out so.
-- Per table and tenant, each side is reduced to an order-independent digest (the sum of its row
-- hashes) in one pass over its own table, never joining the two. First every call of the target's
-- window is taken as found, less the calls not judged (few, looked up by id): where that digest equals
-- the expected one, the tenant's calls are exactly the expected rows. Only where it differs are the
-- target's calls narrowed to those the migration wrote whose legacy call is still there and judged,
-- and only where that still differs are the sides joined on id, to name a few differing rows with the
-- columns that differ (expected and found values, shortened).
-- Jinja loops over each table's columns generate the blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
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
{#-
  Each table's compared columns: (name, expected from the legacy row, found in the target row `t`).
  Both sides hash the same types in the same order.
-#}
{%- set voice_columns = [
    ("id", "v.id::text", "t.id::text"),
    ("tenant_id", c.system_tenant, "t.tenant_id"),
    ("voice_name", "coalesce(v.provider_voice_id, v.description, 'Voice ' || v.id::text)", "t.voice_name::text"),
    ("description", "v.description", "t.description"),
    ("voice_sample_url", "v.voice_sample_url", "t.voice_sample_url"),
    ("provider", "coalesce(v.provider, 'custom')", "t.provider::text"),
    ("language", "'en'::text", "t.language::text"),
    ("gender", "coalesce(v.gender, 'neutral')", "t.gender::text"),
    ("is_active", "TRUE", "t.is_active"),
    ("metadata", "jsonb_build_object('accent', v.accent, 'provider_config', v.provider_config, "
        ~ "'provider_voice_id', v.provider_voice_id)", "t.metadata"),
] -%}
{%- set number_columns = [
    ("id", "md5('numbers_voiceagent:' || n.id::text)::uuid", "t.id"),
    ("tenant_id", c.system_tenant, "t.tenant_id"),
    ("phone_number", "nullif(btrim(n.phone_number), '')", "t.phone_number::text"),
    ("provider", "coalesce(n.provider, 'custom')", "t.provider::text"),
    ("number_type", "coalesce(n.type, 'local')", "t.number_type::text"),
    ("capabilities", "'[\"voice\"]'::jsonb", "t.capabilities"),
    ("is_active", "coalesce(lower(btrim(n.status)) = 'active', FALSE)", "t.is_active"),
    ("metadata", "jsonb_build_object('old_id', n.id, 'status', n.status, 'default_agent', n.default_agent)",
        "t.metadata"),
    ("created_at", "n.created_at AT TIME ZONE 'UTC'", "t.created_at"),
] -%}
{%- set agent_columns = [
    ("id", "a.id::integer", "t.id"),
    ("tenant_id", "u.organization_id", "t.tenant_id"),
    ("agent_name", "a.name::text", "t.agent_name::text"),
    ("agent_language", "coalesce(a.language, 'en')::text", "t.agent_language::text"),
    ("voice_id", "a.voice_id::text", "t.voice_id::text"),
    ("is_active", "TRUE", "t.is_active"),
    ("metadata", "jsonb_build_object('gender', a.gender, 'agent_instructions', a.agent_instructions, "
        ~ "'system_instructions', a.system_instructions, 'outbound_starter_prompt', a.outbound_starter_prompt, "
        ~ "'inbound_starter_prompt', a.inbound_starter_prompt, 'default_number_id', a.default_number, "
        ~ "'created_by_user_id', u.user_id)", "t.metadata"),
    ("created_at", "a.created_at AT TIME ZONE 'UTC'", "t.created_at"),
] -%}
{#-
  A call's from / to number: its number's (its lead's), or, once that legacy row is gone, the one the
  target call holds (kept history).
-#}
{%- macro kept(reference, legacy_row, value, target_column) -%}
CASE WHEN {{ reference }} IS NOT NULL AND {{ legacy_row }}.id IS NULL THEN (
    SELECT landed.{{ target_column }}::text FROM {{ c.tgt }}.voice_calls AS landed WHERE landed.id = cl.id
) ELSE {{ value }} END
{%- endmacro -%}
{%- set call_columns = [
    ("id", "cl.id", "t.id"),
    ("tenant_id", "u.organization_id", "t.tenant_id"),
    ("voice_id", "cl.voice::text", "t.voice_id::text"),
    ("agent_id", "cl.agent::integer", "t.agent_id"),
    (
        "from_number", kept("cl.from_number_id", "n", "n.phone_number::text", "from_number"), "t.from_number::text",
        "n.phone_number::text",
    ),
    (
        "to_number", kept("cl.target", "l", "nullif(btrim(l.lead_number), '')::text", "to_number"), "t.to_number::text",
        "nullif(btrim(l.lead_number), '')::text",
    ),
    ("status", "lower(btrim(cl.status))::text", "t.status::text"),
    ("added_context", "cl.added_context", "t.added_context"),
    ("lead_id", "l.lead_id", "t.lead_id"),
    ("initiated_by", "u.user_id::text", "t.initiated_by::text"),
    ("recording_url", "cl.call_recording_url", "t.recording_url"),
    ("started_at", "cl.started_at AT TIME ZONE 'UTC'", "t.started_at"),
    ("ended_at", "cl.ended_at AT TIME ZONE 'UTC'", "t.ended_at"),
    ("created_at", "cl.started_at AT TIME ZONE 'UTC'", "t.created_at"),
] -%}
{%- for key in document_keys -%}
{%- set _ = call_columns.append(
    ("metadata." ~ key, "coalesce(cl." ~ key ~ ", 'null'::jsonb)", "t.metadata -> '" ~ key ~ "'")
) -%}
{%- endfor -%}
{#- metadata: the object of everything else, the scalars and the original status where normalising changed it. -#}
{%- set scalars -%}
jsonb_build_object(
    {%- for key in scalar_keys %}'{{ key }}', cl.{{ key }}{{ ", " if not loop.last }}{% endfor -%}
) || CASE WHEN cl.status <> lower(btrim(cl.status)) THEN jsonb_build_object('legacy_status', cl.status) ELSE '{}'::jsonb END
{%- endset -%}
{%- set _ = call_columns.append(("metadata", scalars, "t.metadata - " ~ document_key_array)) -%}
{%- set tables = [
    ("voices_voiceagent", voice_columns),
    ("numbers_voiceagent", number_columns),
    ("agents_voiceagent", agent_columns),
    ("call_logs_voiceagent", call_columns),
] -%}
{#-
  The compared columns as c1, c2, ...: expected (side 1), found (side 2), or expected for a call whose
  number and lead are still there (side 3: no kept history, whose lookup in the target would keep the
  pass over the calls from running in parallel).
-#}
{%- macro compared(columns, side) -%}
{%- for col in columns %}
        {{ col[side] if col | length > side else col[1] }} AS c{{ loop.index }}{{ "," if not loop.last }}
{%- endfor -%}
{%- endmacro -%}
{%- macro row_hash(alias, columns) -%}
hash_record_extended(({% for col in columns %}{{ alias }}.c{{ loop.index }}{{ ", " if not loop.last }}{% endfor %}), 0)
{%- endmacro -%}
{#- An expected row is a legacy row the migration did not quarantine. -#}
{%- macro not_quarantined(source_table, source_id) -%}
NOT EXISTS (
    SELECT 1 FROM {{ c.tgt }}.migration_rejects AS r
    WHERE r.source_table = '{{ source_table }}' AND r.source_id = {{ source_id }}
)
{%- endmacro -%}
{#- Whether the legacy row with id `ref` of `table` was written after the run's snapshot (FALSE for NULL). -#}
{%- macro pending_ref(ref, table) -%}
({{ ref }} IN (
    SELECT pending.id FROM {{ c.src }}.{{ table }} AS pending
    WHERE {{ c.written_after_snapshot("pending.xmin") }}
)) IS TRUE
{%- endmacro -%}
{#- Whether the legacy call `cl`, its user, its number or its lead was written after the run's snapshot. -#}
{%- macro call_pending() -%}
(
    {{ c.written_after_snapshot("cl.xmin") }}
    OR {{ pending_ref("cl.initiated_by", "users_voiceagent") }}
    OR {{ pending_ref("cl.from_number_id", "numbers_voiceagent") }}
    OR {{ pending_ref("cl.target", "leads_voiceagent") }}
)
{%- endmacro -%}
{#-
  Whether the legacy call `cl` (its user `u`, number `n` and lead `l` joined) is special: its owner is
  gone or without organization, or its number or lead is gone (its history kept in the target).
-#}
{%- macro call_special() -%}
(
    u.organization_id IS NULL
    OR (cl.from_number_id IS NOT NULL AND n.id IS NULL)
    OR (cl.target IS NOT NULL AND l.id IS NULL)
)
{%- endmacro -%}
{#- A value shown in the detail: quoted, shortened to 40 characters. -#}
{%- macro shown(expr) -%}
CASE
    WHEN ({{ expr }}) IS NULL THEN 'NULL'
    WHEN length(({{ expr }})::text) > 40 THEN quote_literal(left(({{ expr }})::text, 40)) || '...'
    ELSE quote_literal(({{ expr }})::text)
END
{%- endmacro -%}
-- The legacy rows a call or an agent reads, joined for their values. Whether one was written after the
-- run's snapshot is asked of each row of these small tables once (a hashed subplan per pass over the
-- calls, which may run in parallel), never of each call that joins it.
WITH legacy_users AS NOT MATERIALIZED (
    SELECT
        lu.id,
        lu.organization_id,
        lu.user_id
    FROM {{ c.src }}.users_voiceagent AS lu
),

legacy_numbers AS NOT MATERIALIZED (
    SELECT
        ln.id,
        ln.phone_number
    FROM {{ c.src }}.numbers_voiceagent AS ln
),

legacy_leads AS NOT MATERIALIZED (
    SELECT
        ll.id,
        ll.lead_number,
        lead_map.target_id::uuid AS lead_id
    FROM {{ c.src }}.leads_voiceagent AS ll
    LEFT JOIN {{ c.tgt }}.migration_lineage AS lead_map
        ON lead_map.source_table = 'leads_voiceagent' AND ll.id::text = lead_map.source_id
),

-- Each table's expected rows (with why a row is not judged) and found rows (only those judged).
exp_voices_voiceagent AS NOT MATERIALIZED (
    SELECT
        {{ c.system_tenant }} AS tenant_id,
        v.id::text AS id,
        {{ c.written_after_snapshot("v.xmin") }} AS pending,
        FALSE AS owner_gone,
        {{- compared(voice_columns, 1) }}
    FROM {{ c.src }}.voices_voiceagent AS v
    WHERE {{ not_quarantined("voices_voiceagent", "v.id::text") }}
),

fnd_voices_voiceagent AS NOT MATERIALIZED (
    SELECT
        t.tenant_id,
        m.source_id AS id,
        {{- compared(voice_columns, 2) }}
    FROM {{ c.tgt }}.migration_lineage AS m
    INNER JOIN {{ c.tgt }}.voices AS t ON m.target_id = t.id::text
    INNER JOIN {{ c.src }}.voices_voiceagent AS v ON m.source_id = v.id::text
    WHERE
        m.source_table = 'voices_voiceagent'
        AND NOT m.linked
        AND NOT {{ c.written_after_snapshot("v.xmin") }}
),

exp_numbers_voiceagent AS NOT MATERIALIZED (
    SELECT
        {{ c.system_tenant }} AS tenant_id,
        n.id::text AS id,
        {{ c.written_after_snapshot("n.xmin") }} AS pending,
        FALSE AS owner_gone,
        {{- compared(number_columns, 1) }}
    FROM {{ c.src }}.numbers_voiceagent AS n
    WHERE {{ not_quarantined("numbers_voiceagent", "n.id::text") }}
),

fnd_numbers_voiceagent AS NOT MATERIALIZED (
    SELECT
        t.tenant_id,
        m.source_id AS id,
        {{- compared(number_columns, 2) }}
    FROM {{ c.tgt }}.migration_lineage AS m
    INNER JOIN {{ c.tgt }}.phone_numbers AS t ON m.target_id = t.id::text
    INNER JOIN {{ c.src }}.numbers_voiceagent AS n ON m.source_id = n.id::text
    WHERE
        m.source_table = 'numbers_voiceagent'
        AND NOT m.linked
        AND NOT {{ c.written_after_snapshot("n.xmin") }}
),

exp_agents_voiceagent AS NOT MATERIALIZED (
    SELECT
        u.organization_id AS tenant_id,
        a.id::text AS id,
        {{ c.written_after_snapshot("a.xmin") }} OR {{ pending_ref("a.created_by", "users_voiceagent") }} AS pending,
        u.organization_id IS NULL AS owner_gone,
        {{- compared(agent_columns, 1) }}
    FROM {{ c.src }}.agents_voiceagent AS a
    LEFT JOIN legacy_users AS u ON a.created_by = u.id
    WHERE {{ not_quarantined("agents_voiceagent", "a.id::text") }}
),

fnd_agents_voiceagent AS NOT MATERIALIZED (
    SELECT
        t.tenant_id,
        m.source_id AS id,
        {{- compared(agent_columns, 2) }}
    FROM {{ c.tgt }}.migration_lineage AS m
    INNER JOIN {{ c.tgt }}.voice_agents AS t ON m.target_id = t.id::text
    INNER JOIN {{ c.src }}.agents_voiceagent AS a ON m.source_id = a.id::text
    LEFT JOIN legacy_users AS u ON a.created_by = u.id
    WHERE
        m.source_table = 'agents_voiceagent'
        AND NOT m.linked
        AND NOT {{ c.written_after_snapshot("a.xmin") }}
        AND NOT {{ pending_ref("a.created_by", "users_voiceagent") }}
        AND u.organization_id IS NOT NULL
),


-- The small tables' expected rows, hashed, with why a row is not judged.
expected_small AS NOT MATERIALIZED (
    {%- for source_table, columns in tables if source_table != "call_logs_voiceagent" %}
    SELECT
        '{{ source_table }}' AS source_table,
        e.tenant_id,
        e.id,
        e.pending,
        e.owner_gone,
        {{ row_hash("e", columns) }} AS row_hash
    FROM exp_{{ source_table }} AS e
    {{- "\n    UNION ALL" if not loop.last }}
    {%- endfor %}
),

-- The calls. The legacy calls of the window not quarantined, with what the check needs to know of
-- each in the one pass over them (which may run in parallel): `special` when its owner is gone or
-- without organization, or when its number or lead is gone (its history kept).
call_rows AS NOT MATERIALIZED (
    SELECT
        u.organization_id AS tenant_id,
        cl.id::text AS id,
        cl.id AS key,
        u.organization_id IS NULL AS owner_gone,
        {{ call_special() }} AS special,
        {{- compared(call_columns, 3) }}
    FROM {{ c.src }}.call_logs_voiceagent AS cl
    LEFT JOIN legacy_users AS u ON cl.initiated_by = u.id
    LEFT JOIN legacy_numbers AS n ON cl.from_number_id = n.id
    LEFT JOIN legacy_leads AS l ON cl.target = l.id
    WHERE
        {{ c.in_window("cl.started_at", window) }}
        AND {{ not_quarantined("call_logs_voiceagent", "cl.id::text") }}
),

-- The same rows in full (kept history, whether pending), for the few looked up by id, and where a
-- digest differs.
exp_call_logs_voiceagent AS NOT MATERIALIZED (
    SELECT
        u.organization_id AS tenant_id,
        cl.id::text AS id,
        cl.id AS key,
        {{ call_pending() }} AS pending,
        u.organization_id IS NULL AS owner_gone,
        {{ call_special() }} AS special,
        {{- compared(call_columns, 1) }}
    FROM {{ c.src }}.call_logs_voiceagent AS cl
    LEFT JOIN legacy_users AS u ON cl.initiated_by = u.id
    LEFT JOIN legacy_numbers AS n ON cl.from_number_id = n.id
    LEFT JOIN legacy_leads AS l ON cl.target = l.id
    WHERE
        {{ c.in_window("cl.started_at", window) }}
        AND {{ not_quarantined("call_logs_voiceagent", "cl.id::text") }}
),

-- The pass over the calls: per tenant, the digest of the calls that are not special. Only sums and
-- counts, so that each parallel worker sums its share (PostgreSQL 15 cannot combine array_agg).
call_digests AS MATERIALIZED (
    SELECT
        cr.tenant_id,
        count(*) FILTER (WHERE NOT cr.special) AS expected_rows,
        coalesce(sum({{ row_hash("cr", call_columns) }}::numeric) FILTER (WHERE NOT cr.special), 0) AS expected
    FROM call_rows AS cr
    GROUP BY cr.tenant_id
),

-- The calls to look up by id: those written after the run's snapshot (their own row, their user,
-- number or lead) and the special ones. A narrow pass of its own (only the key is kept), as the
-- snapshot's test cannot run in parallel.
looked_up_calls AS MATERIALIZED (
    SELECT e.key
    FROM exp_call_logs_voiceagent AS e
    WHERE e.pending OR e.special
),

-- The special and the pending calls, looked up by id (few), hashed in full.
call_lookups AS MATERIALIZED (
    SELECT
        e.tenant_id,
        e.key,
        e.pending,
        e.owner_gone,
        e.special,
        {{ row_hash("e", call_columns) }}::numeric AS row_hash
    FROM exp_call_logs_voiceagent AS e
    WHERE
        e.key IN (SELECT pc.key FROM looked_up_calls AS pc)
),

-- Every call of the target's window (the fast path's found side).
any_call AS NOT MATERIALIZED (
    SELECT
        t.tenant_id,
        t.id AS key,
        {{- compared(call_columns, 2) }}
    FROM {{ c.tgt }}.voice_calls AS t
    WHERE
        -- started_at is UTC wall-clock time here: placed in the window as a UTC instant.
        {{ c.in_window("(t.started_at AT TIME ZONE 'UTC')", window) }}
),

-- The calls the migration wrote whose legacy call is still there and judged.
fnd_call_logs_voiceagent AS NOT MATERIALIZED (
    SELECT
        t.tenant_id,
        t.id::text AS id,
        t.id AS key,
        {{- compared(call_columns, 2) }}
    FROM {{ c.tgt }}.voice_calls AS t
    INNER JOIN {{ c.tgt }}.migration_calls AS written ON t.id = written.id
    INNER JOIN {{ c.src }}.call_logs_voiceagent AS cl ON t.id = cl.id
    LEFT JOIN legacy_users AS u ON cl.initiated_by = u.id
    WHERE
        {{ c.in_window("(t.started_at AT TIME ZONE 'UTC')", window) }}
        AND NOT {{ call_pending() }}
        AND u.organization_id IS NOT NULL
),

-- Per table and tenant, the expected digest of the rows judged and how many were left out.
expected_digests AS (
    SELECT
        es.source_table,
        es.tenant_id,
        count(*) FILTER (WHERE NOT es.pending AND NOT es.owner_gone) AS expected_rows,
        coalesce(sum(es.row_hash::numeric) FILTER (WHERE NOT es.pending AND NOT es.owner_gone), 0) AS expected,
        count(*) FILTER (WHERE es.pending) AS pending_rows,
        count(*) FILTER (WHERE es.owner_gone AND NOT es.pending) AS owner_gone_rows
    FROM expected_small AS es
    GROUP BY es.source_table, es.tenant_id
    UNION ALL
    SELECT
        'call_logs_voiceagent',
        cd.tenant_id,
        cd.expected_rows,
        cd.expected,
        0,
        0
    FROM call_digests AS cd
    UNION ALL
    -- The calls looked up: a special call judged (history kept) is added; a pending one that was
    -- counted as plain is taken out.
    SELECT
        'call_logs_voiceagent',
        lk.tenant_id,
        sum(
            CASE
                WHEN NOT lk.pending AND NOT lk.owner_gone THEN CASE WHEN lk.special THEN 1 ELSE 0 END
                WHEN lk.special THEN 0
                ELSE -1
            END
        ),
        sum(
            CASE
                WHEN NOT lk.pending AND NOT lk.owner_gone THEN CASE WHEN lk.special THEN lk.row_hash ELSE 0 END
                WHEN lk.special THEN 0
                ELSE -lk.row_hash
            END
        ),
        count(*) FILTER (WHERE lk.pending),
        count(*) FILTER (WHERE lk.owner_gone AND NOT lk.pending)
    FROM call_lookups AS lk
    GROUP BY lk.tenant_id
),

-- The small tables' found rows (the calls' fast path is any_call, summed on its own: the small
-- tables' snapshot tests would keep the pass over the calls from running in parallel).
found_small AS NOT MATERIALIZED (
    {%- for source_table, columns in tables if source_table != "call_logs_voiceagent" %}
    SELECT
        '{{ source_table }}' AS source_table,
        f.tenant_id,
        {{ row_hash("f", columns) }} AS row_hash
    FROM fnd_{{ source_table }} AS f
    {{- "\n    UNION ALL" if not loop.last }}
    {%- endfor %}
),

-- The found rows proper: those the migration wrote, still in the legacy database and judged.
found AS NOT MATERIALIZED (
    {%- for source_table, columns in tables %}
    SELECT
        '{{ source_table }}' AS source_table,
        f.tenant_id,
        f.id,
        {{ row_hash("f", columns) }} AS row_hash
    FROM fnd_{{ source_table }} AS f
    {{- "\n    UNION ALL" if not loop.last }}
    {%- endfor %}
),

digests AS MATERIALIZED (
    SELECT
        sides.source_table,
        sides.tenant_id,
        sum(sides.expected_rows) AS expected_rows,
        sum(sides.expected) AS expected,
        sum(sides.found) AS found_any,
        sum(sides.pending_rows) AS pending_rows,
        sum(sides.owner_gone_rows) AS owner_gone_rows
    FROM (
        SELECT
            ed.source_table,
            ed.tenant_id,
            ed.expected_rows,
            ed.expected,
            0 AS found,
            ed.pending_rows,
            ed.owner_gone_rows
        FROM expected_digests AS ed
        UNION ALL
        SELECT
            f.source_table,
            f.tenant_id,
            0,
            0,
            sum(f.row_hash::numeric),
            0,
            0
        FROM found_small AS f
        GROUP BY f.source_table, f.tenant_id
        UNION ALL
        SELECT
            'call_logs_voiceagent',
            ac.tenant_id,
            0,
            0,
            sum({{ row_hash("ac", call_columns) }}::numeric),
            0,
            0
        FROM any_call AS ac
        GROUP BY ac.tenant_id
        UNION ALL
        -- The calls not judged are taken out of the found side too (looked up by id).
        SELECT
            'call_logs_voiceagent',
            ac.tenant_id,
            0,
            0,
            -sum({{ row_hash("ac", call_columns) }}::numeric),
            0,
            0
        FROM any_call AS ac
        WHERE
            ac.key IN (
                SELECT lk.key FROM call_lookups AS lk
                WHERE lk.pending OR lk.owner_gone
            )
        GROUP BY ac.tenant_id
    ) AS sides
    GROUP BY sides.source_table, sides.tenant_id
),

-- Where that digest differs: the digest of the found rows proper.
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

-- Only for a digest that still differs: the expected rows judged of that table and tenant.
expected_judged AS NOT MATERIALIZED (
    SELECT
        es.source_table,
        es.tenant_id,
        es.id,
        es.row_hash
    FROM expected_small AS es
    WHERE NOT es.pending AND NOT es.owner_gone
    UNION ALL
    SELECT
        'call_logs_voiceagent',
        e.tenant_id,
        e.id,
        {{ row_hash("e", call_columns) }}
    FROM exp_call_logs_voiceagent AS e
    WHERE NOT e.pending AND NOT e.owner_gone
),

mismatched AS MATERIALIZED (
    SELECT
        d.source_table,
        d.tenant_id,
        d.expected_rows,
        differing.differing_rows,
        differing.example_ids
    FROM suspects AS d
    CROSS JOIN LATERAL (
        -- The rows of that table and tenant whose hash differs or that one side lacks.
        SELECT
            count(*) AS differing_rows,
            (array_agg(pair.id ORDER BY pair.id))[1:5] AS example_ids
        FROM (
            SELECT coalesce(e.id, f.id) AS id
            FROM (
                SELECT
                    ex.id,
                    ex.row_hash
                FROM expected_judged AS ex
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
        ) AS pair
    ) AS differing
    WHERE d.expected IS DISTINCT FROM d.found
),

examples AS MATERIALIZED (
    SELECT
        m.source_table,
        m.tenant_id,
        example.id,
        example.position
    FROM mismatched AS m
    CROSS JOIN LATERAL unnest(m.example_ids) WITH ORDINALITY AS example (id, position)
),

-- Each example row: the columns that differ, with both values, or the side it is missing from.
described AS (
    {%- for source_table, columns in tables %}
    SELECT
        ex.source_table,
        ex.tenant_id,
        ex.position,
        ex.id || ' ' || CASE
            WHEN e.id IS NULL THEN 'in the target but not expected'
            WHEN f.id IS NULL THEN 'missing from the target'
            ELSE coalesce((
                SELECT string_agg(
                    format('%s expected %s found %s', col.name, col.expected, col.found), ', '
                    ORDER BY col.position
                )
                FROM (
                    VALUES
                    {%- for col in columns %}
                    (
                        {{ loop.index }}, '{{ col[0] }}', e.c{{ loop.index }} IS DISTINCT FROM f.c{{ loop.index }},
                        {{ shown("e.c" ~ loop.index) }},
                        {{ shown("f.c" ~ loop.index) }}
                    ){{ "," if not loop.last }}
                    {%- endfor %}
                ) AS col (position, name, differs, expected, found)
                WHERE col.differs
            ), 'differs')
        END AS what
    FROM examples AS ex
    {%- if source_table == "call_logs_voiceagent" %}
    LEFT JOIN exp_{{ source_table }} AS e
        ON
            ex.id::uuid = e.key AND ex.tenant_id IS NOT DISTINCT FROM e.tenant_id
            AND NOT e.pending AND NOT e.owner_gone
    LEFT JOIN fnd_{{ source_table }} AS f ON ex.id::uuid = f.key AND ex.tenant_id IS NOT DISTINCT FROM f.tenant_id
    {%- else %}
    LEFT JOIN exp_{{ source_table }} AS e
        ON
            ex.id = e.id AND ex.tenant_id IS NOT DISTINCT FROM e.tenant_id
            AND NOT e.pending AND NOT e.owner_gone
    LEFT JOIN fnd_{{ source_table }} AS f ON ex.id = f.id AND ex.tenant_id IS NOT DISTINCT FROM f.tenant_id
    {%- endif %}
    WHERE ex.source_table = '{{ source_table }}'
    {{- "\n    UNION ALL" if not loop.last }}
    {%- endfor %}
),

-- How many rows were left out, said whether the check passes or not.
left_out AS (
    SELECT
        coalesce(sum(d.pending_rows), 0) AS pending_rows,
        coalesce(sum(d.owner_gone_rows), 0) AS owner_gone_rows
    FROM digests AS d
)

SELECT
    NOT EXISTS (SELECT 1 FROM mismatched) AS content_matches,
    coalesce(
        (
            SELECT
                string_agg(
                    format(
                        '%s tenant %s: %s of %s rows differ: %s',
                        m.source_table, coalesce(m.tenant_id::text, '(none)'), m.differing_rows, m.expected_rows,
                        (
                            SELECT string_agg(ds.what, '; ' ORDER BY ds.position)
                            FROM described AS ds
                            WHERE ds.source_table = m.source_table AND ds.tenant_id IS NOT DISTINCT FROM m.tenant_id
                        )
                    ),
                    '; ' ORDER BY m.source_table, m.tenant_id
                )
            FROM mismatched AS m
        ),
        (SELECT format('%s tenant digests match', count(*)) FROM digests)
    ) || (
        SELECT
            CASE
                WHEN lo.pending_rows + lo.owner_gone_rows = 0 THEN ''
                ELSE ' (' || concat_ws(
                    '; ',
                    CASE WHEN lo.pending_rows > 0 THEN
                        format(
                            '%s row%s pending: written after the run''s snapshot',
                            lo.pending_rows, CASE WHEN lo.pending_rows = 1 THEN '' ELSE 's' END
                        )
                    END,
                    CASE WHEN lo.owner_gone_rows > 0 THEN
                        format(
                            '%s row%s not judged: owner gone or without organization since the row''s step',
                            lo.owner_gone_rows, CASE WHEN lo.owner_gone_rows = 1 THEN '' ELSE 's' END
                        )
                    END
                ) || ')'
            END
        FROM left_out AS lo
    ) AS detail
