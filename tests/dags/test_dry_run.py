"""The dry run, through the real DAG: it reports what a run would do and writes nothing at all."""

from __future__ import annotations

from tests.helpers import run_dag

DAY_1 = {"window_start": "2025-01-02T00:00:00+00:00", "window_end": "2025-01-03T00:00:00+00:00"}


def only_dry_run_ran(states) -> bool:
    ran = {task for task, (state, _) in states.items() if state == "success"}
    return ran == {"choose_mode", "dry_run"} and {state for state, _ in states.values()} == {"success", "skipped"}


def report(states) -> dict[str, dict]:
    return {row["source_table"]: row for row in states.xcom("dry_run")}


def public_relations(db) -> list[tuple]:
    return db.rows("SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1")


def test_a_dry_run_on_a_fresh_target_reports_every_insert_and_creates_nothing(demo_db):
    relations = public_relations(demo_db)
    snapshot = demo_db.snapshot(run_records=True)

    states = run_dag(demo_db, {"dry_run": True})

    assert only_dry_run_ran(states), states
    assert public_relations(demo_db) == relations  # not even the target tables
    assert demo_db.snapshot(run_records=True) == snapshot
    rows = report(states)
    calls = rows["call_logs_voiceagent"]
    assert (calls["in_scope"], calls["would_insert"], calls["would_update"], calls["unchanged"]) == (742, 729, 0, 0)
    assert calls["would_reject"] == 13 and "owner_without_organization=" in calls["rejected_by_reason"]
    assert rows["leads_voiceagent"]["would_insert"] + rows["leads_voiceagent"]["would_reject"] == 63
    assert rows["users_voiceagent.organization_id"]["would_insert"] == 6
    assert all(row["missing"] == 0 for row in rows.values())


def test_a_dry_run_after_a_migration_tells_updates_inserts_and_unchanged_rows_apart(demo_db):
    run_dag(demo_db)
    demo_db.execute("""
        UPDATE voice_agent.call_logs_voiceagent SET status = 'no-answer'
        WHERE id = (SELECT id FROM public.voice_calls WHERE started_at < '2025-01-03' ORDER BY id LIMIT 1);
        INSERT INTO voice_agent.call_logs_voiceagent (id, initiated_by, status, started_at)
        SELECT gen_random_uuid(), initiated_by, 'completed', timestamptz '2025-01-02 10:00:00+00'
        FROM voice_agent.call_logs_voiceagent
        WHERE id = (SELECT id FROM public.voice_calls ORDER BY id LIMIT 1);
        UPDATE voice_agent.voices_voiceagent SET description = 'renamed'
        WHERE id = (SELECT min(id::text)::uuid FROM voice_agent.voices_voiceagent);
    """)
    snapshot = demo_db.snapshot(run_records=True)
    sequences = demo_db.rows("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")

    states = run_dag(demo_db, {"dry_run": True, **DAY_1})

    assert only_dry_run_ran(states), states
    assert demo_db.snapshot(run_records=True) == snapshot
    assert demo_db.rows("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1") == sequences
    rows = report(states)
    calls = rows["call_logs_voiceagent"]
    in_window = demo_db.value(
        "SELECT count(*) FROM voice_agent.call_logs_voiceagent"
        " WHERE started_at >= '2025-01-02 00:00+00' AND started_at < '2025-01-03 00:00+00'"
    )
    assert calls["in_scope"] == in_window  # the window's calls only
    assert (calls["would_insert"], calls["would_update"]) == (1, 1)
    assert calls["unchanged"] + calls["would_reject"] == in_window - 2
    assert (rows["voices_voiceagent"]["would_update"], rows["voices_voiceagent"]["unchanged"]) == (1, 29)
    assert rows["agents_voiceagent"]["would_update"] == 0
