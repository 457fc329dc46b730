-- Every legacy call lands once in voice_calls (same uuid, UTC timestamps, extended fields in
-- metadata, lead_id = the migrated lead of its target) or is quarantined with a reason.
-- The mapping is a view, inlined by the planner: set-based passes, no copy of the big table.
-- Runs as one transaction per partition of the call ids (see _common.sql), concurrently.
-- A full run (no window) rebuilds only the buckets of call ids whose inputs changed since the last
-- full run; a windowed run compares every call of its window and writes those that differ.
{% import "_common.sql" as c with context %}
{#- Bump when the mapping below changes, so that a re-run rebuilds every call. -#}
{%- set mapping_version = 1 -%}

{%- macro call_metadata(extra="") -%}
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

{#- The call's references, resolved; `cl` is the call, narrow or whole. -#}
{%- macro call_references() -%}
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
WHERE
    {{ c.in_partition("cl.id") }}
    AND {{ c.in_window("cl.started_at") }}
{%- endmacro -%}

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

{#-
  Writes the mapped calls of the changed buckets (of a full run; a windowed run: of its window) and
  counts the writes. `fresh`: only the buckets that hold no call yet, by plain INSERT, which spares
  each row the upsert's conflict check (a first run's whole call log); otherwise an upsert that
  writes a call only when it differs.
-#}
{%- macro write_calls(fresh) -%}
WITH written AS (
    INSERT INTO {{ c.tgt }}.voice_calls AS t (
        id, tenant_id, voice_id, agent_id, from_number, to_number, status, added_context, lead_id,
        initiated_by, recording_url, started_at, ended_at, created_at, updated_at, metadata
    )
    SELECT
        m.id,
        m.tenant_id,
        m.voice_id,
        m.agent_id,
        m.from_number,
        m.to_number,
        m.status,
        m.added_context,
        m.lead_id,
        m.initiated_by,
        m.recording_url,
        m.started_at,
        m.ended_at,
        m.created_at,
        {{ c.now_utc() }},
        m.metadata
    FROM call_mapping AS m
    WHERE
        m.reason IS NULL
        {{ c.in_changed_bucket("m.id", fresh=fresh) }}
    {%- if not fresh %}
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "voice_id", "agent_id", "from_number", "to_number",
        "status", "added_context", "lead_id", "initiated_by", "recording_url", "started_at", "ended_at",
        "created_at", "metadata"]) }}
    {%- endif %}
    RETURNING t.id, t.tenant_id, t.xmax
)

{{ c.count_writes("call_logs_voiceagent", from_staged=False, part=c.partition_index) }}
{%- endmacro %}

{{ c.serialize_partition() }}
-- A bulk step over whole tables: hash joins in memory, never a million index probes (the planner
-- cannot estimate the partition filter and would otherwise expect a few thousand rows).
SET LOCAL work_mem = '256MB';
SET LOCAL enable_nestloop = off;

-- What decides whether a call must be (re)built, kept narrow so that joins hash ids, not rows.
-- The fingerprint covers every input of the mapping: the call row's version (its xmin, which
-- every UPDATE of the row changes, so the row's columns need not be read and hashed) and what it
-- reads from users, numbers and leads. A legacy table restored from a dump gets new versions: its
-- calls are all compared again, which is safe.
CREATE OR REPLACE TEMP VIEW call_inputs AS
SELECT
    cl.id,
    {{ c.bucket_of("cl.id") }} AS bucket,
    {{ reject_reason() }} AS reason,
    hash_record_extended(
        (cl.id, cl.row_version, u.organization_id, u.user_id, n.phone_number, l.lead_number, l.lead_id),
        {{ mapping_version }}
    ) AS fingerprint
FROM (
    SELECT
        calls.id,
        calls.initiated_by,
        calls.target,
        calls.agent,
        calls.status,
        calls.from_number_id,
        calls.started_at,
        calls.xmin::text AS row_version
    FROM {{ c.src }}.call_logs_voiceagent AS calls
) AS cl
{{ call_references() }};

-- Those inputs for this partition's calls (of the window), in one pass: the buckets to rebuild and
-- the quarantine are decided from it.
CREATE TEMP TABLE call_state ON COMMIT DROP AS
SELECT
    i.id,
    i.bucket,
    i.reason,
    i.fingerprint
FROM call_inputs AS i;

ANALYZE call_state;

-- Planned from call_state's statistics, the quarantine's statements may probe indexes: a few
-- thousand rejected calls are looked up by id rather than by scanning the whole call log.
SET LOCAL enable_nestloop = on;

