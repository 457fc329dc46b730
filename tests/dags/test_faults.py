"""Faults in the middle of a real run: the call step's connection killed, the server restarted. The
run fails cleanly; the retry or the next run completes, and every legacy call is landed or rejected
exactly once."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from devtools.legacy_db import build_demo_database
from devtools.postgres import create_database
from tests.helpers import CHECKS, LegacyDatabase, run_dag

CALLS = 200_000  # enough for the call step to last a few seconds
CHUNK_SIZE = 10_000
CALL_STEP_QUERY = "-- migrate_voice_calls chunk%"  # the step's work starts with its name (run_step)


def when_the_call_step_runs(uri: str, action, timeout: float = 180.0) -> threading.Thread:
    """Run `action(pid)` on the first backend found executing the call step (polled from another session)."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        with psycopg.connect(uri, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
                    " AND query LIKE %s AND pid <> pg_backend_pid() LIMIT 1",
                    (CALL_STEP_QUERY,),
                ).fetchone()
                if row:
                    time.sleep(0.5)  # well inside the step
                    action(row[0])
                    return
                time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def assert_every_call_settled_once(db: LegacyDatabase, run_id: str) -> None:
    """Every call landed or rejected once, and every check passes on the records of the run `run_id`."""
    db.run_id = run_id
    assert (
        db.value("""
        SELECT count(*) FROM voice_agent.call_logs_voiceagent AS cl
        WHERE (SELECT count(*) FROM public.voice_calls AS vc WHERE vc.id = cl.id)
            + (SELECT count(*) FROM public.migration_rejects AS r
               WHERE r.source_table = 'call_logs_voiceagent' AND r.source_id = cl.id::text) <> 1
    """)
        == 0
    )
    for name in CHECKS:
        passed, detail = db.check(name)
        assert passed is True, f"{name}: {detail}"


@pytest.fixture
def big_demo_db(pg_admin_uri):
    uri = create_database(pg_admin_uri, prefix="voice_agent_faults")
    build_demo_database(uri, calls=CALLS)
    return LegacyDatabase(uri)


def committed_chunks(conn) -> dict[int, object]:
    """{chunk number: commit time} of the chunks committed so far (the only run of the database)."""
    return dict(
        conn.execute(
            "SELECT chunk_number, committed_at FROM public.migration_run_chunks WHERE committed_at IS NOT NULL"
        )
    )


def test_a_connection_killed_mid_call_migration_fails_that_try_and_the_retry_resumes(big_demo_db, instant_retries):
    killed: list[int] = []
    committed_before_kill: dict[int, object] = {}

    def kill_once_a_third_is_committed(pid: int) -> None:
        with psycopg.connect(big_demo_db.uri, autocommit=True) as conn:
            while len(committed := committed_chunks(conn)) < CALLS // CHUNK_SIZE // 3:
                time.sleep(0.05)
            pid = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND state = 'active' LIMIT 1", (CALL_STEP_QUERY,)
            ).fetchone()[0]
            if conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]:
                killed.append(pid)
                committed_before_kill.update(committed)

    watcher = when_the_call_step_runs(big_demo_db.uri, kill_once_a_third_is_committed)
    states = run_dag(big_demo_db, {"call_chunk_size": CHUNK_SIZE}, step_retries=True)
    watcher.join(5)

    assert killed, "the call step was never seen running"
    assert states["migrate_voice_calls"] == ("success", 2), states  # try 1 lost its connection
    assert {s for s, _ in states.values()} == {"success", "skipped"}, states
    assert_every_call_settled_once(big_demo_db, states.run_id)
    # The retry did only the chunks the killed try had not committed: those it had are as they were.
    with psycopg.connect(big_demo_db.uri) as conn:
        after = committed_chunks(conn)
        planned = conn.execute("SELECT count(*), sum(calls) FROM public.migration_run_chunks").fetchone()
    assert len(after) == planned[0] and planned[1] == CALLS
    assert {number: after[number] for number in committed_before_kill} == committed_before_kill


def test_the_server_restarting_mid_run_fails_the_run_and_the_next_run_completes():
    import pgserver

    with tempfile.TemporaryDirectory(prefix="voice-agent-restart-") as pgdata:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        try:
            uri = create_database(server.get_uri(), prefix="voice_agent_restart")
            build_demo_database(uri, calls=CALLS)
            db = LegacyDatabase(uri)
            restarted: list[float] = []

            def restart(_pid: int) -> None:
                started = time.monotonic()
                pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=Path(pgdata), user=server.system_user)
                restarted.append(time.monotonic() - started)

            watcher = when_the_call_step_runs(uri, restart)
            states = run_dag(db)  # no retries: this run just fails
            watcher.join(60)

            assert restarted, "the call step was never seen running"
            assert states["migrate_voice_calls"][0] == "failed", states
            after = run_dag(db)  # the next run
            assert {s for s, _ in after.values()} == {"success", "skipped"}
            assert_every_call_settled_once(db, after.run_id)
        finally:
            server.cleanup()
