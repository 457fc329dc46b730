-- Every legacy call lands once in voice_calls (same uuid; the mapping is mapping/voice_calls.sql) or is
-- quarantined with a reason. Runs as one transaction per partition of the call ids, concurrently; a
-- full run (no window) rebuilds only the buckets of call ids whose inputs changed since the last full
-- run, a windowed run compares every call of its window and writes those that differ (the
-- machinery: _incremental.sql). The mapping is a view, inlined by the planner: set-based passes, no
-- copy of the big table.
{% import "_common.sql" as c with context %}
{% import "_incremental.sql" as inc with context %}
{% import "mapping/voice_calls.sql" as calls with context %}
{%- set table = catalog_table("call_logs_voiceagent") -%}
{%- set window = migration_window() -%}
{#- Bump when the mapping changes, so that a re-run rebuilds every call. -#}
{%- set mapping_version = 1 -%}
{%- set scope = inc.in_partition("cl.id") ~ " AND " ~ c.in_window("cl.started_at", window) -%}

{#-
  Writes the mapped calls of the changed buckets (of a full run; a windowed run: of its window) and
  counts the writes; the calls it inserts join migration_calls, the calls the migration wrote.
  `fresh`: only the buckets that hold no call yet, by plain INSERT, which spares each row the upsert's
  conflict check (a first run's whole call log); otherwise an upsert that writes a call only when it
  differs, and only a call the migration wrote.
-#}
{%- macro write_calls(fresh) -%}
{% call c.counted_upsert("call_logs_voiceagent", part=inc.partition_index, owned_ids=c.tgt ~ "." ~ table.owned_ids) %}
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
        -- Never a call the migration did not write (left out, it shows as missing in the account).
        AND t.id IN (SELECT written.id FROM {{ c.tgt }}.{{ table.owned_ids }} AS written)
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
-- The buckets to rebuild: those whose inputs changed since the last full run (a call written, updated
-- or deleted in the legacy database, or what it reads), and those whose calls the migration wrote
-- are not what should be landed (one removed from the target). On a re-run over unchanged data this
-- is empty, and every statement below ends at once.
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
        INNER JOIN {{ c.tgt }}.{{ table.owned_ids }} AS written ON vc.id = written.id
        WHERE {{ inc.in_partition("vc.id") }}
    ) AS ids
    GROUP BY ids.bucket
),

known AS (
    SELECT
        b.bucket,
        b.fingerprint
    FROM {{ c.tgt }}.migration_call_buckets AS b
    WHERE mod(b.bucket / 256, {{ inc.partition_count }}) = {{ inc.partition_index }}
)

SELECT
    coalesce(cs.bucket, known.bucket, landed.bucket) AS bucket,
    coalesce(cs.fingerprint, 0) AS fingerprint,
    coalesce(cs.landable_calls, 0) AS landable_calls,
    landed.bucket IS NULL AS fresh
FROM current_state AS cs
FULL JOIN known ON cs.bucket = known.bucket
FULL JOIN landed ON coalesce(cs.bucket, known.bucket) = landed.bucket
WHERE
    known.fingerprint IS DISTINCT FROM coalesce(cs.fingerprint, 0)
    OR coalesce(landed.landed_calls, 0) <> coalesce(cs.landable_calls, 0);

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

-- Every call is landed or quarantined, never both, and neither for a call the legacy database no longer
-- holds: a quarantined call that lands now, or is gone, leaves the quarantine. Hash joins against
-- call_state (not indexed: a nested loop would scan it once per quarantined call, 30 s at 200k calls).

DELETE FROM {{ c.tgt }}.migration_rejects AS r
WHERE
    r.source_table = 'call_logs_voiceagent'
    AND {{ inc.in_partition("r.source_id::uuid") }}
    {{ inc.in_changed_bucket("r.source_id::uuid", window) }}
    AND NOT EXISTS (
        SELECT 1 FROM call_state AS st
        WHERE st.id = r.source_id::uuid AND st.reason IS NOT NULL
    )
    {%- if window %}
    AND (
        EXISTS (
            SELECT 1 FROM call_state AS st
            WHERE st.id = r.source_id::uuid
        )
        OR NOT EXISTS (
            SELECT 1 FROM {{ c.src }}.call_logs_voiceagent AS cl
            WHERE cl.id = r.source_id::uuid
        )
    )
    {%- endif %};

-- A landable call whose id a call of the application holds was not written (the upsert writes only
-- the migration's calls): it is quarantined, the application's call untouched. (In a bucket holding no
-- call of the migration yet, the plain INSERT fails on it instead, loudly.)
INSERT INTO {{ c.tgt }}.migration_rejects AS r (source_table, source_id, reason, source_row)
SELECT
    'call_logs_voiceagent',
    st.id::text,
    'target_id_held_by_application',
    to_jsonb(cl)
FROM call_state AS st
INNER JOIN {{ c.tgt }}.voice_calls AS held ON st.id = held.id
INNER JOIN {{ c.src }}.call_logs_voiceagent AS cl ON st.id = cl.id
WHERE
    st.reason IS NULL
    {{ inc.in_changed_bucket("st.id", window) }}
    AND NOT EXISTS (
        SELECT 1 FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
        WHERE written.id = st.id
    )
ON CONFLICT (source_table, source_id) DO UPDATE SET
    reason = excluded.reason,
    source_row = excluded.source_row,
    rejected_at = excluded.rejected_at
WHERE (r.reason, r.source_row) IS DISTINCT FROM (excluded.reason, excluded.source_row);

-- The calls the migration wrote that no legacy call maps onto any more (deleted from the legacy
-- database, or quarantined now) leave the target, counted as deleted. A full run looks in the buckets
-- it rebuilds; a windowed run at the calls of its window (by the started_at they landed with).
CREATE TEMP TABLE unmapped_calls ON COMMIT DROP AS
SELECT written.id
FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
{%- if window %}
INNER JOIN {{ c.tgt }}.voice_calls AS vc ON written.id = vc.id
{%- endif %}
WHERE
    {{ inc.in_partition("written.id") }}
    {{ inc.in_changed_bucket("written.id", window) }}
    {%- if window %}
    AND vc.started_at >= ({{ window.start_sql }} AT TIME ZONE 'UTC')
    AND vc.started_at < ({{ window.end_sql }} AT TIME ZONE 'UTC')
    AND (
        NOT EXISTS (
            SELECT 1 FROM {{ c.src }}.call_logs_voiceagent AS cl
            WHERE cl.id = written.id
        )
        OR EXISTS (
            SELECT 1 FROM call_state AS st
            WHERE st.id = written.id AND st.reason IS NOT NULL
        )
    )
    {%- else %}
    AND NOT EXISTS (
        SELECT 1 FROM call_state AS st
        WHERE st.id = written.id AND st.reason IS NULL
    )
    {%- endif %};

{{ c.deletion_valve(table, "unmapped_calls",
    migrated="SELECT count(*) FROM " ~ c.tgt ~ "." ~ table.owned_ids ~ " AS written WHERE " ~ inc.in_partition("written.id"),
    rows_divisor=inc.partition_count) }}

-- The calls to remove are few: each is looked up by id, rather than hashing every call (0.5 s per
-- partition at 1M calls).
SET LOCAL enable_nestloop = on;

WITH removed AS (
    DELETE FROM {{ c.tgt }}.voice_calls AS vc
    USING unmapped_calls AS u
    WHERE vc.id = u.id
    RETURNING vc.tenant_id
)

INSERT INTO {{ c.tgt }}.migration_run_writes AS w (run_id, source_table, tenant_id, part, inserted, updated, deleted)
SELECT
    {{ c.run }},
    'call_logs_voiceagent',
    removed.tenant_id,
    {{ inc.partition_index }},
    0,
    0,
    count(*)
FROM removed
GROUP BY removed.tenant_id
ON CONFLICT (run_id, source_table, tenant_id, part) DO UPDATE SET
    deleted = w.deleted + excluded.deleted;

DELETE FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
USING unmapped_calls AS u
WHERE written.id = u.id;

-- Whole-table passes again: hash joins.
SET LOCAL enable_nestloop = off;

{#- A windowed run answers for the calls of its window only (by the started_at they landed with). -#}
{%- set in_scope -%}
{{ inc.in_partition("written.id") }}
{%- if window %}
        AND EXISTS (
            SELECT 1 FROM {{ c.tgt }}.voice_calls AS vc
            WHERE
                vc.id = written.id
                AND vc.started_at >= ({{ window.start_sql }} AT TIME ZONE 'UTC')
                AND vc.started_at < ({{ window.end_sql }} AT TIME ZONE 'UTC')
        )
{%- endif %}
{%- endset %}
{{ c.record_orphans(table, part=inc.partition_index, in_part=in_scope) }};

-- The partition's account of its calls (of the window), in this step's snapshot.
{{ c.record_scope(table, window, part=inc.partition_index, in_part=inc.in_partition("lg.id")) }};

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
