"""The database sessions a task opens: named, tracked, cancellable, and how a step runs on one.

Every connection a task opens says whose it is (`application_name`: DAG, task and run, as
pg_stat_activity shows it) and is tracked, so that a killed task (`on_kill`: marked failed, a
timeout, a worker shutdown) ends them on the server, cancelling what they were running: Airflow's SQL
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
# server_version_num of PostgreSQL 14, the first with client_connection_check_interval and with a
# pg_terminate_backend that can wait.
PG14 = 140000
# How often the server checks that a running statement's client is still connected.
CLIENT_CHECK_INTERVAL = "5s"
# How long ending the sessions of a killed task waits for their server processes to exit.
TERMINATE_WAIT_MS = 5000


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
        """A new named session, tracked from before its first statement; refused once the task is
        killed."""
        conn = self.connect()
        with self.lock:
            if self.cancelled.is_set():
                conn.close()
                raise SessionsCancelled("the task was killed: no new session")
            self.open_connections[backend_pid(conn)] = conn
        conn.autocommit = True
        with closing(conn.cursor()) as cur:
            if self.name:
                cur.execute("SELECT set_config('application_name', %s, false)", (self.name,))
            if server_version(cur) >= PG14:
                cur.execute(
                    "SELECT set_config('client_connection_check_interval', %s, false)", (CLIENT_CHECK_INTERVAL,)
                )
        conn.autocommit = False
        return conn

    def end_all(self) -> list[int]:
        """End every session still open, from a new connection (the others are busy): the server
        cancels and rolls back what each is running and closes it, so nothing its thread sends
        afterwards runs (a cancel alone would miss a statement sent a moment after it). No session
        opens after it. Returns the backends ended, once they are gone (PostgreSQL 14+ waits for them,
        up to TERMINATE_WAIT_MS)."""
        with self.lock:
            self.cancelled.set()
            pids = [pid for pid, conn in self.open_connections.items() if not conn.closed]
        if not pids:
            return []
        with closing(self.connect()) as conn:
            conn.autocommit = True
            with closing(conn.cursor()) as cur:
                waits = server_version(cur) >= PG14
                terminate = "pg_terminate_backend(pid, %(wait)s)" if waits else "pg_terminate_backend(pid)"
                cur.execute(
                    f"SELECT {terminate} FROM unnest(%(pids)s::integer[]) AS pid",
                    {"pids": pids, "wait": TERMINATE_WAIT_MS},
                )
        return pids


def server_version(cur: Any) -> int:
    """The server's `server_version_num` (150020 for 15.20)."""
    cur.execute("SELECT current_setting('server_version_num')::integer")
    return int(cur.fetchone()[0])


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
