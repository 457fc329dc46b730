-- Every legacy call lands once in voice_calls (same uuid; the mapping is mapping/voice_calls.sql) or is
-- quarantined with a reason. Runs in chunks of call ids, each a short transaction of its own,
-- `call_partitions` of them at once; a full run (no window) rebuilds only the chunks whose inputs
-- changed since the last full run, a windowed run compares every call of its window and writes those
-- that differ (the machinery: _incremental.sql). The mapping is a view, inlined by the planner:
-- set-based passes over the chunk, no copy of the big table.
{% import "_common.sql" as c with context %}
{% import "_incremental.sql" as inc with context %}
{% import "mapping/voice_calls.sql" as calls with context %}
{%- set table = catalog_table("call_logs_voiceagent") -%}
{%- set window = migration_window() -%}
{#- Bump when the mapping changes, so that a re-run rebuilds every call. -#}
{%- set mapping_version = 1 -%}
{%- set scope = inc.in_chunk("cl.id") ~ " AND " ~ c.in_window("cl.started_at", window) -%}
{#- Whether the chunk is to be (re)built, and whether its range holds no call of the target yet. -#}
{%- set changed = "(SELECT cc.changed FROM chunk_change AS cc)" -%}

{#-
  Writes the mapped calls of a changed chunk (a windowed run: of its window) and counts the writes;
  the calls it inserts join migration_calls, the calls the migration wrote. `fresh`: a chunk whose
  range holds no call of the target yet, by plain INSERT, which spares each row the upsert's conflict
  check (a first run's whole call log); otherwise an upsert that writes a call only when it differs,
  and only a call the migration wrote.
-#}
{%- macro write_calls(fresh) -%}
{% call c.counted_upsert("call_logs_voiceagent", part=inc.chunk_number, owned_ids=c.tgt ~ "." ~ table.owned_ids) %}
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
        AND (SELECT cc.changed AND {{ "" if fresh else "NOT " }}cc.fresh FROM chunk_change AS cc)
    {%- if not fresh %}
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "voice_id", "agent_id", "from_number", "to_number",
        "status", "added_context", "lead_id", "initiated_by", "recording_url", "started_at", "ended_at",
        "created_at", "metadata"]) }}
        -- Never a call the migration did not write (left out, it shows as missing in the account).
        AND t.id IN (
            SELECT written.id FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
            WHERE {{ inc.in_chunk("written.id") }}
        )
    {%- endif %}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %}
{%- endmacro %}

{{ c.serialize_step() }}

-- The plan, in a transaction of its own: the run's chunks (_incremental.sql).
{{ inc.plan_chunks(c.src ~ ".call_logs_voiceagent", params.call_chunk_size | int) }};

{{ inc.each_chunk() }}
-- The chunk's joins are planned from its own size: a few tens of thousands of calls.
SET LOCAL work_mem = '256MB';
-- The big tables are only ever read through their ids (the chunk's range, or one id at a time), never
-- whole: the statistics of the target lag a run that fills it range after range, and a chunk once
-- planned a scan of the whole target for each of its calls (623 s for one chunk of a 5M first run).
-- For the same reason no join has the chunk's range of a target table on both sides: with the range
-- estimated at a row or two (the histogram of a table filled in id order ends before the chunk), its
-- inner side was scanned whole for each row of the outer (1,195 s for one chunk of a 5M first run).
-- The range is read on one side; the other table is looked up by id.
SET LOCAL enable_seqscan = off;

-- What decides whether a call must be (re)built, kept narrow so that joins hash ids, not rows.
-- The fingerprint covers every input of the mapping: the call row's version (its xmin, which
-- every UPDATE of the row changes, so the row's columns need not be read and hashed) and what it
-- reads from users, numbers and leads. A legacy table restored from a dump gets new versions: its
-- calls are all compared again, which is safe.
CREATE OR REPLACE TEMP VIEW call_inputs AS
SELECT
    cl.id,
    {{ calls.reject_reason() }} AS reason,
    {{ c.tenant_of(table) }} AS tenant_id,
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

-- Those inputs for the chunk's calls (of the window), in one pass: whether the chunk is to be rebuilt,
-- the quarantine and the chunk's account (with each call's tenant) are decided from it.
CREATE TEMP TABLE call_state ON COMMIT DROP AS
SELECT
    i.id,
    i.reason,
    i.tenant_id,
    i.fingerprint
FROM call_inputs AS i;

ANALYZE call_state;

-- The mapping of the guide, column by column (mapping/voice_calls.sql), for the chunk's calls.
CREATE OR REPLACE TEMP VIEW call_mapping AS
{{ calls.mapping(scope) }};

-- Whether the chunk is to be (re)built: a windowed run always; a full run when its inputs changed
-- since the last full run (a call written, updated or deleted in the legacy database, or what it
-- reads), or when the calls the migration wrote are not what should be landed (one removed from the
-- target). On a re-run over unchanged data no chunk is, and every statement below ends at once.
-- `fresh`: the chunk's range holds no call of the target at all.
CREATE TEMP TABLE chunk_change ON COMMIT DROP AS
SELECT
    {%- if window %}
    TRUE AS changed,
    FALSE AS fresh,
    {%- else %}
    (
        known.fingerprint IS DISTINCT FROM now_state.fingerprint
        OR known.landable_calls IS DISTINCT FROM now_state.landable_calls
        OR NOT known.complete
        OR landed.calls <> now_state.landable_calls
    ) AS changed,
    in_target.calls = 0 AS fresh,
    {%- endif %}
    now_state.fingerprint,
    now_state.landable_calls
