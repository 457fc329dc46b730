{#-
  The guide's mapping of a legacy call (call_logs_voiceagent) to a voice_calls row, column by column,
  and the reason a call is quarantined instead. Imported by the call step
  (`{% import "mapping/voice_calls.sql" as calls with context %}`), whose incremental machinery
  (partitions, buckets, locks) is kept apart in _incremental.sql.

  `calls.mapping(scope)`: a query of (id, reason, every voice_calls column) over the legacy calls `cl`
  that satisfy the condition `scope`; reason is NULL for a call that lands. `calls.kept_history`: the
  from and to numbers of a call whose number or lead the legacy database deleted.
-#}
{%- import "_common.sql" as c with context -%}

{#- The call's references, resolved: its user (the tenant), the number it was made from, its lead. -#}
{%- macro references() -%}
LEFT JOIN {{ c.src }}.users_voiceagent AS u ON cl.initiated_by = u.id
LEFT JOIN {{ c.src }}.numbers_voiceagent AS n ON cl.from_number_id = n.id
LEFT JOIN (
    SELECT
        legacy_lead.id,
        legacy_lead.lead_number,
        lead_map.target_id::uuid AS lead_id
    FROM {{ c.src }}.leads_voiceagent AS legacy_lead
    LEFT JOIN {{ c.tgt }}.migration_lineage AS lead_map
        ON lead_map.source_table = 'leads_voiceagent' AND legacy_lead.id::text = lead_map.source_id
) AS l ON cl.target = l.id
{%- endmacro -%}

{#- Why a call is quarantined (NULL when it lands): it needs a tenant, and its values must fit. -#}
{%- macro reject_reason() -%}
CASE
    {{ c.owner_reason("cl.initiated_by", "u") }}
    WHEN cl.agent NOT BETWEEN -2147483648 AND 2147483647 THEN 'out_of_range:agent_id'
    {{ c.too_long("btrim(cl.status)", 50, "status") }}
    {{ c.too_long("n.phone_number", 50, "from_number") }}
    {{ c.too_long("btrim(l.lead_number)", 50, "to_number") }}
    {{ c.too_long("u.user_id", 255, "initiated_by") }}
END
{%- endmacro -%}

{#- The extended fields the guide keeps in voice_calls.metadata, each under its own name. -#}
{%- macro metadata(extra="") -%}
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
    'transcriptions', cl.transcriptions{{ extra }}
)
{%- endmacro -%}

{#-
  A call's history outlives the legacy row it references: when the number it was made from (or the
  lead it called) is deleted from the legacy database, the call keeps the phone it landed with instead
  of losing it (looked up for those calls only). Its lead_id, which would point at nothing, is cleared.
-#}
{%- macro kept_history(ref_alias, ref_column, value, target_column) -%}
CASE
    WHEN {{ ref_column }} IS NOT NULL AND {{ ref_alias }}.id IS NULL
        THEN (
            SELECT landed.{{ target_column }} FROM {{ c.tgt }}.voice_calls AS landed
            WHERE landed.id = cl.id
        )
    ELSE {{ value }}
END
{%- endmacro -%}

{%- macro mapping(scope) -%}
SELECT
    cl.id,
    {{ reject_reason() }} AS reason,
    u.organization_id AS tenant_id,
    cl.voice::text AS voice_id,
    CASE WHEN cl.agent BETWEEN -2147483648 AND 2147483647 THEN cl.agent::integer END AS agent_id,
    {{ kept_history("n", "cl.from_number_id", "n.phone_number", "from_number") }} AS from_number,
    {{ kept_history("l", "cl.target", "nullif(btrim(l.lead_number), '')", "to_number") }} AS to_number,
    lower(btrim(cl.status)) AS status,
    cl.added_context,
    l.lead_id,
    u.user_id AS initiated_by,
    cl.call_recording_url AS recording_url,
    (cl.started_at AT TIME ZONE 'UTC') AS started_at,
    (cl.ended_at AT TIME ZONE 'UTC') AS ended_at,
    (cl.started_at AT TIME ZONE 'UTC') AS created_at,
    -- Built once per row (a `||` would copy every transcript again); the original status is kept
    -- only when normalising changed it.
    CASE
        WHEN cl.status <> lower(btrim(cl.status)) THEN {{ metadata(", 'legacy_status', cl.status") }}
        ELSE {{ metadata() }}
    END AS metadata
FROM {{ c.src }}.call_logs_voiceagent AS cl
{{ references() }}
WHERE {{ scope }}
{%- endmacro -%}
