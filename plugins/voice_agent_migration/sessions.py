"""The database sessions a task opens: named, tracked, cancellable, and how a step runs on one.

Every connection a task opens says whose it is (`application_name`: DAG, task and run, as
pg_stat_activity shows it) and is tracked, so that a killed task (`on_kill`: marked failed, a
timeout, a worker shutdown) cancels the statements it left running on the server: Airflow's SQL
operators do not (apache/airflow#27314). Where the server has it (PostgreSQL 14+), the server also
checks every few seconds that the client is still there, so the statement of a process killed
outright (SIGKILL) ends too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any

# PostgreSQL truncates application_name to 63 bytes.
APPLICATION_NAME_BYTES = 63
# How often the server checks that a running statement's client is still connected.
CLIENT_CHECK_INTERVAL = "5s"


def application_name(dag_id: str, task_id: str, run_id: str) -> str:
    """`<dag>/<task>/<run>`, cut to what PostgreSQL keeps (the statement's first line names it whole)."""
    return f"{dag_id}/{task_id}/{run_id}".encode()[:APPLICATION_NAME_BYTES].decode(errors="ignore")


def backend_pid(conn: Any) -> int:
    """The server process of a connection (psycopg 3 or psycopg2)."""
    info = getattr(conn, "info", None)
    pid = getattr(info, "backend_pid", None)
    return int(pid if pid is not None else conn.get_backend_pid())


class SessionsCancelled(RuntimeError):
    """A session was asked for after the task was killed."""


class Sessions:
    """Opens connections with `connect`, names them, and can cancel what all of them are running."""

    def __init__(self, connect: Callable[[], Any], name: str | None = None) -> None:
        self.connect, self.name = connect, name
        self.open_connections: dict[int, Any] = {}
        self.lock = threading.Lock()
        self.cancelled = threading.Event()

    def open(self) -> Any:
        if self.cancelled.is_set():
            raise SessionsCancelled("the task was killed: no new session")
        conn = self.connect()
        conn.autocommit = True
        with closing(conn.cursor()) as cur:
            if self.name:
                cur.execute("SELECT set_config('application_name', %s, false)", (self.name,))
            cur.execute("SELECT current_setting('server_version_num')::integer >= 140000")
            if cur.fetchone()[0]:
                cur.execute(
                    "SELECT set_config('client_connection_check_interval', %s, false)", (CLIENT_CHECK_INTERVAL,)
                )
        conn.autocommit = False
        with self.lock:
            self.open_connections[backend_pid(conn)] = conn
        return conn

    def cancel_all(self) -> list[int]:
        """Cancel the running statement of every connection still open (from a new connection: the
        others are busy); returns the backends cancelled. No session opens after it."""
        self.cancelled.set()
        with self.lock:
            pids = [pid for pid, conn in self.open_connections.items() if not conn.closed]
        if not pids:
            return []
        with closing(self.connect()) as conn:
            conn.autocommit = True
            with closing(conn.cursor()) as cur:
                for pid in pids:
                    cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
        return pids


def last_result(cur: Any) -> list[tuple]:
    """The rows of the last statement that returned rows, of a multi-statement execute (psycopg 3
    keeps each statement's result, psycopg2 the last one)."""
    rows: list[tuple] = []
    while True:
        if cur.description is not None:
            rows = cur.fetchall()
        if not hasattr(cur, "results"):  # psycopg2: its cursor holds only the last result
            return rows
        if not cur.nextset():
            return rows


# The line serialize_step (sql/_common.sql) writes between a step's locks and its work.
SNAPSHOT_MARKER = "-- the step's snapshot starts here"


def run_step(conn: Any, sql: str, name: str, settings: Sequence[tuple[str, str]] = ()) -> list[tuple]:
    """Run a step's SQL on `conn` as serialize_step (sql/_common.sql) means it: the session `settings`
    (name, value) and the advisory locks before SNAPSHOT_MARKER outside any transaction, then the rest
    as one REPEATABLE READ transaction, committed, whose snapshot is taken once the locks are held:
    every statement of the step sees the legacy database at one instant, however the legacy
    application keeps writing. The locks are the session's: they go when `conn` closes. The work
    starts with a comment naming the step (`-- <name>`), so that pg_stat_activity shows which it is.
    Returns the rows of the last statement that returned rows."""
    locks, marker, work = sql.partition(SNAPSHOT_MARKER)
    if not marker:
        locks, work = "", sql
    conn.autocommit = True
    with closing(conn.cursor()) as cur:
        for setting, value in settings:
            cur.execute("SELECT set_config(%s, %s, false)", (setting, value))
        if locks.strip():
            cur.execute(locks)
    conn.autocommit = False
    if hasattr(conn, "set_session"):  # psycopg2
        conn.set_session(isolation_level="REPEATABLE READ")
    else:  # psycopg 3
        import psycopg

        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    with closing(conn.cursor()) as cur:
        cur.execute(f"-- {name}\n{work}")
        rows = last_result(cur)
    conn.commit()
    return rows
