-- Rebuilds the calls' findings, summed (migration_call_findings_summary): landed calls whose agent or
-- lead belongs to another tenant (marking those a resource_permissions grant covers) and calls whose
-- agent, lead or voice did not land, per kind and tenants, with a few call ids. The calls one by one
-- are the view migration_call_findings. Findings are for the cutover to decide on; they never fail
-- the run.
{% import "_common.sql" as c with context %}
{#- What a flagged call says (flagged_calls' columns), each group of calls saying the same. -#}
{%- set says = ["tenant_id", "agent_kind", "agent_tenant_id", "agent_granted", "lead_kind", "lead_tenant_id",
    "voice_kind"] -%}
{#- The slice of 8 a call falls in, by its id's last hex digit: each keeps its smallest id as an example. -#}
{%- macro slice_of(id) -%}ascii(right({{ id }}::text, 1)) % 8{%- endmacro -%}
{{ c.serialize_step() }}

-- One GROUP BY pass over the calls, into temp tables so that it may run in parallel workers (an
-- INSERT's query cannot): each flagged call is counted once in the group of everything it says (its
-- tenant, and each kind with its referenced tenant), and only the groups, a few per tenant pair
-- whatever the data, are unfolded into findings: a call's cost does not grow with how many findings
-- it makes. Each group keeps the smallest id of each of 8 slices of its calls (by the id's last hex
-- digit): examples without sorting every call.
-- The planner cannot know how few groups those are (it guesses one per call or so) and would sort
-- every call, spilling to disk; a hash aggregate keeps a row per group.
SET LOCAL enable_sort = off;

-- A Jinja loop writes the groups' columns: sqlfluff cannot indent it.
-- noqa: disable=LT02
CREATE TEMP TABLE flagged_groups ON COMMIT DROP AS
SELECT
    {%- for column in says %}
    flagged.{{ column }},
    {%- endfor %}
    {{ slice_of("flagged.id") }} AS slice,
    count(*) AS calls,
    min(flagged.id::text) AS example_call_id
FROM ({{ c.flagged_calls() }}) AS flagged
GROUP BY
    {%- for column in says %}
    flagged.{{ column }},
    {%- endfor %}
    {{ slice_of("flagged.id") }};
-- noqa: enable=LT02

CREATE TEMP TABLE dangling_groups ON COMMIT DROP AS
SELECT
    dangling.tenant_id,
    count(*) AS calls,
    min(dangling.id::text) AS example_call_id
FROM ({{ c.calls_without_migrated_lead() }}) AS dangling
GROUP BY dangling.tenant_id, {{ slice_of("dangling.id") }};

SET LOCAL enable_sort = on;

DELETE FROM {{ c.tgt }}.migration_call_findings_summary;

INSERT INTO {{ c.tgt }}.migration_call_findings_summary (
    kind, tenant_id, referenced_tenant_id, covered_by_grant, calls, example_call_ids
)
SELECT
    per_slice.kind,
    per_slice.tenant_id,
    per_slice.referenced_tenant_id,
    per_slice.covered_by_grant,
    sum(per_slice.calls),
    array_agg(per_slice.example_call_id ORDER BY per_slice.example_call_id)
FROM (
    SELECT
        f.kind,
        g.tenant_id,
        f.referenced_tenant_id,
        f.covered_by_grant,
        sum(g.calls) AS calls,
        min(g.example_call_id) AS example_call_id
    FROM flagged_groups AS g
    CROSS JOIN
        LATERAL ({{ c.finding_kinds("g", referenced=False) }}) AS f (
            kind, referenced_id, referenced_tenant_id, covered_by_grant
        )
    WHERE f.kind IS NOT NULL
    GROUP BY f.kind, g.tenant_id, f.referenced_tenant_id, f.covered_by_grant, g.slice
    UNION ALL
    SELECT
        'lead_not_migrated',
        d.tenant_id,
        NULL::uuid,
        FALSE,
        d.calls,
        d.example_call_id
    FROM dangling_groups AS d
) AS per_slice
GROUP BY per_slice.kind, per_slice.tenant_id, per_slice.referenced_tenant_id, per_slice.covered_by_grant;

-- Per-call findings an earlier version stored in migration_findings (a no-op since): those the steps
-- record (a lead the application took over) stay.
DELETE FROM {{ c.tgt }}.migration_findings
WHERE source_table = 'call_logs_voiceagent';

-- Done with it (a dry run runs every step in one transaction).
DROP TABLE flagged_groups, dangling_groups;
