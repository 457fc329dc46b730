-- The way back: removes exactly the rows the migration created, found through its lineage, and its
-- bookkeeping of them (lineage, quarantine, call buckets, findings), in one transaction. The main
-- application's own rows are never touched: leads it created (and leads the migration only linked),
-- cache rows, tenants it created or that anything still references. What stays, on purpose: the target
-- tables (empty of migrated rows), the columns added to the application's leads and caches (nullable,
-- unused), the agents' sequence (past the old ids, harmless) and the runs' records, this one included.
-- A fresh run afterwards migrates everything again.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

-- Calls land under their legacy uuid: the id map for calls is the legacy table itself.
DELETE FROM {{ c.tgt }}.voice_calls AS vc
USING {{ c.src }}.call_logs_voiceagent AS cl
WHERE vc.id = cl.id;

DELETE FROM {{ c.tgt }}.resource_permissions AS t
USING {{ c.tgt }}.migration_lineage AS m
WHERE m.source_table = 'org_permissions_voiceagent' AND t.id::text = m.target_id;

-- Only leads the migration wrote (an application lead it linked a legacy lead to stays).
DELETE FROM {{ c.tgt }}.leads AS t
USING {{ c.tgt }}.migration_lineage AS m
WHERE
    m.source_table = 'leads_voiceagent'
    AND t.id::text = m.target_id
    AND t.source = 'voice_agent'
    AND t.metadata ? 'old_voice_agent_id';

DELETE FROM {{ c.tgt }}.voice_agents AS t
USING {{ c.tgt }}.migration_lineage AS m
WHERE m.source_table = 'agents_voiceagent' AND t.id::text = m.target_id;

DELETE FROM {{ c.tgt }}.phone_numbers AS t
USING {{ c.tgt }}.migration_lineage AS m
WHERE m.source_table = 'numbers_voiceagent' AND t.id::text = m.target_id;

DELETE FROM {{ c.tgt }}.voices AS t
USING {{ c.tgt }}.migration_lineage AS m
WHERE m.source_table = 'voices_voiceagent' AND t.id::text = m.target_id;

-- Tenants the migration created (one per organization, and the system tenant), unless a row left in
-- the target still belongs to one.
DELETE FROM {{ c.tgt }}.tenants AS t
WHERE
    (
        t.metadata ->> 'source' = 'voice_agent_migration'
        OR (t.id = {{ c.system_tenant }} AND t.metadata = '{"type": "system", "purpose": "shared_voices_and_numbers"}')
    )
    AND NOT EXISTS (
        SELECT 1
        FROM (
            SELECT tenant_id FROM {{ c.tgt }}.voices
            UNION ALL
            SELECT tenant_id FROM {{ c.tgt }}.phone_numbers
            UNION ALL
            SELECT tenant_id FROM {{ c.tgt }}.voice_agents
            UNION ALL
            SELECT tenant_id FROM {{ c.tgt }}.leads
            UNION ALL
            SELECT tenant_id FROM {{ c.tgt }}.voice_calls
            UNION ALL
            SELECT tenant_id FROM {{ c.tgt }}.resource_permissions
        ) AS still_used
        WHERE still_used.tenant_id = t.id
    );

TRUNCATE {{ c.tgt }}.migration_lineage, {{ c.tgt }}.migration_rejects, {{ c.tgt }}.migration_call_buckets,
{{ c.tgt }}.migration_findings;

-- The rollback is a run too: its record says so (params.rollback).
INSERT INTO {{ c.tgt }}.migration_runs AS r (
    run_id, run_type, window_start, window_end, params, started_at, ended_at, outcome
)
VALUES (
    {{ c.run }},
    {{ c.run_type | text_literal }},
    NULL,
    NULL,
    {{ params | tojson | text_literal }}::jsonb,
    {{ c.now_utc() }},
    {{ c.now_utc() }},
    'success'
)
ON CONFLICT (run_id) DO UPDATE SET
    ended_at = excluded.ended_at,
    outcome = excluded.outcome;
