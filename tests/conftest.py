"""Fixtures: a real PostgreSQL (embedded unless VOICE_AGENT_PG_URI names one), a fresh database per
test, and an isolated Airflow (its own home and SQLite metadata) that runs the real DAG."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its configuration on import: isolate it before anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-test-home-"))
from devtools.airflow_env import airflow, airflow_env  # ruff: ignore[module-import-not-at-top-of-file]

os.environ.update(airflow_env(_AIRFLOW_HOME, connection_json="{}"))

import psycopg  # ruff: ignore[module-import-not-at-top-of-file]
import pytest  # ruff: ignore[module-import-not-at-top-of-file]

from devtools.legacy_db import create_application_tables, create_legacy_schema, seed_demo  # ruff: ignore[module-import-not-at-top-of-file]
from devtools.postgres import create_database, drop_database, server_uri  # ruff: ignore[module-import-not-at-top-of-file]
from tests.helpers import LegacyDatabase  # ruff: ignore[module-import-not-at-top-of-file]


@pytest.fixture(scope="session")
def pg_admin_uri():
    with server_uri() as uri:
        yield uri


@pytest.fixture(scope="session", autouse=True)
def airflow_metadata_db():
    """Airflow's own metadata database, migrated once per test session."""
    airflow(dict(os.environ), "db", "migrate")
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def cli_airflow_home(tmp_path_factory) -> Path:
    """A second Airflow home, for `airflow` CLI runs in subprocesses. This process keeps connections
    open to its own SQLite metadata database (`dag.test()` runs in-process); when CLI runs wrote to
    the same file, a later in-process run found it "malformed"."""
    home = tmp_path_factory.mktemp("airflow-cli-home")
    airflow(airflow_env(home, connection_json="{}"), "db", "migrate")
    return home


@pytest.fixture
def legacy_db(pg_admin_uri) -> LegacyDatabase:
    """A new database holding an empty legacy voice_agent schema."""
    uri = create_database(pg_admin_uri, prefix="voice_agent_test")
    with psycopg.connect(uri, autocommit=True) as conn:
        create_legacy_schema(conn)
    yield LegacyDatabase(uri)
    drop_database(pg_admin_uri, uri)


@pytest.fixture
def demo_db(legacy_db) -> LegacyDatabase:
    """The demo legacy database, with the main application's own leads and cache tables."""
    with psycopg.connect(legacy_db.uri, autocommit=True) as conn:
        seed_demo(conn)
        create_application_tables(conn)
    return legacy_db
