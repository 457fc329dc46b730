"""The real Airflow stack (api-server, scheduler, dag-processor), shared by the tests of a session."""

from __future__ import annotations

import pytest

from tests.stack import AirflowStack


@pytest.fixture(scope="session")
def airflow_stack(pg_admin_uri, tmp_path_factory) -> AirflowStack:
    """Airflow running this repository's DAG (paused: call `unpause()`), see tests/stack.py.

    Runs of one test stay visible to the next: filter `runs()` by the run ids you triggered, and call
    `reset_target()` when a test needs the freshly seeded database.
    """
    with AirflowStack(pg_admin_uri, tmp_path_factory.mktemp("airflow-stack")) as stack:
        yield stack
