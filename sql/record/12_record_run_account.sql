-- The run's account: per legacy table (of the catalog) and tenant, the rows in scope, landed (in the
-- lineage, or among the ids the migration wrote) and rejected (in the quarantine, by reason), and
-- those that break conservation (in neither, or in both), as each step counted them in its own
-- transaction; what the steps inserted, updated and removed from the target (migration_run_writes);
-- what they left unchanged; the rows written after a step took its table (pending: the next run's);
-- and its calls whose agent or lead belongs to another tenant (cross_tenant_findings). Scope: every
-- row of the small tables (every run brings them up to date), the calls of the run's window (all of
-- them when it has none).
-- Recorded per tenant in migration_run_tables (read by check_run_balanced and report_run) and summed
-- per table in migration_reconciliation (read by check_conservation and report_reconciliation).
{% import "_common.sql" as c with context %}
{%- set window = migration_window() -%}
{#- The first five of the space-separated ids that `ids` aggregates, in order ('' for none). -#}
{%- macro first_ids(ids) -%}
coalesce((
    SELECT string_agg(first.id, ' ' ORDER BY first.id)
    FROM (
        SELECT unbalanced.id
        FROM unnest(string_to_array(nullif({{ ids }}, ''), ' ')) AS unbalanced (id)
        WHERE unbalanced.id <> ''
        ORDER BY unbalanced.id
        LIMIT 5
    ) AS first
), '')
{%- endmacro -%}
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{# Every legacy row in scope as it stands now and its outcome (pending: written after the run's snapshot). #}
{%- macro live_outcomes() -%}
{%- for table in catalog %}
{{ "UNION ALL" if not loop.first }}
SELECT
    '{{ table.source_table }}' AS source_table,
    o.tenant_id,
    o.source_id,
    o.reason,
    o.landed,
    o.rejected,
    -- Worked out for the rows in neither only.
    CASE
        WHEN NOT o.landed AND NOT o.rejected THEN {{ c.written_after_snapshot("o.row_version") }}
        ELSE FALSE
    END AS pending
FROM ({{ c.outcomes(table, window) }}) AS o
{%- endfor %}
{%- endmacro -%}

{{ c.serialize_step() }}
-- Passes over every legacy row: hash joins only. The quarantine and the lineage may have grown by
-- thousands of rows in this run, unseen by autovacuum yet: analyse them first, or the planner may
-- pick a nested loop over them against a million calls, which takes minutes.
SET LOCAL enable_nestloop = off;
ANALYZE {{ c.tgt }}.migration_rejects, {{ c.tgt }}.migration_lineage;

-- The account per tenant: the rows in scope as each step counted them in its own transaction
-- (migration_run_scope, per partition of the calls), with what it wrote: what a step saw and did,
-- which the legacy application's later writes cannot unbalance.
CREATE TEMP TABLE run_scope ON COMMIT DROP AS
SELECT
    s.source_table,
    s.tenant_id,
    s.reason,
    sum(s.in_scope) AS in_scope,
    sum(s.landed) AS landed,
    sum(s.rejected) AS rejected,
    sum(s.missing) AS missing,
    sum(s.doubled) AS doubled,
    string_agg(nullif(s.unbalanced_ids, ''), ' ') AS unbalanced_ids
FROM {{ c.tgt }}.migration_run_scope AS s
WHERE s.run_id = {{ c.run }}
GROUP BY s.source_table, s.tenant_id, s.reason;

-- The reconciliation: every legacy row in scope as it stands now and its outcome, so that a row lost
-- from the lineage or the target since its step shows. A row in neither that was written after the
-- run's snapshot is pending (the next run's: never a failure); one written before is missing.
CREATE TEMP TABLE live_scope ON COMMIT DROP AS
SELECT
    o.source_table,
    o.tenant_id,
    o.reason,
    count(*) AS in_scope,
    count(*) FILTER (WHERE o.landed) AS landed,
    count(*) FILTER (WHERE o.rejected) AS rejected,
    count(*) FILTER (WHERE NOT o.landed AND NOT o.rejected AND o.pending) AS pending,
    count(*) FILTER (WHERE NOT o.landed AND NOT o.rejected AND NOT o.pending) AS missing,
    count(*) FILTER (WHERE o.landed AND o.rejected) AS doubled
FROM (
    {{ live_outcomes() | indent(4) }}
) AS o
GROUP BY o.source_table, o.tenant_id, o.reason;

-- The first five ids, per table, of the rows that break conservation (in neither and not pending, or in
-- both), read again only when there are some: collecting them in the pass above cost about 1.7 s of
-- its 3.6-4.1 s at 1M calls, with none to collect. Numbered, not gathered whole: a target emptied by
-- accident leaves millions of them.
CREATE TEMP TABLE live_unbalanced ON COMMIT DROP AS
SELECT
    u.source_table,
    string_agg(u.source_id, ' ' ORDER BY u.source_id) AS unbalanced_ids
FROM (
    SELECT
        o.source_table,
        o.source_id,
        row_number() OVER (PARTITION BY o.source_table ORDER BY o.source_id) AS position
    FROM (
        {{ live_outcomes() | indent(8) }}
    ) AS o
    WHERE
        EXISTS (
            SELECT 1 FROM live_scope AS live
            WHERE live.missing > 0 OR live.doubled > 0
        )
        AND o.landed = o.rejected
        AND NOT (NOT o.landed AND o.pending)
) AS u
WHERE u.position <= 5
GROUP BY u.source_table;

-- The calls whose agent or lead belongs to another tenant, each counted once, from the target tables
-- (one pass over the calls against the small tables: its cost does not grow with how many there are),
-- into a temp table so that the pass may run in parallel workers (an INSERT's query cannot: it ran
-- in one process). A windowed run counts its window's, by the legacy calls' started_at as the scope
-- does.
CREATE TEMP TABLE cross_tenant_calls ON COMMIT DROP AS
SELECT
    f.tenant_id,
    count(*) AS cross_tenant_findings
FROM ({{ c.flagged_calls() }}) AS f
{%- if window %}
INNER JOIN {{ c.src }}.call_logs_voiceagent AS cl ON f.id = cl.id
{%- endif %}
WHERE
    (f.agent_kind = 'agent_in_other_tenant' OR f.lead_kind = 'lead_in_other_tenant')
    AND {{ c.in_window("cl.started_at", window) }}
GROUP BY f.tenant_id;

ANALYZE run_scope, live_scope, cross_tenant_calls;

DELETE FROM {{ c.tgt }}.migration_run_tables
WHERE run_id = {{ c.run }};

INSERT INTO {{ c.tgt }}.migration_run_tables (
    run_id, source_table, target_table, tenant_id, in_scope, landed, inserted, updated, unchanged, rejected,
    pending, deleted, missing, doubled, unbalanced_ids, rejected_by_reason, cross_tenant_findings
)
WITH per_tenant AS (
    SELECT
        s.source_table,
        s.tenant_id,
        sum(s.in_scope) AS in_scope,
        sum(s.landed) AS landed,
        sum(s.rejected) AS rejected,
        (
            SELECT coalesce(sum(live.pending), 0) FROM live_scope AS live
            WHERE live.source_table = s.source_table AND live.tenant_id IS NOT DISTINCT FROM s.tenant_id
        ) AS pending,
        sum(s.missing) AS missing,
        sum(s.doubled) AS doubled,
        coalesce(
            jsonb_object_agg(s.reason, s.rejected) FILTER (WHERE s.reason IS NOT NULL AND s.rejected > 0), '{}'
        ) AS rejected_by_reason,
        {{ first_ids("string_agg(s.unbalanced_ids, ' ')") }} AS unbalanced_ids
    FROM run_scope AS s
    GROUP BY s.source_table, s.tenant_id
),

writes AS (
    SELECT
        w.source_table,
        w.tenant_id,
        sum(w.inserted) AS inserted,
        sum(w.updated) AS updated,
        sum(w.deleted) AS deleted
    FROM {{ c.tgt }}.migration_run_writes AS w
    WHERE w.run_id = {{ c.run }}
    GROUP BY w.source_table, w.tenant_id
)

-- A tenant may have only deletions (its last rows left the legacy database): writes join in full.
SELECT
    {{ c.run }},
    t.source_table,
    t.target_table,
    acc.tenant_id,
    coalesce(acc.in_scope, 0),
    coalesce(acc.landed, 0),
    coalesce(acc.inserted, 0),
    coalesce(acc.updated, 0),
    coalesce(acc.in_scope, 0) - coalesce(acc.rejected, 0) - coalesce(acc.inserted, 0) - coalesce(acc.updated, 0),
    coalesce(acc.rejected, 0),
    coalesce(acc.pending, 0),
    coalesce(acc.deleted, 0),
    coalesce(acc.missing, 0),
    coalesce(acc.doubled, 0),
    coalesce(acc.unbalanced_ids, ''),
    coalesce(acc.rejected_by_reason, '{}'),
    CASE WHEN t.source_table = 'call_logs_voiceagent' THEN coalesce(f.cross_tenant_findings, 0) ELSE 0 END
FROM {{ c.migrated_tables() }}
INNER JOIN (
    SELECT
        coalesce(pt.source_table, w.source_table) AS source_table,
        coalesce(pt.tenant_id, w.tenant_id) AS tenant_id,
        pt.in_scope,
        pt.landed,
        pt.rejected,
        pt.pending,
        pt.missing,
        pt.doubled,
        pt.unbalanced_ids,
        pt.rejected_by_reason,
        w.inserted,
        w.updated,
        w.deleted
    FROM per_tenant AS pt
    FULL JOIN writes AS w ON pt.source_table = w.source_table AND pt.tenant_id IS NOT DISTINCT FROM w.tenant_id
) AS acc ON t.source_table = acc.source_table
LEFT JOIN cross_tenant_calls AS f ON acc.tenant_id = f.tenant_id;

-- The reconciliation per table, from the rows as they stand (every table of the catalog, an empty one
-- too), with what the run removed.
DELETE FROM {{ c.tgt }}.migration_reconciliation
WHERE run_id = {{ c.run }};

INSERT INTO {{ c.tgt }}.migration_reconciliation (
    run_id, window_start, window_end, position, source_table, target_table, legacy_rows, landed, rejected,
    pending, deleted, missing, doubled, unbalanced_ids, rejected_by_reason
)
SELECT
    {{ c.run }},
    {{ window.start_sql if window else "NULL" }},
    {{ window.end_sql if window else "NULL" }},
    t.position,
    t.source_table,
    t.target_table,
    coalesce(sum(a.in_scope), 0),
    coalesce(sum(a.landed), 0),
    coalesce(sum(a.rejected), 0),
    coalesce(sum(a.pending), 0),
    coalesce((
        SELECT sum(w.deleted) FROM {{ c.tgt }}.migration_run_writes AS w
        WHERE w.run_id = {{ c.run }} AND w.source_table = t.source_table
    ), 0),
    coalesce(sum(a.missing), 0),
    coalesce(sum(a.doubled), 0),
    coalesce((
        SELECT u.unbalanced_ids FROM live_unbalanced AS u
        WHERE u.source_table = t.source_table
    ), ''),
    coalesce((
        SELECT string_agg(per_reason.reason || '=' || per_reason.rejected, ', ' ORDER BY per_reason.reason)
        FROM (
            SELECT
                live.reason,
                sum(live.rejected) AS rejected
            FROM live_scope AS live
            WHERE live.source_table = t.source_table AND live.rejected > 0
            GROUP BY live.reason
        ) AS per_reason
    ), '')
FROM {{ c.migrated_tables() }}
LEFT JOIN live_scope AS a ON t.source_table = a.source_table
GROUP BY t.position, t.source_table, t.target_table;

-- Done with it (a dry run runs every step in one transaction).
DROP TABLE run_scope, live_scope, live_unbalanced, cross_tenant_calls;
