-- What a dry run would do, per legacy table. Runs at the end of the dry run's single transaction,
-- after every migration step, before the rollback: a target row this transaction wrote carries its
-- xmin, and it was an update if its id was there before the steps ran (dry_run_before.sql).
-- Rows in scope: every row of the small tables, the calls of the run's window (all without one).
{% import "_common.sql" as c with context %}
WITH this_transaction AS (
    SELECT pg_current_xact_id()::xid AS xid
),

outcome AS (
    SELECT
        'users_voiceagent.organization_id' AS source_table,
        'tenants' AS target_table,
        t.xmin AS row_xmin,
        t.id::text AS row_id,
        NULL AS reason
    FROM (
        SELECT DISTINCT organization_id FROM {{ c.src }}.users_voiceagent
        WHERE organization_id IS NOT NULL
    ) AS lg
    LEFT JOIN {{ c.tgt }}.tenants AS t ON lg.organization_id = t.id
    UNION ALL
    SELECT
        'voices_voiceagent',
        'voices',
        t.xmin,
        t.id::text,
        r.reason
    FROM {{ c.src }}.voices_voiceagent AS lg
    LEFT JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.source_table = 'voices_voiceagent' AND lg.id::text = m.source_id
    LEFT JOIN {{ c.tgt }}.voices AS t ON m.target_id = t.id::text
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'voices_voiceagent' AND lg.id::text = r.source_id
    UNION ALL
    SELECT
        'numbers_voiceagent',
        'phone_numbers',
        t.xmin,
        t.id::text,
        r.reason
    FROM {{ c.src }}.numbers_voiceagent AS lg
    LEFT JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.source_table = 'numbers_voiceagent' AND lg.id::text = m.source_id
    LEFT JOIN {{ c.tgt }}.phone_numbers AS t ON m.target_id = t.id::text
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'numbers_voiceagent' AND lg.id::text = r.source_id
    UNION ALL
    SELECT
        'agents_voiceagent',
        'voice_agents',
        t.xmin,
        t.id::text,
        r.reason
    FROM {{ c.src }}.agents_voiceagent AS lg
    LEFT JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.source_table = 'agents_voiceagent' AND lg.id::text = m.source_id
    LEFT JOIN {{ c.tgt }}.voice_agents AS t ON m.target_id = t.id::text
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'agents_voiceagent' AND lg.id::text = r.source_id
    UNION ALL
    SELECT
        'leads_voiceagent',
        'leads',
        t.xmin,
        t.id::text,
        r.reason
    FROM {{ c.src }}.leads_voiceagent AS lg
    LEFT JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.source_table = 'leads_voiceagent' AND lg.id::text = m.source_id
    LEFT JOIN {{ c.tgt }}.leads AS t ON m.target_id = t.id::text
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'leads_voiceagent' AND lg.id::text = r.source_id
    UNION ALL
    SELECT
        'call_logs_voiceagent',
        'voice_calls',
        t.xmin,
        t.id::text,
        r.reason
    FROM {{ c.src }}.call_logs_voiceagent AS lg
    LEFT JOIN {{ c.tgt }}.voice_calls AS t ON lg.id = t.id
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'call_logs_voiceagent' AND lg.id::text = r.source_id
    WHERE {{ c.in_window("lg.started_at") }}
    UNION ALL
    SELECT
        'org_permissions_voiceagent',
        'resource_permissions',
        t.xmin,
        t.id::text,
        r.reason
    FROM {{ c.src }}.org_permissions_voiceagent AS lg
    LEFT JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.source_table = 'org_permissions_voiceagent' AND lg.id::text = m.source_id
    LEFT JOIN {{ c.tgt }}.resource_permissions AS t ON m.target_id = t.id::text
    LEFT JOIN {{ c.tgt }}.migration_rejects AS r
        ON r.source_table = 'org_permissions_voiceagent' AND lg.id::text = r.source_id
),

classified AS (
    SELECT
        o.source_table,
        o.reason,
        CASE
            WHEN o.reason IS NOT NULL THEN 'rejected'
            WHEN o.row_xmin IS NULL THEN 'missing'
            WHEN o.row_xmin <> tx.xid THEN 'unchanged'
            WHEN existing.id IS NULL THEN 'inserted'
            ELSE 'updated'
        END AS outcome
    FROM outcome AS o
    CROSS JOIN this_transaction AS tx
    LEFT JOIN dry_run_existing AS existing
        ON o.target_table = existing.target_table AND o.row_id = existing.id
),

reasons AS (
    SELECT
        per_reason.source_table,
        string_agg(per_reason.reason || '=' || per_reason.n, ', ' ORDER BY per_reason.reason) AS rejected_by_reason
    FROM (
        SELECT
            cl.source_table,
            cl.reason,
            count(*) AS n
        FROM classified AS cl
        WHERE cl.reason IS NOT NULL
        GROUP BY cl.source_table, cl.reason
    ) AS per_reason
    GROUP BY per_reason.source_table
)

SELECT
    t.source_table,
    t.target_table,
    count(cl.outcome) AS in_scope,
    count(*) FILTER (WHERE cl.outcome = 'inserted') AS would_insert,
    count(*) FILTER (WHERE cl.outcome = 'updated') AS would_update,
    count(*) FILTER (WHERE cl.outcome = 'unchanged') AS unchanged,
    count(*) FILTER (WHERE cl.outcome = 'rejected') AS would_reject,
    count(*) FILTER (WHERE cl.outcome = 'missing') AS missing,
    coalesce(min(reasons.rejected_by_reason), '') AS rejected_by_reason
FROM {{ c.migrated_tables(with_tenants=True) }}
LEFT JOIN classified AS cl ON t.source_table = cl.source_table
LEFT JOIN reasons ON t.source_table = reasons.source_table
GROUP BY t.position, t.source_table, t.target_table
ORDER BY t.position
