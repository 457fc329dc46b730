-- Every legacy call lands once in voice_calls (same uuid; the mapping is mapping/voice_calls.sql) or is
-- quarantined with a reason. Runs as one transaction per partition of the call ids, concurrently; a
-- full run (no window) rebuilds only the buckets of call ids whose inputs changed since the last full
-- run, a windowed run compares every call of its window and writes those that differ (the
-- machinery: _incremental.sql). The mapping is a view, inlined by the planner: set-based passes, no
-- copy of the big table.
{% import "_common.sql" as c with context %}
{% import "_incremental.sql" as inc with context %}
{% import "mapping/voice_calls.sql" as calls with context %}
{%- set window = migration_window() -%}
{#- Bump when the mapping changes, so that a re-run rebuilds every call. -#}
{%- set mapping_version = 1 -%}
{%- set scope = inc.in_partition("cl.id") ~ " AND " ~ c.in_window("cl.started_at", window) -%}

{#-
  Writes the mapped calls of the changed buckets (of a full run; a windowed run: of its window) and
  counts the writes. `fresh`: only the buckets that hold no call yet, by plain INSERT, which spares
  each row the upsert's conflict check (a first run's whole call log); otherwise an upsert that
  writes a call only when it differs.
-#}
{%- macro write_calls(fresh) -%}
{% call c.counted_upsert("call_logs_voiceagent", part=inc.partition_index) %}
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
        (now() AT TIME ZONE 'UTC'),
        m.metadata
    FROM call_mapping AS m
    WHERE
        m.reason IS NULL
        {{ inc.in_changed_bucket("m.id", window, fresh=fresh) }}
    {%- if not fresh %}
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "voice_id", "agent_id", "from_number", "to_number",
        "status", "added_context", "lead_id", "initiated_by", "recording_url", "started_at", "ended_at",
        "created_at", "metadata"]) }}
    {%- endif %}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %}
{%- endmacro %}

{{ c.serialize_step(partition_locks=inc.lock_partition()) }}
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
    {{ inc.bucket_of("cl.id") }} AS bucket,
    {{ calls.reject_reason() }} AS reason,
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
{{ calls.references() }}
WHERE {{ scope }};

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

-- The mapping of the guide, column by column (mapping/voice_calls.sql), for this partition's calls.
CREATE OR REPLACE TEMP VIEW call_mapping AS
{{ calls.mapping(scope) }};

-- Statements that only a full run executes (the block does not nest SQL):
-- noqa: disable=LT02
{% if not window -%}
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
        SELECT {{ inc.bucket_of("vc.id") }} AS bucket
        FROM {{ c.tgt }}.voice_calls AS vc
        WHERE {{ inc.in_partition("vc.id") }}
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
    {{ inc.in_changed_bucket("st.id", window) }}
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
{% if not window -%}
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
    AND {{ inc.in_partition("r.source_id::uuid") }}
    {{ inc.in_changed_bucket("r.source_id::uuid", window) }}
    AND EXISTS (
        SELECT 1 FROM {{ c.tgt }}.voice_calls AS landed
        WHERE landed.id = r.source_id::uuid
    );

-- noqa: disable=LT02
{% if not window -%}
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
