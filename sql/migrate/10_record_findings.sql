-- Rebuilds the findings: landed calls whose agent or lead belongs to another tenant (marking those a
-- resource_permissions grant covers) and calls whose agent, lead or voice did not land.
-- Findings are for the cutover to decide on; they never fail the run.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

DELETE FROM {{ c.tgt }}.migration_findings;

INSERT INTO {{ c.tgt }}.migration_findings (
    kind, source_table, source_id, tenant_id, referenced_id, referenced_tenant_id, covered_by_grant
)
SELECT
    f.kind,
    'call_logs_voiceagent',
    vc.id::text,
    vc.tenant_id,
    f.referenced_id,
    f.referenced_tenant_id,
    f.covered_by_grant
FROM {{ c.tgt }}.voice_calls AS vc
INNER JOIN {{ c.src }}.call_logs_voiceagent AS cl ON vc.id = cl.id
LEFT JOIN {{ c.tgt }}.voice_agents AS va ON vc.agent_id = va.id
LEFT JOIN {{ c.tgt }}.leads AS ld ON vc.lead_id = ld.id
LEFT JOIN {{ c.tgt }}.voices AS vo ON vc.voice_id = vo.id
CROSS JOIN
    LATERAL (
        VALUES
        (
            CASE
                WHEN va.tenant_id <> vc.tenant_id THEN 'agent_in_other_tenant'
                WHEN vc.agent_id IS NOT NULL AND va.id IS NULL THEN 'agent_not_migrated'
            END,
            vc.agent_id::text,
            va.tenant_id,
            va.tenant_id <> vc.tenant_id AND EXISTS (
                SELECT 1 FROM {{ c.tgt }}.resource_permissions AS rp
                WHERE
                    rp.tenant_id = vc.tenant_id
                    AND rp.resource_type = 'agent'
                    AND rp.resource_id = vc.agent_id::text
                    AND rp.is_active
            )
        ),
        (
            CASE
                WHEN ld.tenant_id IS DISTINCT FROM vc.tenant_id AND ld.id IS NOT NULL THEN 'lead_in_other_tenant'
                WHEN cl.target IS NOT NULL AND vc.lead_id IS NULL THEN 'lead_not_migrated'
            END,
            coalesce(vc.lead_id::text, cl.target::text),
            ld.tenant_id,
            FALSE
        ),
        (
            CASE WHEN vc.voice_id IS NOT NULL AND vo.id IS NULL THEN 'voice_not_migrated' END,
            vc.voice_id,
            NULL::uuid,
            FALSE
        )
    ) AS f (kind, referenced_id, referenced_tenant_id, covered_by_grant)
WHERE f.kind IS NOT NULL;
