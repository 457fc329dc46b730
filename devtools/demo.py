"""`make demo`: the whole migration on the demo legacy database, left in place to inspect.

The server is an embedded PostgreSQL (pgserver) whose data directory is kept in `.demo/pgdata`
(git-ignored), or the one VOICE_AGENT_PG_URI names. Every `make demo` drops the database
`voice_agent_demo` there and builds it afresh from the demo legacy database, then runs the DAG once
with a real `airflow dags test` (the same code path as `make migrate`; Airflow's home is
`.demo/airflow`) and prints the reconciliation, the findings and the per-tenant account. The embedded
server is stopped when the demo ends; its data stays.

`make demo-shell` (`python -m devtools.demo shell`) starts the kept server again if needed and opens
psql on `voice_agent_demo`; with SQL='...' it runs that instead, and it reads piped input.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Generator
from contextlib import contextmanager

import psycopg

from devtools.airflow_env import REPO
from devtools.legacy_db import build_demo_database
from devtools.migrate import run_dag
from devtools.postgres import ENV_URI, database_uri, drop_database, psql_binary, server_uri

DEMO_DIR = REPO / ".demo"
PGDATA = DEMO_DIR / "pgdata"
DEMO_DB = "voice_agent_demo"
# pgserver asks platformdirs for a runtime directory, which warns where XDG_RUNTIME_DIR is unset.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def say(message: str) -> None:
    """Progress on stderr, so that `make demo-shell` output piped elsewhere is psql's alone."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def demo_server() -> Generator[str, None, None]:
    """An admin URI: the server VOICE_AGENT_PG_URI names, or the embedded one kept in .demo/pgdata,
    started if needed and stopped on exit."""
    if not os.environ.get(ENV_URI):
        first_time = "" if (PGDATA / "PG_VERSION").exists() else " (first time: initdb)"
        say(f"Starting the embedded PostgreSQL kept in {PGDATA.relative_to(REPO)}{first_time}...")
    with server_uri(keep_in=PGDATA) as uri:
        yield uri


def demo() -> int:
    with demo_server() as admin_uri:
        uri = database_uri(admin_uri, DEMO_DB)
        say(f"Building the database {DEMO_DB} afresh from the demo legacy database...")
        drop_database(admin_uri, uri)
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DEMO_DB}"')
        build_demo_database(uri)
        status = run_dag(uri, {}, home=DEMO_DIR / "airflow")
    if os.environ.get(ENV_URI):
        where = f" on the server {ENV_URI} names (keep it set for make demo-shell)"
    else:
        where = f" (its server's data is kept in {PGDATA.relative_to(REPO)})"
    print(f"\nThe migrated database {DEMO_DB} stays{where}. Open it with:\n  make demo-shell")
    print('  make demo-shell SQL="select count(*) from public.voice_calls"')
    return status


def shell() -> int:
    sql = os.environ.get("SQL")
    with demo_server() as admin_uri:
        with psycopg.connect(admin_uri) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone()
        if not exists:
            say(f"No database {DEMO_DB} yet: run `make demo` first.")
            return 1
        psql = psql_binary()
        if psql is None:
            say("No psql found (pgserver's or on PATH).")
            return 1
        uri = database_uri(admin_uri, DEMO_DB)
        # Ctrl-C belongs to psql (it cancels the query there), not to this process waiting for it.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.call(
                [psql, uri, *(["-c", sql] if sql else [])],
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        finally:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(shell() if sys.argv[1:] == ["shell"] else demo())
