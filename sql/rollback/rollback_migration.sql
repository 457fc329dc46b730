-- The way back: removes exactly the rows the migration created, found through its lineage, and its
-- bookkeeping of them (lineage, ids of the calls it wrote, quarantine, call buckets, findings), in one
-- transaction. The main
-- application's own rows are never touched: leads it created (and leads the migration only linked),
-- cache rows, tenants it created or that anything still references. What stays, on purpose: the target
-- tables (empty of migrated rows), the columns added to the application's leads and caches (nullable,
-- unused), the agents' sequence (past the old ids, harmless) and the runs' records, this one included.
-- A fresh run afterwards migrates everything again.
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

-- Not while a migration run is under way: between two of its steps a rollback would leave it half
-- migrated on top of an emptied target. Runs register as 'running' in their create_target_tables step
-- and close their record in report_run, whatever happened (the step lock taken above orders both).
DO $$
DECLARE
    running text;
BEGIN
    SELECT string_agg(format('%s (started %s UTC)', r.run_id, r.started_at), ', ' ORDER BY r.started_at)
    INTO running
    FROM {{ c.tgt }}.migration_runs AS r
    WHERE r.outcome = 'running' AND r.run_id <> {{ c.run }};
    IF running IS NOT NULL THEN
        RAISE EXCEPTION 'rollback refused: migration runs are under way: %', running
            USING HINT = 'wait for them to end, then trigger the rollback again; a run that Airflow no longer '
            || 'runs (its worker died before report_run) is closed with: UPDATE '
            || {{ (params.target_schema ~ ".migration_runs") | text_literal }}
            || ' SET outcome = ''failed'', ended_at = now() WHERE run_id = ''<run id>''';
    END IF;
END
$$;

-- The catalog's tables, last migrated first: the rows the migration wrote, found through the ids it
-- keeps of a table whose rows keep their legacy id (the calls) and through the lineage for the others
-- (never a row a legacy row was only linked onto).
{%- for table in catalog | reverse %}

{%- if table.owned_ids %}
DELETE FROM {{ c.tgt }}.{{ table.target_table }} AS t
USING {{ c.tgt }}.{{ table.owned_ids }} AS written
WHERE t.id = written.id;
{%- else %}
DELETE FROM {{ c.tgt }}.{{ table.target_table }} AS t
USING {{ c.tgt }}.migration_lineage AS m
WHERE
    m.source_table = '{{ table.source_table }}'
    AND t.id::text = m.target_id
    AND NOT m.linked
    {%- if table.rollback_only %}
    AND {{ table.rollback_only }}
    {%- endif %};
{%- endif %}
{%- endfor %}

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
            {%- for table in catalog %}
            {{ "UNION ALL" if not loop.first }}
            SELECT tenant_id FROM {{ c.tgt }}.{{ table.target_table }}
            {%- endfor %}
        ) AS still_used
        WHERE still_used.tenant_id = t.id
    );

TRUNCATE {{ c.tgt }}.migration_lineage, {{ c.tgt }}.migration_rejects, {{ c.tgt }}.migration_call_chunks,
{{ c.tgt }}.migration_findings, {{ c.tgt }}.migration_call_findings_summary
{%- for table in catalog if table.owned_ids %}, {{ c.tgt }}.{{ table.owned_ids }}{% endfor %};

-- The rollback is a run too: its record says so (params.rollback).
INSERT INTO {{ c.tgt }}.migration_runs AS r (
    run_id, run_type, window_start, window_end, params, started_at, ended_at, outcome
)
VALUES (
    {{ c.run }},
    {{ migration_run_type() | text_literal }},
    NULL,
    NULL,
    {{ params | tojson | text_literal }}::jsonb,
    (now() AT TIME ZONE 'UTC'),
    (now() AT TIME ZONE 'UTC'),
    'success'
)
ON CONFLICT (run_id) DO UPDATE SET
    ended_at = excluded.ended_at,
    outcome = excluded.outcome;
