-- Rebuilds the calls' findings, summed (migration_call_findings_summary): landed calls whose agent or
-- lead belongs to another tenant (marking those a resource_permissions grant covers) and calls whose
-- agent, lead or voice did not land, per kind and tenants, with a few call ids. The calls one by one
-- are the view migration_call_findings. Findings are for the cutover to decide on; they never fail
-- the run.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

-- One GROUP BY pass over the view, into a temp table so that it may run in parallel workers (an
-- INSERT's query cannot). Each group keeps the smallest id of each of 8 slices of its calls (by the
-- id's last hex digit): examples without sorting every call. Whatever the data, the result is a few
-- rows per kind and tenant pair.
-- The planner cannot know how few groups those are (it guesses one per call or so) and would sort
-- every finding, spilling to disk; a hash aggregate keeps a row per group.
SET LOCAL enable_sort = off;

CREATE TEMP TABLE call_findings ON COMMIT DROP AS
SELECT
    f.kind,
    f.tenant_id,
    f.referenced_tenant_id,
    f.covered_by_grant,
    count(*) AS calls,
    min(f.source_id) AS example_call_id
FROM {{ c.tgt }}.migration_call_findings AS f
GROUP BY f.kind, f.tenant_id, f.referenced_tenant_id, f.covered_by_grant, ascii(right(f.source_id, 1)) % 8;

SET LOCAL enable_sort = on;

DELETE FROM {{ c.tgt }}.migration_call_findings_summary;

INSERT INTO {{ c.tgt }}.migration_call_findings_summary (
    kind, tenant_id, referenced_tenant_id, covered_by_grant, calls, example_call_ids
)
SELECT
    f.kind,
    f.tenant_id,
    f.referenced_tenant_id,
    f.covered_by_grant,
    sum(f.calls),
    array_agg(f.example_call_id ORDER BY f.example_call_id)
FROM call_findings AS f
GROUP BY f.kind, f.tenant_id, f.referenced_tenant_id, f.covered_by_grant;

-- Per-call findings an earlier version stored in migration_findings (a no-op since): those the steps
-- record (a lead the application took over) stay.
DELETE FROM {{ c.tgt }}.migration_findings
WHERE source_table = 'call_logs_voiceagent';

-- Done with it (a dry run runs every step in one transaction).
DROP TABLE call_findings;
