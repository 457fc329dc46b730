"""The CeleryExecutor of docker-compose.yaml, for real: a scheduler queues the task instances of a three-day
backfill on a Redis broker, two `airflow celery worker` processes run them, and every run migrates its own
day with every check passing. TaskInstance.hostname, as the REST API gives it, shows both workers at work."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from devtools.airflow_env import SQL_DIR
from tests.dags.test_backfill_and_concurrency import (
    assert_every_check_passed,
    backfill,
    calls_between,
    recorded_calls,
    settled_calls,
)

CHECKS = {path.stem for path in (SQL_DIR / "check").glob("*.sql")}  # the check tasks, named after their files


def task_instances(stack, run_id: str) -> list[dict]:
    return stack.api("GET", f"/dags/{stack.dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}).json()[
        "task_instances"
    ]


@pytest.mark.slow
def test_a_backfill_runs_on_two_celery_workers_and_every_check_passes(celery_stack):
    stack, db = celery_stack, celery_stack.legacy_db
    stack.unpause()

    queued = backfill(stack, "2025-01-02", "2025-01-04", max_active_runs=3)
    run_ids = [r["run_id"] for r in queued]
    assert len(run_ids) == 3 and {r["run_type"] for r in queued} == {"backfill"}, queued
    assert stack.wait_for(run_ids, timeout=600) == dict.fromkeys(run_ids, "success"), stack.describe(run_ids)
    assert_every_check_passed(stack, run_ids)  # every task but the branches not taken succeeded

    workers = set(stack.celery_workers)
    hosts_per_run = {}
    for run_id in run_ids:
        executed = [ti for ti in task_instances(stack, run_id) if ti["state"] == "success"]
        assert CHECKS and CHECKS <= {ti["task_id"] for ti in executed}, run_id  # each check of sql/check/ succeeded
        assert {ti["queue"] for ti in executed} == {stack.celery_queue}
        hosts_per_run[run_id] = Counter(ti["hostname"] for ti in executed)
        assert set(hosts_per_run[run_id]) <= workers, hosts_per_run  # only the workers ran tasks
    assert set().union(*hosts_per_run.values()) == workers, hosts_per_run  # and both of them did

    # Each run migrated exactly its day, wherever its tasks ran.
    covered: set[str] = set()
    for run in (r for r in stack.runs() if r["run_id"] in run_ids):
        start, end = run["data_interval_start"], run["data_interval_end"]
        assert datetime.fromisoformat(end) - datetime.fromisoformat(start) == timedelta(days=1)
        expected = calls_between(db, start, end)
        recorded = recorded_calls(db, run["run_id"])
        assert (recorded["legacy"], recorded["landed"] + recorded["rejected"]) == (len(expected), len(expected))
        assert (recorded["missing"], recorded["doubled"]) == (0, 0)
        assert expected and not expected & covered
        covered |= expected
    settled = settled_calls(db)
    assert len(settled) == len(set(settled)) and set(settled) == covered
