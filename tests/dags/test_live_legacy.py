"""A live legacy database, through the real DAG: the legacy application keeps writing between runs and
during them, and every run mirrors it without a false alarm (issue 13). What each situation does to
the target is tested step by step in tests/sql/test_live_legacy_model.py; here, whole runs."""

from __future__ import annotations

import random
import threading
import uuid

import psycopg
import pytest

from tests.helpers import run_dag

ORG_A = "5abb0a93-f59f-48fc-9c5a-2b549b4f8367"
ORG_B = "a60fac7a-eb17-4964-b4a2-2311db582fc4"


def failed(states) -> dict[str, str]:
    return {task: state for task, (state, _) in states.items() if state not in ("success", "skipped")}


class LegacyWriter(threading.Thread):
    """The legacy application at work: every `pause` seconds one write of each kind -- a new call, an
    updated call, a deleted call, a user moved between two organizations, a lead's new phone, a new
    lead -- each in its own transaction, until stopped."""

    def __init__(self, uri: str, pause: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.uri, self.pause = uri, pause
        self.stop = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(13)
        try:
            with psycopg.connect(self.uri, autocommit=True) as conn:
                while not self.stop.wait(self.pause):
                    self.write_once(conn, rng)
        except psycopg.Error as err:  # surfaced by the test: a writer that died proves nothing
            self.error = err

    def write_once(self, conn: psycopg.Connection, rng: random.Random) -> None:
        user = rng.randint(1, 20)
        conn.execute(
            "INSERT INTO voice_agent.call_logs_voiceagent (id, initiated_by, target, agent, status, started_at)"
            " VALUES (%s, %s, %s, 1, 'completed', now())",
            (uuid.UUID(int=rng.getrandbits(128)), user, rng.randint(1, 40)),
        )
        conn.execute(
            "UPDATE voice_agent.call_logs_voiceagent SET status = %s"
            " WHERE id = (SELECT id FROM voice_agent.call_logs_voiceagent ORDER BY random() LIMIT 1)",
            (rng.choice(["completed", "failed", "no-answer"]),),
        )
        conn.execute(
            "DELETE FROM voice_agent.call_logs_voiceagent"
            " WHERE id = (SELECT id FROM voice_agent.call_logs_voiceagent ORDER BY random() LIMIT 1)"
        )
        conn.execute(
            "UPDATE voice_agent.users_voiceagent SET organization_id = %s WHERE id = %s",
            (rng.choice([ORG_A, ORG_B]), user),
        )
        conn.execute(
            "UPDATE voice_agent.leads_voiceagent SET lead_number = %s WHERE id = %s",
            (f"+1555{rng.randrange(10**7):07d}", rng.randint(1, 63)),
        )
        conn.execute(
            "INSERT INTO voice_agent.leads_voiceagent (name, lead_number, added_by) VALUES ('live lead', %s, %s)",
            (f"+1666{rng.randrange(10**7):07d}", user),
        )
        self.writes += 1


def landable_calls_match(db) -> bool:
    """Every legacy call is landed or quarantined once, and the migration's calls are exactly the landed ones."""
    return db.value("""
        SELECT
            (SELECT count(*) FROM voice_agent.call_logs_voiceagent)
            = (SELECT count(*) FROM public.migration_calls) + (
                SELECT count(*) FROM public.migration_rejects WHERE source_table = 'call_logs_voiceagent'
            )
            AND NOT EXISTS (
                SELECT 1 FROM public.migration_calls AS w
                WHERE NOT EXISTS (SELECT 1 FROM voice_agent.call_logs_voiceagent AS cl WHERE cl.id = w.id)
            )
    """)


def test_a_run_during_live_writes_passes_and_the_next_quiet_run_takes_the_rest(demo_db):
    assert failed(run_dag(demo_db)) == {}
    writer = LegacyWriter(demo_db.uri)
    writer.start()
    try:
        during = run_dag(demo_db)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None, writer.error
    assert writer.writes >= 20, f"the writer wrote only {writer.writes} times during the run"

    assert failed(during) == {}, during  # no false alarm
    after = run_dag(demo_db)

    assert failed(after) == {}, after
    assert landable_calls_match(demo_db)
    pending = demo_db.value("SELECT sum(pending) FROM migration_reconciliation WHERE run_id = %s", (after.run_id,))
    assert pending == 0  # the quiet run took everything


def test_deletions_are_counted_and_a_dry_run_shows_them_first(demo_db):
    assert failed(run_dag(demo_db)) == {}
    demo_db.execute("""
        DELETE FROM voice_agent.call_logs_voiceagent
        WHERE id IN (SELECT id FROM public.migration_calls ORDER BY id LIMIT 3);
        DELETE FROM voice_agent.org_permissions_voiceagent WHERE id = (
            SELECT min(source_id::bigint) FROM public.migration_lineage
            WHERE source_table = 'org_permissions_voiceagent'
        );
    """)

    dry = run_dag(demo_db, {"dry_run": True})
    would = {row["source_table"]: row["would_delete"] for row in dry.xcom("dry_run")}
    assert (would["call_logs_voiceagent"], would["org_permissions_voiceagent"], would["voices_voiceagent"]) == (3, 1, 0)
    assert demo_db.value("SELECT count(*) FROM resource_permissions") == 5  # a dry run removes nothing

    states = run_dag(demo_db)

    assert failed(states) == {}
    deleted = dict(
        demo_db.rows("SELECT source_table, deleted FROM migration_reconciliation WHERE run_id = %s", (states.run_id,))
    )
    assert (deleted["call_logs_voiceagent"], deleted["org_permissions_voiceagent"]) == (3, 1)
    assert demo_db.value("SELECT count(*) FROM resource_permissions") == 4  # the revoked grant grants nothing


@pytest.mark.parametrize("table", ["leads_voiceagent", "call_logs_voiceagent"])
def test_an_emptied_legacy_table_trips_the_deletion_valve_at_once_and_removes_nothing(demo_db, table, instant_retries):
    assert failed(run_dag(demo_db)) == {}
    snapshot = demo_db.snapshot()
    demo_db.execute(f"DELETE FROM voice_agent.{table}")

    states = run_dag(demo_db, {"max_delete_rows": 10}, step_retries=True)

    step = {"leads_voiceagent": "migrate_leads", "call_logs_voiceagent": "migrate_voice_calls"}[table]
    assert states[step] == ("failed", 1)  # final: the same legacy data would trip it again
    assert demo_db.snapshot() == snapshot  # nothing was removed


def test_a_raised_valve_lets_a_real_purge_through(demo_db):
    assert failed(run_dag(demo_db)) == {}
    demo_db.execute("DELETE FROM voice_agent.call_logs_voiceagent WHERE initiated_by <= 10")
    gone = demo_db.value(
        "SELECT count(*) FROM public.migration_calls AS w"
        " WHERE NOT EXISTS (SELECT 1 FROM voice_agent.call_logs_voiceagent AS cl WHERE cl.id = w.id)"
    )
    assert gone > 100

    states = run_dag(demo_db, {"max_delete_percent": 100})

    assert failed(states) == {}
    assert (
        demo_db.value(
            "SELECT deleted FROM migration_reconciliation WHERE run_id = %s AND source_table = %s",
            (states.run_id, "call_logs_voiceagent"),
        )
        == gone
    )
    assert landable_calls_match(demo_db)
