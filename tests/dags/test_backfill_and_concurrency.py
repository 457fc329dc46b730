"""Backfills and overlapping runs under a real scheduler (LocalExecutor, metadata on PostgreSQL): each
run migrates exactly its interval, the runs together cover the range once, and every check passes."""

from __future__ import annotations

import time
from datetime import datetime

from devtools.airflow_env import DAG_ID


def calls_between(db, start: str, end: str) -> set[str]:
    return {
        r[0]
        for r in db.rows(
            "SELECT id::text FROM voice_agent.call_logs_voiceagent WHERE started_at >= %s AND started_at < %s",
            (start, end),
        )
    }


def settled_calls(db) -> list[str]:
    """Every landed or quarantined call, with repeats if any."""
    return [
        r[0]
        for r in db.rows(
            "SELECT id::text FROM public.voice_calls"
            " UNION ALL SELECT source_id FROM public.migration_rejects WHERE source_table = 'call_logs_voiceagent'"
        )
    ]


def recorded_calls(db, run_id: str) -> dict:
    (row,) = db.rows(
        "SELECT window_start, window_end, legacy_rows, landed, rejected, missing, doubled"
        " FROM public.migration_reconciliation WHERE run_id = %s AND source_table = 'call_logs_voiceagent'",
        (run_id,),
    )
    return dict(
        zip(("window_start", "window_end", "legacy", "landed", "rejected", "missing", "doubled"), row, strict=True)
    )


def assert_every_check_passed(stack, run_ids) -> None:
    for run_id in run_ids:
        states = stack.task_states(run_id)
        not_taken = {"dry_run": "skipped", "rollback_migration": "skipped"}  # the other branches
        assert {t: s for t, s in states.items() if s != "success"} == not_taken, stack.describe([run_id])


def overlapped(runs) -> bool:
    """True when the runs were all running at one moment."""
    starts = [datetime.fromisoformat(r["start_date"]) for r in runs]
    ends = [datetime.fromisoformat(r["end_date"]) for r in runs]
    return max(starts) < min(ends)


def wait_until_no_backfill_runs(stack, timeout: float = 180.0) -> None:
    """Airflow allows one running backfill per DAG, and marks one completed a little after its last run."""
    deadline = time.monotonic() + timeout
    while True:
        backfills = stack.api("GET", "/backfills", params={"dag_id": DAG_ID}).json()["backfills"]
        if all(b.get("completed_at") for b in backfills):
            return
        assert time.monotonic() < deadline, f"a backfill is still running: {backfills}"
        time.sleep(2)


def backfill(stack, from_date: str, to_date: str, max_active_runs: int) -> list[dict]:
    wait_until_no_backfill_runs(stack)
    known = {r["run_id"] for r in stack.runs()}
    stack.cli(
        "backfill", "create", "--dag-id", DAG_ID, "--from-date", from_date, "--to-date", to_date,
        "--max-active-runs", str(max_active_runs),
    )  # fmt: skip
    return [r for r in stack.runs() if r["run_id"] not in known]


def test_a_backfill_migrates_each_interval_once_with_runs_in_parallel(airflow_stack):
    stack, db = airflow_stack, airflow_stack.legacy_db
    stack.reset_target()
    stack.unpause()

    queued = backfill(stack, "2025-01-02", "2025-01-04", max_active_runs=3)
    run_ids = [r["run_id"] for r in queued]
    assert len(run_ids) == 3 and {r["run_type"] for r in queued} == {"backfill"}, queued
    assert stack.wait_for(run_ids, timeout=900) == dict.fromkeys(run_ids, "success"), stack.describe(run_ids)
    assert_every_check_passed(stack, run_ids)

    runs = [r for r in stack.runs() if r["run_id"] in run_ids]
    assert overlapped(runs), runs  # --max-active-runs 3: the three days ran at once
    covered: set[str] = set()
    for run in runs:
        start, end = run["data_interval_start"], run["data_interval_end"]
        assert datetime.fromisoformat(end) - datetime.fromisoformat(start) == datetime(2025, 1, 2) - datetime(
            2025, 1, 1
        )  # a real day, not Airflow 3's zero-length default
        expected = calls_between(db, start, end)
        recorded = recorded_calls(db, run["run_id"])
        assert (recorded["window_start"], recorded["window_end"]) == (
            datetime.fromisoformat(start),
            datetime.fromisoformat(end),
        )
        assert (recorded["legacy"], recorded["landed"] + recorded["rejected"]) == (len(expected), len(expected))
        assert (recorded["missing"], recorded["doubled"]) == (0, 0)
        assert expected and not expected & covered  # non-empty days, disjoint intervals
        covered |= expected

    settled = settled_calls(db)
    assert len(settled) == len(set(settled))  # nothing doubled
    assert set(settled) == covered == calls_between(db, "2025-01-02 00:00+00", "2025-01-05 00:00+00")


def test_a_backfill_beside_a_full_manual_run_settles_every_call_exactly_once(airflow_stack):
    stack, db = airflow_stack, airflow_stack.legacy_db
    stack.reset_target()
    stack.unpause()

    wait_until_no_backfill_runs(stack)  # so that the backfill below starts at once, beside the manual run
    manual = stack.trigger({"call_partitions": 3})
    queued = backfill(stack, "2025-02-01", "2025-02-02", max_active_runs=2)
    run_ids = [manual, *(r["run_id"] for r in queued)]
    assert stack.wait_for(run_ids, timeout=900) == dict.fromkeys(run_ids, "success"), stack.describe(run_ids)
    assert_every_check_passed(stack, run_ids)
    assert overlapped([r for r in stack.runs() if r["run_id"] in run_ids])

    settled = settled_calls(db)
    legacy = {r[0] for r in db.rows("SELECT id::text FROM voice_agent.call_logs_voiceagent")}
    assert len(settled) == len(set(settled)) and set(settled) == legacy
    full = recorded_calls(db, manual)
    assert (full["window_start"], full["legacy"], full["missing"], full["doubled"]) == (None, len(legacy), 0, 0)
