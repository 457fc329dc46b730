"""The real DAG, run end to end by Airflow on real legacy databases."""

from __future__ import annotations

import json

import psycopg
import pytest

from devtools.airflow_env import DAG_ID, airflow, airflow_env
from devtools.legacy_db import seed_demo
from devtools.postgres import airflow_connection
from tests.helpers import dag_definition, run_dag

ORG_A = "5abb0a93-f59f-48fc-9c5a-2b549b4f8367"


def assert_all_succeeded(states):
    """A migration run: every task succeeded, but the dry run and the rollback, which the branch skipped."""
    assert {task: state for task, (state, _) in states.items() if state != "success"} == {
        "dry_run": "skipped",
        "rollback_migration": "skipped",
    }
    assert set(states) == {task.task_id for task in dag_definition().tasks}  # every task of the DAG ran or skipped


def test_full_migration_balances_and_a_second_run_changes_nothing(demo_db):
    app_leads_before = demo_db.rows("SELECT id, name, phone, created_at FROM public.leads ORDER BY id")
    assert_all_succeeded(run_dag(demo_db))

    counts = dict(
        demo_db.rows("""
            SELECT 'tenants', count(*) FROM tenants UNION ALL
            SELECT 'voices', count(*) FROM voices UNION ALL
            SELECT 'phone_numbers', count(*) FROM phone_numbers UNION ALL
            SELECT 'voice_agents', count(*) FROM voice_agents UNION ALL
            SELECT 'leads', count(*) FROM leads UNION ALL
            SELECT 'voice_calls', count(*) FROM voice_calls UNION ALL
            SELECT 'resource_permissions', count(*) FROM resource_permissions UNION ALL
            SELECT 'id_map', count(*) FROM migration_id_map UNION ALL
            SELECT 'rejects', count(*) FROM migration_rejects
        """)
    )
    assert counts == {
        "tenants": 7,  # six organizations and the system tenant
        "voices": 30,
        "phone_numbers": 5,
        "voice_agents": 19,
        "leads": 59 + 2,  # 61 legacy leads, two pairs merged, plus the application's own two
        "voice_calls": 729,
        "resource_permissions": 5,
        "id_map": 30 + 5 + 19 + 61 + 729 + 5,
        "rejects": 4 + 2 + 13 + 2,
    }
    # Every legacy row is in the id map or the rejects, exactly once.
    assert (
        demo_db.value("""
        SELECT count(*) FROM (
            SELECT 'call_logs_voiceagent' AS t, id::text AS s FROM voice_agent.call_logs_voiceagent UNION ALL
            SELECT 'agents_voiceagent', id::text FROM voice_agent.agents_voiceagent UNION ALL
            SELECT 'leads_voiceagent', id::text FROM voice_agent.leads_voiceagent UNION ALL
            SELECT 'voices_voiceagent', id::text FROM voice_agent.voices_voiceagent UNION ALL
            SELECT 'numbers_voiceagent', id::text FROM voice_agent.numbers_voiceagent
        ) AS legacy
        WHERE (SELECT count(*) FROM migration_id_map AS m WHERE m.source_table = legacy.t AND m.source_id = legacy.s)
            + (SELECT count(*) FROM migration_rejects AS r WHERE r.source_table = legacy.t AND r.source_id = legacy.s)
            <> 1
    """)
        == 0
    )
    # The application's own rows are untouched.
    assert demo_db.rows("SELECT id, name, phone, created_at FROM public.leads WHERE source IS NULL ORDER BY id") == (
        app_leads_before
    )
    assert demo_db.rows("SELECT id, query, tenant_id FROM company_search_cache ORDER BY id") == [
        (1, "acme", None),
        (2, "globex", None),
    ]

    before = demo_db.snapshot()
    second = run_dag(demo_db)
    assert_all_succeeded(second)
    assert demo_db.snapshot() == before
    # The second run's own account: everything in scope, nothing written.
    account = second.xcom("report_run")
    calls = [row for row in account if row["source_table"] == "call_logs_voiceagent"]
    assert sum(row["in_scope"] for row in calls) == 742
    assert sum(row["unchanged"] for row in calls) == 729 and sum(row["rejected"] for row in calls) == 13
    assert {(row["inserted"], row["updated"]) for row in account} == {(0, 0)}
    assert demo_db.rows("SELECT outcome, failed_tasks FROM migration_runs WHERE run_id = %s", (second.run_id,)) == [
        ("success", [])
    ]


def test_timestamps_are_utc_whatever_the_database_time_zone(demo_db):
    dbname = demo_db.value("SELECT current_database()")
    demo_db.execute(f"ALTER DATABASE {dbname} SET timezone = 'Asia/Kathmandu'")  # UTC+05:45
    assert_all_succeeded(run_dag(demo_db))
    with psycopg.connect(demo_db.uri) as conn:
        conn.execute("SET timezone = 'UTC'")
        shifted = conn.execute("""
            SELECT count(*) FROM voice_calls AS vc JOIN voice_agent.call_logs_voiceagent AS cl USING (id)
            WHERE vc.started_at IS DISTINCT FROM cl.started_at::timestamp
                OR vc.ended_at IS DISTINCT FROM cl.ended_at::timestamp
        """).fetchone()[0]
        first_call = conn.execute("SELECT started_at::text FROM voice_calls WHERE id = md5('call1')::uuid").fetchone()[
            0
        ]
    assert shifted == 0
    assert first_call == "2025-01-01 03:52:53.045822"  # 10,368,000 s (120 days) / 742 after midnight UTC


