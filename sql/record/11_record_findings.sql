-- Rebuilds the findings: landed calls whose agent or lead belongs to another tenant (marking those a
-- resource_permissions grant covers) and calls whose agent, lead or voice did not land.
-- Findings are for the cutover to decide on; they never fail the run.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

-- The two passes over the call tables only read, into temp tables, so that they may run in
-- parallel workers (an INSERT's query cannot); what they find is few rows, analysed before use.

-- One pass over the landed calls against the small tables (agents, leads, voices).
CREATE TEMP TABLE flagged_calls ON COMMIT DROP AS
SELECT
    flagged.id,
    flagged.tenant_id,
    flagged.agent_id,
    flagged.lead_id,
    flagged.voice_id,
    flagged.agent_tenant_id,
    flagged.lead_tenant_id,
    flagged.agent_kind,
    flagged.lead_kind,
    flagged.voice_kind
FROM (
    SELECT
        vc.id,
        vc.tenant_id,
        vc.agent_id,
        vc.lead_id,
        vc.voice_id,
        va.tenant_id AS agent_tenant_id,
        ld.tenant_id AS lead_tenant_id,
        CASE
            WHEN va.tenant_id <> vc.tenant_id THEN 'agent_in_other_tenant'
            WHEN vc.agent_id IS NOT NULL AND va.id IS NULL THEN 'agent_not_migrated'
        END AS agent_kind,
        CASE WHEN ld.tenant_id <> vc.tenant_id THEN 'lead_in_other_tenant' END AS lead_kind,
        CASE WHEN vc.voice_id IS NOT NULL AND vo.id IS NULL THEN 'voice_not_migrated' END AS voice_kind
    FROM {{ c.tgt }}.voice_calls AS vc
    LEFT JOIN {{ c.tgt }}.voice_agents AS va ON vc.agent_id = va.id
    LEFT JOIN {{ c.tgt }}.leads AS ld ON vc.lead_id = ld.id
    LEFT JOIN {{ c.tgt }}.voices AS vo ON vc.voice_id = vo.id
) AS flagged
WHERE flagged.agent_kind IS NOT NULL OR flagged.lead_kind IS NOT NULL OR flagged.voice_kind IS NOT NULL;

-- One pass over the legacy calls against the small lead lineage: calls whose target has no migrated
-- lead (quarantined, or never existed).
CREATE TEMP TABLE dangling_calls ON COMMIT DROP AS
SELECT
    dangling.id,
    dangling.target
FROM {{ c.src }}.call_logs_voiceagent AS dangling
WHERE
    dangling.target IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM {{ c.tgt }}.migration_lineage AS lead_map
        WHERE lead_map.source_table = 'leads_voiceagent' AND lead_map.source_id = dangling.target::text
    );

ANALYZE flagged_calls, dangling_calls;

-- The calls' findings are rebuilt; those the steps record (a lead the application took over) stay.
DELETE FROM {{ c.tgt }}.migration_findings
WHERE source_table = 'call_logs_voiceagent';

INSERT INTO {{ c.tgt }}.migration_findings (
    kind, source_table, source_id, tenant_id, referenced_id, referenced_tenant_id, covered_by_grant
)
-- The flagged calls, unfolded into one finding per reference.
SELECT
    f.kind,
    'call_logs_voiceagent',
    flagged.id::text,
    flagged.tenant_id,
    f.referenced_id,
    f.referenced_tenant_id,
    f.covered_by_grant
FROM flagged_calls AS flagged
CROSS JOIN
    LATERAL (
        VALUES
        (
            flagged.agent_kind,
            flagged.agent_id::text,
            flagged.agent_tenant_id,
            flagged.agent_kind = 'agent_in_other_tenant' AND EXISTS (
                SELECT 1 FROM {{ c.tgt }}.resource_permissions AS rp
                WHERE
                    rp.tenant_id = flagged.tenant_id
                    AND rp.resource_type = 'agent'
                    AND rp.resource_id = flagged.agent_id::text
                    AND rp.is_active
            )
        ),
        (flagged.lead_kind, flagged.lead_id::text, flagged.lead_tenant_id, FALSE),
        (flagged.voice_kind, flagged.voice_id, NULL::uuid, FALSE)
    ) AS f (kind, referenced_id, referenced_tenant_id, covered_by_grant)
WHERE f.kind IS NOT NULL
UNION ALL
-- The dangling calls that landed, each looked up by id.
SELECT
    'lead_not_migrated',
    'call_logs_voiceagent',
    landed.id::text,
    landed.tenant_id,
    dangling.target::text,
    NULL::uuid,
    FALSE
FROM dangling_calls AS dangling
INNER JOIN {{ c.tgt }}.voice_calls AS landed ON dangling.id = landed.id;
