"""The call step killed from Airflow mid-run (marked failed in the UI's API, as an operator would): its
statements stop on the server at once, and the cleared task resumes with the chunks it had not
committed. The real stack: the scheduler's worker runs the task, the supervisor kills it."""

from __future__ import annotations

import re
import time

import psycopg

from tests.stack import AirflowStack

CHUNK_SIZE = 100  # the demo's calls in 8 chunks
MIGRATION_SESSIONS = (
    "SELECT pid, state, wait_event_type, application_name FROM pg_stat_activity WHERE application_name LIKE %s"
)


def poll(what: str, found, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := found():
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def committed_chunks(db, run_id: str) -> dict[int, object]:
    rows = db.rows(
        "SELECT chunk_number, committed_at FROM public.migration_run_chunks"
        " WHERE run_id = %s AND committed_at IS NOT NULL",
        (run_id,),
    )
    return dict(rows)


def test_a_call_step_marked_failed_stops_its_statements_and_the_cleared_task_resumes_the_rest(
    airflow_stack: AirflowStack,
):
    stack, db = airflow_stack, airflow_stack.legacy_db
    stack.reset_target()
    stack.unpause()
    conf = {"call_chunk_size": CHUNK_SIZE, "call_partitions": 1}
    first = stack.trigger(conf)
    assert stack.wait_for(first, timeout=900) == {first: "success"}, stack.describe([first])

    # One call of a middle chunk changes in the legacy database; its migrated row is locked by
    # someone else, so the next run's call step blocks on it, mid-step, until it is killed.
    blocked_call = db.value(
        "SELECT id FROM voice_agent.call_logs_voiceagent AS cl"
        " WHERE EXISTS (SELECT 1 FROM public.voice_calls AS vc WHERE vc.id = cl.id)"
        " ORDER BY id OFFSET (SELECT count(*) / 2 FROM voice_agent.call_logs_voiceagent) LIMIT 1"
    )
    new_status = db.value(
        "UPDATE voice_agent.call_logs_voiceagent SET status = CASE status WHEN 'completed' THEN 'failed'"
        " ELSE 'completed' END WHERE id = %s RETURNING status",
        (blocked_call,),
    )
    with psycopg.connect(db.uri) as holder:
        holder.execute("SELECT 1 FROM public.voice_calls WHERE id = %s FOR UPDATE", (blocked_call,))
        second = stack.trigger(conf)
        name = f"{stack.dag_id}/migrate_voice_calls/{second}"[:63]
        (pid, *_), *_ = poll(
            "the call step waiting on the locked call",
            lambda: [r for r in db.rows(MIGRATION_SESSIONS, (name,)) if r[2] == "Lock"],
            timeout=600,
        )
        before_kill = committed_chunks(db, second)
        chunks = db.value("SELECT count(*) FROM public.migration_run_chunks WHERE run_id = %s", (second,))
        assert 0 < len(before_kill) < chunks - 1, (before_kill, chunks)

        stack.api(
            "PATCH",
            f"/dags/{stack.dag_id}/dagRuns/{second}/taskInstances/migrate_voice_calls",
            json={"new_state": "failed"},
        )
        # The lock is still held: only a cancel ends the waiting statement.
        try:
            poll(
                "no session of the migration active",
                lambda: not [r for r in db.rows(MIGRATION_SESSIONS, (f"{stack.dag_id}/%",)) if r[1] == "active"],
                timeout=30,
            )
        except AssertionError as error:
            active = db.rows(MIGRATION_SESSIONS, (f"{stack.dag_id}/%",))
            log = stack.task_log(second, "migrate_voice_calls")
            raise AssertionError(f"{error}: {active}\n{log[-6000:]}") from None
        holder.rollback()
    assert stack.wait_for(second, timeout=120) == {second: "failed"}
    killed_log = stack.task_log(second, "migrate_voice_calls")
    assert re.search(rf"ended the sessions of backends \[[^]]*\b{pid}\b", killed_log), killed_log
    assert committed_chunks(db, second) == before_kill  # the killed try committed nothing more

    stack.api(
        "POST",
        f"/dags/{stack.dag_id}/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": second,
            "task_ids": ["migrate_voice_calls"],
            "include_downstream": True,
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    assert stack.wait_for(second, timeout=900) == {second: "success"}, stack.describe([second])
    after = committed_chunks(db, second)
    assert len(after) == chunks
    assert {n: after[n] for n in before_kill} == before_kill  # the resumed try left them alone
    resumed_log = stack.task_log(second, "migrate_voice_calls", try_number=2)
    assert f"{chunks - len(before_kill)} chunks to do of {chunks}" in resumed_log, resumed_log
    assert db.value("SELECT status FROM public.voice_calls WHERE id = %s", (blocked_call,)) == new_status
    for task_id, state in stack.task_states(second).items():
        assert state in {"success", "skipped"}, (task_id, state)
