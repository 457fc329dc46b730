-- Closes this run's record in migration_runs. report_run sets voice_agent_migration.outcome and
-- voice_agent_migration.failed_tasks (comma-separated) on the session from the run's task states.
{% import "_common.sql" as c with context %}
{%- set window = migration_window() %}
INSERT INTO {{ c.tgt }}.migration_runs AS r (
    run_id, run_type, window_start, window_end, params, started_at, ended_at, outcome, failed_tasks
)
VALUES (
    {{ c.run }},
    {{ migration_run_type() | text_literal }},
    {{ window.start_sql if window else "NULL" }},
    {{ window.end_sql if window else "NULL" }},
    {{ params | tojson | text_literal }}::jsonb,
    (now() AT TIME ZONE 'UTC'),
    (now() AT TIME ZONE 'UTC'),
    current_setting('voice_agent_migration.outcome'),
    coalesce(string_to_array(nullif(current_setting('voice_agent_migration.failed_tasks'), ''), ','), '{}')
)
ON CONFLICT (run_id) DO UPDATE SET
    ended_at = excluded.ended_at,
    outcome = excluded.outcome,
    failed_tasks = excluded.failed_tasks
