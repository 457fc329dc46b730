"""The rollback never cuts a migration run in two: it refuses while a run is between two steps."""

from __future__ import annotations

import re

import psycopg
import pytest

from devtools.airflow_env import render_sql
from tests.helpers import MIGRATION_STEPS

RUN = "scheduled__2025-01-02T00:00:00+00:00"
ROLLBACK = "manual__rollback"


def run_as(db, sql_file: str, run_id: str, **settings: str) -> None:
    with psycopg.connect(db.uri, autocommit="vacuum" in sql_file) as conn:  # as its task runs it
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (f"voice_agent_migration.{name}", value))
        conn.execute(render_sql(sql_file, {"rollback": True} if run_id == ROLLBACK else {}, run_id=run_id))


def test_a_rollback_refuses_while_a_run_is_between_two_steps_and_goes_through_once_it_ended(demo_db):
    db = demo_db
    calls_step = MIGRATION_STEPS.index("migrate/07_migrate_voice_calls.sql")
    for step in MIGRATION_STEPS[:calls_step]:  # leads migrated, calls not yet
        run_as(db, step, RUN)
    before = db.snapshot()

    refused = re.escape(f"rollback refused: migration runs are under way: {RUN} (started")
    with pytest.raises(psycopg.errors.RaiseException, match=refused):
        run_as(db, "rollback/rollback_migration.sql", ROLLBACK)
    assert db.snapshot() == before, "a refused rollback removes nothing"

    for step in MIGRATION_STEPS[calls_step:]:
        run_as(db, step, RUN)
    run_as(db, "report/run_outcome.sql", RUN, outcome="success", failed_tasks="")
    assert db.value("SELECT count(*) FROM public.voice_calls") > 0

    run_as(db, "rollback/rollback_migration.sql", ROLLBACK)
    assert db.value("SELECT count(*) FROM public.voice_calls") == 0
    assert db.value("SELECT count(*) FROM public.voice_agents") == 0
    assert db.rows("SELECT run_id, outcome FROM public.migration_runs ORDER BY run_id") == [
        (ROLLBACK, "success"),
        (RUN, "success"),
    ]