FROM (
    SELECT
        coalesce(sum(st.fingerprint), 0) AS fingerprint,
        count(*) FILTER (WHERE st.reason IS NULL) AS landable_calls
    FROM call_state AS st
) AS now_state
CROSS JOIN (
    SELECT
        coalesce(sum(k.fingerprint), 0) AS fingerprint,
        coalesce(sum(k.landable_calls), 0) AS landable_calls,
        coalesce(bool_and(k.fingerprint IS NOT NULL), TRUE) AS complete
    FROM {{ c.tgt }}.migration_call_chunks AS k
    WHERE {{ inc.in_chunk("k.lower_id") }}
) AS known
CROSS JOIN (
    SELECT count(*) AS calls
    FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
    WHERE
        {{ inc.in_chunk("written.id") }}
        AND EXISTS (SELECT 1 FROM {{ c.tgt }}.voice_calls AS vc WHERE vc.id = written.id)
) AS landed
CROSS JOIN (
    SELECT count(*) AS calls
    FROM {{ c.tgt }}.voice_calls AS vc
    WHERE {{ inc.in_chunk("vc.id") }}
) AS in_target;

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
    AND {{ changed }}
ON CONFLICT (source_table, source_id) DO UPDATE SET
    reason = excluded.reason,
    source_row = excluded.source_row,
    rejected_at = excluded.rejected_at
WHERE (r.reason, r.source_row) IS DISTINCT FROM (excluded.reason, excluded.source_row);

-- noqa: disable=LT02
{% if not window -%}
{{ write_calls(fresh=True) }};
{%- endif %}
-- noqa: enable=LT02

{{ write_calls(fresh=False) }};

-- Every call is landed or quarantined, never both, and neither for a call the legacy database no longer
-- holds: a quarantined call that lands now, or is gone, leaves the quarantine. (The quarantine's ids
-- are text: the chunk's range of them, as text, is an index range too.)
DELETE FROM {{ c.tgt }}.migration_rejects AS r
WHERE
    r.source_table = 'call_logs_voiceagent'
    AND r.source_id BETWEEN ({{ inc.chunk_lower }})::text AND ({{ inc.chunk_upper }})::text
    AND {{ inc.in_chunk("r.source_id::uuid") }}
    AND {{ changed }}
    -- NOT IN over the chunk's few quarantined calls: one hashed lookup per quarantined row (the
    -- quarantine's statistics lag its inserts, and an anti-join was planned as a nested loop).
    AND r.source_id::uuid NOT IN (
        SELECT st.id FROM call_state AS st
        WHERE st.reason IS NOT NULL
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
-- the migration's calls, and a plain INSERT runs only where the target holds no call): it is
-- quarantined, the application's call untouched.
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
    AND {{ changed }}
    -- NOT IN over the chunk's range of the calls the migration wrote: hashed once. (An anti-join was
    -- planned as a merge with every id the migration wrote, a pass that grows with the target.)
    AND st.id NOT IN (
        SELECT written.id FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
        WHERE {{ inc.in_chunk("written.id") }}
    )
ON CONFLICT (source_table, source_id) DO UPDATE SET
    reason = excluded.reason,
    source_row = excluded.source_row,
    rejected_at = excluded.rejected_at
WHERE (r.reason, r.source_row) IS DISTINCT FROM (excluded.reason, excluded.source_row);

-- The calls the migration wrote that no legacy call maps onto any more (deleted from the legacy
-- database, or quarantined now) leave the target, counted as deleted. A full run looks in the chunks
-- it rebuilds; a windowed run at the calls of its window (by the started_at they landed with).
CREATE TEMP TABLE unmapped_calls ON COMMIT DROP AS
SELECT written.id
FROM {{ c.tgt }}.{{ table.owned_ids }} AS written
{%- if window %}
INNER JOIN {{ c.tgt }}.voice_calls AS vc ON written.id = vc.id
{%- endif %}
WHERE
    {{ inc.in_chunk("written.id") }}
    AND {{ changed }}
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
    migrated="SELECT count(*) FROM " ~ c.tgt ~ "." ~ table.owned_ids ~ " AS written WHERE " ~ inc.in_chunk("written.id"),
    rows_divisor=inc.chunk_count) }}

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
    {{ inc.chunk_number }},
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

{#- A windowed run answers for the calls of its window only (by the started_at they landed with). -#}
{%- set in_scope -%}
{{ inc.in_chunk("written.id") }}
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
{#- A full run's call_state holds every legacy call of the chunk: the orphans are looked up there. -#}
{{ c.record_orphans(table, part=inc.chunk_number, in_part=in_scope, legacy_ids=None if window else "call_state") }};

-- The chunk's account of its calls (of the window), in its snapshot: each looked up by its id.
{{ c.record_scope(table, window, part=inc.chunk_number,
    legacy="SELECT st.id::text AS source_id, st.tenant_id, NULL::xid AS row_version FROM call_state AS st") }};

-- noqa: disable=LT02
{% if not window -%}
-- What the chunk's calls are now made of, for the next full run (a rebuilt chunk replaces the ranges
-- it covers).
DELETE FROM {{ c.tgt }}.migration_call_chunks AS k
WHERE {{ inc.in_chunk("k.lower_id") }} AND {{ changed }};

INSERT INTO {{ c.tgt }}.migration_call_chunks (lower_id, upper_id, fingerprint, landable_calls)
SELECT
    {{ inc.chunk_lower }},
    {{ inc.chunk_upper }},
    cc.fingerprint,
    cc.landable_calls
FROM chunk_change AS cc
WHERE cc.changed;
{%- endif %}
-- noqa: enable=LT02

{{ inc.checkpoint("SELECT count(*) FROM call_state") }};