-- The mapping of the guide, column by column.
CREATE OR REPLACE TEMP VIEW call_mapping AS
SELECT
    cl.id,
    {{ reject_reason() }} AS reason,
    u.organization_id AS tenant_id,
    cl.voice::text AS voice_id,
    CASE WHEN cl.agent BETWEEN -2147483648 AND 2147483647 THEN cl.agent::integer END AS agent_id,
    n.phone_number AS from_number,
    nullif(btrim(l.lead_number), '') AS to_number,
    lower(btrim(cl.status)) AS status,
    cl.added_context,
    l.lead_id,
    u.user_id AS initiated_by,
    cl.call_recording_url AS recording_url,
    {{ c.utc("cl.started_at") }} AS started_at,
    {{ c.utc("cl.ended_at") }} AS ended_at,
    {{ c.utc("cl.started_at") }} AS created_at,
    -- Built once per row (a `||` would copy every transcript again); the original status is kept
    -- only when normalising changed it.
    CASE
        WHEN cl.status <> lower(btrim(cl.status)) THEN {{ call_metadata(", 'legacy_status', cl.status") }}
        ELSE {{ call_metadata() }}
    END AS metadata
FROM {{ c.src }}.call_logs_voiceagent AS cl
{{ call_references() }};

-- Statements that only a full run executes (the block does not nest SQL):
-- noqa: disable=LT02
{% if not c.window -%}
-- The buckets to rebuild: those whose inputs changed since the last full run, and those holding
-- fewer landed calls than they should (a landed call was deleted). On a re-run over unchanged data
-- this is empty, and every statement below ends at once.
CREATE TEMP TABLE changed_buckets ON COMMIT DROP AS
WITH current_state AS (
    SELECT
        st.bucket,
        sum(st.fingerprint) AS fingerprint,
        count(*) FILTER (WHERE st.reason IS NULL) AS landable_calls
    FROM call_state AS st
    GROUP BY st.bucket
),

landed AS (
    SELECT
        ids.bucket,
        count(*) AS landed_calls
    FROM (
        SELECT {{ c.bucket_of("vc.id") }} AS bucket
        FROM {{ c.tgt }}.voice_calls AS vc
        WHERE {{ c.in_partition("vc.id") }}
    ) AS ids
    GROUP BY ids.bucket
)

SELECT
    cs.bucket,
    cs.fingerprint,
    cs.landable_calls,
    landed.bucket IS NULL AS fresh
FROM current_state AS cs
LEFT JOIN {{ c.tgt }}.migration_call_buckets AS known ON cs.bucket = known.bucket
LEFT JOIN landed ON cs.bucket = landed.bucket
WHERE
    known.fingerprint IS DISTINCT FROM cs.fingerprint
    OR coalesce(landed.landed_calls, 0) < cs.landable_calls;

ANALYZE changed_buckets;
{%- endif %}
-- noqa: enable=LT02

INSERT INTO {{ c.tgt }}.migration_rejects AS r (source_table, source_id, reason, source_row)
SELECT
    'call_logs_voiceagent',
    st.id::text,
    st.reason,
    to_jsonb(cl)
FROM call_state AS st
INNER JOIN {{ c.src }}.call_logs_voiceagent AS cl ON st.id = cl.id
WHERE
    st.reason IS NOT NULL
    {{ c.in_changed_bucket("st.id") }}
    AND NOT EXISTS (
        SELECT 1 FROM {{ c.tgt }}.voice_calls AS landed
        WHERE landed.id = st.id
    )
ON CONFLICT (source_table, source_id) DO UPDATE SET
    reason = excluded.reason,
    source_row = excluded.source_row,
    rejected_at = excluded.rejected_at
WHERE (r.reason, r.source_row) IS DISTINCT FROM (excluded.reason, excluded.source_row);

-- The mapping reads the views again: whole tables, hash joins. A full run writes the buckets that
-- hold no call yet, then the others; each statement ends at once when it has no bucket to write.
SET LOCAL enable_nestloop = off;

-- noqa: disable=LT02
{% if not c.window -%}
{{ write_calls(fresh=True) }};
{%- endif %}
-- noqa: enable=LT02

{{ write_calls(fresh=False) }};

-- A call that is landed is not quarantined: one that lands now (its user gained an organization)
-- leaves the quarantine, and one landed earlier stays landed. The quarantined calls are few: each is
-- looked up by id, rather than hashing every landed call (0.5 s per partition at 1M calls).
SET LOCAL enable_nestloop = on;

DELETE FROM {{ c.tgt }}.migration_rejects AS r
WHERE
    r.source_table = 'call_logs_voiceagent'
    AND {{ c.in_partition("r.source_id::uuid") }}
    {{ c.in_changed_bucket("r.source_id::uuid") }}
    AND EXISTS (
        SELECT 1 FROM {{ c.tgt }}.voice_calls AS landed
        WHERE landed.id = r.source_id::uuid
    );

-- noqa: disable=LT02
{% if not c.window -%}
INSERT INTO {{ c.tgt }}.migration_call_buckets AS known (bucket, fingerprint, landable_calls)
SELECT
    b.bucket,
    b.fingerprint,
    b.landable_calls
FROM changed_buckets AS b
ON CONFLICT (bucket) DO UPDATE SET
    fingerprint = excluded.fingerprint,
    landable_calls = excluded.landable_calls;
{%- endif %}
-- noqa: enable=LT02
