"""Faults a production run meets, on a real PostgreSQL: locks the legacy application holds, and a run
stopped between any two steps (each step is one transaction)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.helpers import CHECKS, MIGRATION_STEPS


def test_a_step_blocked_by_the_application_fails_fast_with_a_clear_error_then_completes(demo_db):
    demo_db.migrate(upto="migrate_phone_numbers")
    with psycopg.connect(demo_db.uri) as app:
        app.execute("LOCK TABLE voice_agent.agents_voiceagent IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable, match="canceling statement due to lock timeout"):
            demo_db.run_sql_file("migrate/05_migrate_voice_agents.sql", lock_timeout="300ms")
        assert time.monotonic() - started < 5
    demo_db.run_sql_file("migrate/05_migrate_voice_agents.sql", lock_timeout="300ms")  # the retry, lock gone
    assert demo_db.value("SELECT count(*) FROM voice_agents") == 19


def test_a_statement_running_too_long_is_cancelled(demo_db):
    demo_db.migrate(upto="migrate_leads")
    with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
        demo_db.run_sql_file("migrate/07_migrate_voice_calls.sql", statement_timeout="1ms")
    assert demo_db.value("SELECT count(*) FROM voice_calls") == 0  # nothing half-written


def test_waiting_for_another_run_of_the_migration_is_not_bounded_by_the_lock_timeout(demo_db):
    demo_db.migrate(upto="migrate_phone_numbers")
    holding = threading.Event()

    def other_run() -> None:
        with psycopg.connect(demo_db.uri) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('voice_agent_tenant_migration'))")
            holding.set()
            time.sleep(1.5)

    other = threading.Thread(target=other_run)
    other.start()
    holding.wait(10)
    demo_db.run_sql_file("migrate/05_migrate_voice_agents.sql", lock_timeout="200ms")  # waits ~1.5 s, succeeds
    other.join()
    assert demo_db.value("SELECT count(*) FROM voice_agents") == 19


@pytest.mark.parametrize("stopped_after", MIGRATION_STEPS[:-1])
def test_a_run_stopped_after_any_step_is_completed_by_the_next_run(demo_db, stopped_after):
    demo_db.migrate(upto=stopped_after)
    demo_db.migrate()
    for name in CHECKS:
        passed, detail = demo_db.check(name)
        assert passed is True, f"{name}: {detail}"
