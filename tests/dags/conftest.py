"""Fixtures of the DAG tests: a real Airflow stack shared by the session, the same with the CeleryExecutor
and two workers, and instant retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devtools.redis_server import redis_url
from tests import helpers
from tests.stack import AirflowStack


@pytest.fixture(scope="session")
def airflow_stack(pg_admin_uri, tmp_path_factory) -> AirflowStack:
    """Airflow running this repository's DAG (paused: call `unpause()`), see tests/stack.py.

    Runs of one test stay visible to the next: filter `runs()` by the run ids you triggered, and call
    `reset_target()` when a test needs the freshly seeded database.
    """
    with AirflowStack(pg_admin_uri, tmp_path_factory.mktemp("airflow-stack")) as stack:
        yield stack


@pytest.fixture(scope="module")
def celery_stack(pg_admin_uri, tmp_path_factory) -> AirflowStack:
    """Airflow with the CeleryExecutor, as docker-compose.yaml runs it: a Redis broker (VOICE_AGENT_REDIS_URL,
    else one started for the module, devtools/redis_server.py), the metadata database as result backend,
    and two `airflow celery worker` processes whose hostnames are `stack.celery_workers`. Stopped (workers
    and Redis included) when the module's tests are done, even when one failed."""
    with (
        redis_url() as broker,
        AirflowStack(
            pg_admin_uri,
            tmp_path_factory.mktemp("airflow-celery-stack"),
            celery_broker_url=broker,
            celery_workers=("celery-worker-a", "celery-worker-b"),
        ) as stack,
    ):
        yield stack


@pytest.fixture
def instant_retries(monkeypatch):
    """The DAG as `run_dag` loads it, but its steps retry at once instead of after their backoff."""
    load_dag = helpers.load_dag

    def load_dag_with_instant_retries():
        dag = load_dag()
        for task in dag.tasks:
            task.retry_delay = timedelta(0)
            task.retry_exponential_backoff = False
        return dag

    monkeypatch.setattr(helpers, "load_dag", load_dag_with_instant_retries)
