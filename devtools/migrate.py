"""`make migrate PG_URI=... [CONF='{...}']`: one run of the DAG, as `airflow dags test`, against the
database PG_URI names (source and target schemas live there), from a fresh shell.

It sets up what Airflow needs: its own home in `.airflow/` (metadata database and logs, git-ignored),
this repository's DAGs and plugins, no example DAGs, `airflow db migrate`, and the `voice_agent_db`
connection built from the URI. It prints the run task by task, keeps the full log in
`.airflow/logs/`, and ends with the run's reconciliation, findings and account as the demo prints them
(a dry run: what it would do). Exit status: 0 when the run succeeded.

The password is never printed: it is masked in everything this writes, the log file included.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from devtools.airflow_env import DAG_ID, REPO, airflow_env, render_sql
from devtools.postgres import airflow_connection

AIRFLOW_HOME = REPO / ".airflow"
# What `airflow dags test` logs when it starts and ends a task, and a task's new state.
TASK_STARTED = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
TASK_ENDED = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
NEW_STATE = re.compile(r"\bnew_state=(\w+)")
# A log record: timestamp, [level], message, then [logger] and key=value pairs.
RECORD = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<message>.*?)(?: \[[\w.]+\] .*)?$")
REPORTS = [
    ("report/reconciliation.sql", "Reconciliation per legacy table"),
    ("report/findings.sql", "Findings for the cutover (not failures; call by call: the view migration_call_findings)"),
    ("report/run_detail.sql", "Run account per legacy table and tenant (report_run)"),
]


class Secret:
    """Masks a password (as written and URL-encoded) in any text about to be shown or logged."""

    def __init__(self, password: str) -> None:
        self.forms = sorted({password, quote(password, safe="")} - {""}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, "***")
        return text


# The form of PG_URI, as the messages show it.
URI_FORM = "postgresql://<user>:<password>@<host>:5432/<database>"


def describe(uri: str) -> str:
    """user@host:port/dbname, without the password."""
    params = conninfo_to_dict(uri)
    return "{}@{}:{}/{}".format(
        params.get("user", ""), params.get("host", "localhost"), params.get("port", 5432), params.get("dbname", "")
    )


def connection_json(uri: str) -> str:
    """The `voice_agent_db` connection for `uri`, with libpq options such as sslmode kept as extras
    (the Postgres hook passes them to the driver)."""
    connection = json.loads(airflow_connection(uri))
    extra = {k: v for k, v in conninfo_to_dict(uri).items() if k not in {"host", "port", "user", "password", "dbname"}}
    if extra:
        connection["extra"] = extra
    return json.dumps(connection)


@contextmanager
def exclusive(home: Path) -> Generator[None, None, None]:
    """One run at a time per Airflow home: two runs would share one SQLite metadata database."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"Another run is using {home}; waiting for it to end...", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def relative(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def stream_run(command: list[str], env: dict[str, str], log: TextIO, secret: Secret) -> int:
    """Run `airflow dags test`, writing its whole output to `log` and one line per task to stdout."""
    started: dict[str, float] = {}
    state = ""
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = secret.mask(raw)
            log.write(line)
            if match := TASK_STARTED.search(line):
                started[match[1]] = time.monotonic()
                state = ""
            elif match := NEW_STATE.search(line):
                state = match[1]
            elif match := TASK_ENDED.search(line):
                task = match[1]
                seconds = time.monotonic() - started.get(task, time.monotonic())
                print(f"  {datetime.now():%H:%M:%S}  {task:<40} {state or 'done':<14} {seconds:6.1f}s", flush=True)
            elif (record := RECORD.match(line)) and (
                record["level"] in ("error", "critical") or " FAILED: " in record["message"]
            ):
                print(f"      {record['message'].rstrip()[:300]}", flush=True)
        return process.wait()


def finished_run(since: datetime) -> tuple[str, str, list[str], Any] | None:
    """(run id, state, failed tasks, the dry run's rows) of the run `airflow dags test` just made,
    read from the metadata database of this process's AIRFLOW_HOME."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == DAG_ID, DagRun.start_date >= since)
            .order_by(DagRun.id.desc())
            .limit(1)
        ).first()
        if run is None:
            return None
        failed = sorted(
            ti.task_id for ti in run.get_task_instances(session=session) if ti.state in ("failed", "upstream_failed")
        )
        xcom = session.scalars(
            XComModel.get_many(run_id=run.run_id, key="return_value", dag_ids=DAG_ID, task_ids="dry_run")
        ).first()
        dry_run = XComModel.deserialize_value(xcom) if xcom is not None else None
        return run.run_id, str(run.state), failed, dry_run


def print_table(title: str, columns: list[str], rows: list[Any]) -> None:
    from voice_agent_migration.operators import format_table

    print(f"\n{title}\n{format_table(columns, rows)}")


def print_reports(uri: str, run_id: str, params: dict[str, Any]) -> None:
    """The run's records as the report tasks show them, read from the target schema."""
    with psycopg.connect(uri, autocommit=True) as conn:
        for sql_file, title in REPORTS:
            try:
                cursor = conn.execute(render_sql(sql_file, params=params, run_id=run_id))
            except psycopg.errors.UndefinedTable:  # the run failed before it created its records
                print(f"\n{title}: nothing recorded")
                continue
            print_table(f"{title} ({run_id})", [d.name for d in cursor.description], cursor.fetchall())