def test_an_application_leads_table_with_tenant_id_keeps_its_rows_and_gets_linked(legacy_db):
    with psycopg.connect(legacy_db.uri, autocommit=True) as conn:
        seed_demo(conn)
        conn.execute(f"""
            CREATE TABLE public.leads (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid, name varchar(255),
                phone varchar(50), source varchar(50), status varchar(50), metadata jsonb,
                created_at timestamp DEFAULT now(), updated_at timestamp DEFAULT now());
            INSERT INTO public.leads (id, tenant_id, name, phone, source, status)
            VALUES ('7d0c2a4e-0000-4000-8000-00000000000a', '{ORG_A}', 'CRM lead', '+15550100001', 'crm', 'won');
        """)
    app_row = legacy_db.rows("SELECT * FROM public.leads")
    assert_all_succeeded(run_dag(legacy_db))

    # Legacy leads 1 and 61 share that tenant and phone: both point at the application's lead.
    assert legacy_db.rows(
        "SELECT source_id, target_id FROM migration_id_map"
        " WHERE source_table = 'leads_voiceagent' AND source_id IN ('1', '61') ORDER BY 1"
    ) == [("1", "7d0c2a4e-0000-4000-8000-00000000000a"), ("61", "7d0c2a4e-0000-4000-8000-00000000000a")]
    assert legacy_db.rows("SELECT * FROM public.leads WHERE id = '7d0c2a4e-0000-4000-8000-00000000000a'") == app_row
    assert (
        legacy_db.value(
            "SELECT count(*) FROM voice_calls AS vc JOIN voice_agent.call_logs_voiceagent AS cl USING (id)"
            " WHERE cl.target IN (1, 61) AND vc.lead_id <> '7d0c2a4e-0000-4000-8000-00000000000a'"
        )
        == 0
    )


def test_a_failed_check_fails_the_run_at_once_and_logs_what_it_found(demo_db, capfd):
    assert_all_succeeded(run_dag(demo_db))
    # A call written by the application with an unknown tenant.
    stray = "0a000000-0000-4000-8000-00000000dead"
    demo_db.execute(
        "INSERT INTO voice_calls (id, tenant_id) VALUES (%s, '99999999-9999-4999-8999-999999999999')", (stray,)
    )
    capfd.readouterr()

    states = run_dag(demo_db, step_retries=True)

    assert states["check_no_orphan_tenants"] == ("failed", 1)  # one try: a failed check is final
    assert {t: s for t, (s, _) in states.items() if s != "success"} == {
        "check_no_orphan_tenants": "failed",
        "dry_run": "skipped",
        "rollback_migration": "skipped",
    }
    out = capfd.readouterr()
    log = out.out + out.err
    assert f"voice_calls: 1 rows without a valid tenant e.g. {stray}" in log
    # The run's record says so; report_run, a teardown, ran without turning the run green.
    assert states["report_run"] == ("success", 1)
    assert demo_db.rows("SELECT outcome, failed_tasks FROM migration_runs WHERE run_id = %s", (states.run_id,)) == [
        ("failed", ["check_no_orphan_tenants"])
    ]


@pytest.fixture
def cli_env(demo_db, cli_airflow_home):
    return airflow_env(cli_airflow_home, airflow_connection(demo_db.uri))


def test_airflow_dags_test_with_default_params_performs_the_full_migration(demo_db, cli_env):
    result = airflow(cli_env, "dags", "test", DAG_ID, check=False)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert demo_db.value("SELECT count(*) FROM voice_calls") == 729


def test_airflow_dags_test_refuses_a_hostile_param_before_any_task_runs(demo_db, cli_env):
    conf = json.dumps({"source_schema": "voice_agent; DROP TABLE voice_agent.users_voiceagent"})
    result = airflow(cli_env, "dags", "test", DAG_ID, "-c", conf, check=False)
    assert result.returncode != 0
    assert "source_schema" in result.stdout + result.stderr
    assert demo_db.value("SELECT to_regclass('voice_agent.users_voiceagent')::text") == "voice_agent.users_voiceagent"
    assert demo_db.value("SELECT to_regclass('public.voice_calls')") is None


def test_an_inconsistent_window_fails_the_first_step_for_good_before_anything_is_written(demo_db):
    relations = demo_db.rows("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1")
    states = run_dag(demo_db, {"window_start": "2025-01-02T00:00:00+00:00"}, step_retries=True)
    assert states["check_legacy_schema"] == ("failed", 1)  # no retry: the same params would fail again
    # report_run (a teardown: it does not decide the run's state) refuses to render the same window.
    assert states["report_run"] == ("failed", 1)
    assert {
        state for task, (state, _) in states.items() if task not in {"choose_mode", "check_legacy_schema", "report_run"}
    } <= {
        "upstream_failed",
        "skipped",
        "None",
    }
    assert demo_db.rows("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1") == (
        relations
    )


def test_a_misspelt_param_is_refused_before_any_data_task_runs(demo_db, capfd):
    """Airflow keeps a conf key that is no param as an extra param: choose_mode refuses it, for good."""
    relations = demo_db.rows("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1")
    capfd.readouterr()

    states = run_dag(demo_db, {"windw_start": "2025-01-02T00:00:00+00:00"}, step_retries=True)

    assert states["choose_mode"] == ("failed", 1)
    assert {state for task, (state, _) in states.items() if task not in {"choose_mode", "report_run"}} <= {
        "upstream_failed",
        "skipped",
        "None",
    }
    out = capfd.readouterr()
    assert "unknown params in the run's conf: windw_start (did you mean window_start?); known params: " in (
        out.out + out.err
    )
    assert demo_db.rows("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1") == (
        relations
    )
