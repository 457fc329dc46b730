"""The sessions a task opens: named for pg_stat_activity, and ended when the task is killed."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from devtools.postgres import airflow_connection
from voice_agent_migration.operators import CONN_ID, MigrationStepOperator
from voice_agent_migration.sessions import Sessions, SessionsCancelled, application_name


def test_the_application_name_says_dag_task_and_run_within_postgresqls_63_bytes():
    assert application_name("dag", "task", "manual__1") == "dag/task/manual__1"
    long = application_name(
        "voice_agent_tenant_migration", "check_content_matches_legacy", "backfill__2025-01-01T00:00:00+00:00"
    )
    assert len(long.encode()) == 63 and long.startswith("voice_agent_tenant_migration/check_content_matches_legacy/")
    assert application_name("d", "t", "é" * 40).encode().decode() == application_name("d", "t", "é" * 40)  # no cut char


def activity(uri: str, name: str) -> list[tuple]:
    with psycopg.connect(uri) as conn:
        return conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()


def test_killing_a_task_ends_its_running_statement_and_opens_nothing_after(legacy_db, monkeypatch):
    """on_kill, as Airflow calls it when the task is marked failed or times out, while execute runs."""
    monkeypatch.setenv("AIRFLOW_CONN_VOICE_AGENT_DB", airflow_connection(legacy_db.uri))
    step = MigrationStepOperator(task_id="step", conn_id=CONN_ID, sql="SELECT pg_sleep(60)")
    context = {"run_id": "manual__kill"}
    name = application_name(step.dag_id, "step", "manual__kill")
    raised: list[BaseException] = []

    def run() -> None:
        try:
            step.execute(context)
        except BaseException as error:  # ruff: ignore[blind-except] - what the task would fail with
            raised.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while not [row for row in activity(legacy_db.uri, name) if row[0] == "active" and "pg_sleep" in row[1]]:
        assert time.monotonic() < deadline, "the step's statement never ran"
        time.sleep(0.05)
    started = time.monotonic()
    step.on_kill()
    worker.join(10)

    assert not worker.is_alive() and time.monotonic() - started < 5
    assert isinstance(raised[0], psycopg.errors.AdminShutdown)
    assert activity(legacy_db.uri, name) == []
    with pytest.raises(SessionsCancelled):
        step._sessions.open()


def test_a_statement_sent_just_after_the_kill_does_not_run(legacy_db):
    """The race a cancel alone loses: the task's thread opened its session, the kill comes, then the
    thread sends its statement."""
    sessions = Sessions(lambda: psycopg.connect(legacy_db.uri), "idle")
    with sessions.open() as conn:
        assert sessions.end_all() == [conn.info.backend_pid]
        with pytest.raises(psycopg.OperationalError):
            conn.execute("CREATE TABLE ran_after_the_kill ()")
    with psycopg.connect(legacy_db.uri) as check:
        assert check.execute("SELECT to_regclass('ran_after_the_kill')").fetchone() == (None,)