def run_dag(uri: str, conf: dict[str, Any], home: Path = AIRFLOW_HOME) -> int:
    """Run the DAG once against `uri` with `conf`, print its progress and reports; the exit status."""
    secret = Secret(conninfo_to_dict(uri).get("password", ""))
    env = airflow_env(home, connection_json(uri))
    env.pop("PG_URI", None)  # the connection carries it; nothing else needs the password
    os.environ.update(env)  # this process reads the run's outcome from the same Airflow home
    airflow_cli = str(Path(sys.executable).with_name("airflow"))
    with exclusive(home):
        print(f"Airflow home {relative(home)}: airflow db migrate (its metadata database)...", end="", flush=True)
        started = time.monotonic()
        migrated = subprocess.run([airflow_cli, "db", "migrate"], env=env, capture_output=True, text=True, check=False)
        if migrated.returncode != 0:
            print(secret.mask(migrated.stdout[-5000:] + migrated.stderr[-5000:]))
            print(f"airflow db migrate FAILED (exit {migrated.returncode})")
            return migrated.returncode
        print(f" done in {time.monotonic() - started:.1f}s", flush=True)
        command = [airflow_cli, "dags", "test", DAG_ID, "-c", json.dumps(conf)]
        log_path = home / "logs" / f"dags-test-{datetime.now():%Y%m%dT%H%M%S}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"airflow dags test {DAG_ID} -c '{json.dumps(conf)}' (full log: {relative(log_path)})", flush=True)
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        started = time.monotonic()
        with open(log_path, "w") as log:
            returncode = stream_run(command, env, log, secret)
        elapsed = time.monotonic() - started
        outcome = finished_run(since)
    if outcome is None:
        print(secret.mask(log_path.read_text()[-5000:]))
        print(f"airflow dags test {DAG_ID} FAILED before a run started (exit {returncode}); log: {relative(log_path)}")
        return returncode or 1
    run_id, state, failed, dry_run = outcome
    if returncode == 0 and state == "success":
        print(f"airflow dags test {DAG_ID}: success in {elapsed:.1f}s ({run_id})")
    else:
        print(f"airflow dags test {DAG_ID} FAILED in {elapsed:.1f}s ({run_id}, exit {returncode}, state {state})")
        print(f"failed tasks: {', '.join(failed) or '(none)'}; their logs: {relative(log_path)}")
    if conf.get("dry_run"):
        if dry_run:
            print_table(
                "Dry run: what a run would do, per legacy table (nothing was written)",
                list(dry_run[0]),
                [list(row.values()) for row in dry_run],
            )
    elif not conf.get("rollback"):
        print_reports(uri, run_id, conf)
    return returncode or (0 if state == "success" else 1)


def main() -> int:
    uri = os.environ.get("PG_URI", "")
    if not uri:
        print(f"PG_URI is not set: make migrate PG_URI={URI_FORM}", file=sys.stderr)
        return 2
    try:
        conf = json.loads(os.environ.get("CONF") or "{}")
    except json.JSONDecodeError:
        conf = None
    if not isinstance(conf, dict):
        print("make migrate: CONF must be a JSON object, e.g. CONF='{\"dry_run\": true}'", file=sys.stderr)
        return 2
    try:
        target = describe(uri)
    except psycopg.ProgrammingError:  # its message may quote the URI, password included
        print(f"make migrate: PG_URI is not a PostgreSQL URI ({URI_FORM})", file=sys.stderr)
        return 2
    secret = Secret(conninfo_to_dict(uri).get("password", ""))
    print(f"Database {target} (password hidden): checking the connection...", flush=True)
    try:
        with psycopg.connect(uri, connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as error:
        print(secret.mask(f"cannot connect to {target}: {error}"), file=sys.stderr)
        return 1
    print(f"Connected: PostgreSQL {version}.", flush=True)
    return run_dag(uri, conf)


if __name__ == "__main__":
    sys.exit(main())
