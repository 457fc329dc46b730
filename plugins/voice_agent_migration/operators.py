"""Operators of the migration DAG: SQL steps, SQL checks and readable reports, all from `sql/`.

The factories take no connection, alert callback or retries: the DAG gives every task those through
its `default_args` (`conn_id=CONN_ID`, `on_failure_callback`, `STEP_RETRIES`); a check overrides
`retries=0`.

A refusal is final. Migration SQL that refuses to go on (the preflight, a safety valve) raises an error
of SQLSTATE class `VA` (`RAISE EXCEPTION ... USING ERRCODE = 'VA000'`): every operator running
migration SQL turns it into `MigrationRefused`, an AirflowFailException, so it is never retried (the
same data would be refused again) and its log and alert give the database's message, detail and hint.
Any other error is raised as it is and retried, the steps being idempotent.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Collection, Generator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import timedelta
from typing import Any, ClassVar

from airflow.providers.common.sql.operators.sql import BaseSQLOperator, SQLExecuteQueryOperator
from airflow.sdk import BaseOperator, task
from airflow.sdk.exceptions import AirflowFailException

from voice_agent_migration.chunks import ChunkedStep
from voice_agent_migration.params import MIGRATION_PARAMS
from voice_agent_migration.sessions import Sessions, application_name, run_step

CONN_ID = "voice_agent_db"

# Migration steps are idempotent, so a transient fault (a dropped connection, a lock timeout) is
# retried with backoff; checks never are (`migration_check` sets retries=0).
STEP_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
}


# The SQLSTATE class of the errors our SQL raises to refuse (`ERRCODE = 'VA000'`). The SQL standard
# leaves classes starting with 5-9 or I-Z to implementations, and PostgreSQL uses no V class.
REFUSAL_SQLSTATE_CLASS = "VA"


class MigrationRefused(AirflowFailException):
    """The migration's SQL refused to go on (SQLSTATE class VA): final, never retried. The message is
    the database's, with its DETAIL and HINT lines when it gave them."""

    def __init__(self, sqlstate: str, message: str, detail: str | None = None, hint: str | None = None) -> None:
        lines = [message, *(f"{label}: {text}" for label, text in (("DETAIL", detail), ("HINT", hint)) if text)]
        super().__init__("\n".join(lines))
        self.sqlstate, self.message, self.detail, self.hint = sqlstate, message, detail, hint


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of a database error: psycopg 3 (which the postgres provider uses with SQLAlchemy 2)
    calls it `sqlstate`, psycopg2 `pgcode`."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


def as_refusal(error: BaseException) -> MigrationRefused | None:
    """The refusal an error is, or carries (as its cause or context), if any."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MigrationRefused):
            return current
        code = sqlstate_of(current)
        if code and code.upper().startswith(REFUSAL_SQLSTATE_CLASS):
            diag = getattr(current, "diag", None)
            message = getattr(diag, "message_primary", None) or str(current).strip()
            return MigrationRefused(
                code, message, getattr(diag, "message_detail", None), getattr(diag, "message_hint", None)
            )
        pending += [current.__cause__, current.__context__]
    return None


@contextmanager
def refusals_are_final() -> Generator[None]:
    """Around an operator's work: a refusal (SQLSTATE class VA) is raised as MigrationRefused, final;
    any other error as it is."""
    try:
        yield
    except AirflowFailException:
        raise
    except Exception as err:
        refusal = as_refusal(err)
        if refusal is None:
            raise
        raise refusal from err


def step_task_id(sql_file: str) -> str:
    """`migrate/07_migrate_voice_calls.sql` -> `migrate_voice_calls`."""
    return sql_file.rsplit("/", 1)[-1].removesuffix(".sql").lstrip("0123456789_")


class EndsItsSessionsWhenKilled:
    """Every connection the task opens is named for pg_stat_activity (DAG, task, run) and tracked; a
    killed task (`on_kill`: marked failed, its execution_timeout, a worker shutdown) ends them on the
    server, cancelling what they run (see sessions.py; the chunked step also ends its sessions when
    interrupted)."""

    _sessions: Sessions | None = None

    def sessions(self, context: Any) -> Sessions:
        run_id = (context or {}).get("run_id") or "outside_a_run"
        name = application_name(self.dag_id, self.task_id, str(run_id))
        self._sessions = Sessions(self.get_db_hook().get_conn, name)
        return self._sessions

    def on_kill(self) -> None:
        if self._sessions is not None:
            ended = self._sessions.end_all()
            self.log.info("ended the sessions of backends %s, cancelling what they ran", ended)


class MigrationStepOperator(EndsItsSessionsWhenKilled, SQLExecuteQueryOperator):
    """A step of sql/ in one transaction on one snapshot (see run_step), whose refusals are final.
    Maintenance (`autocommit`, such as VACUUM) runs outside any transaction."""

    def execute(self, context: Any) -> Any:
        sessions = self.sessions(context)
        with refusals_are_final():
            started = time.monotonic()
            with closing(sessions.open()) as conn:
                if self.autocommit:
                    conn.autocommit = True
                    with closing(conn.cursor()) as cur:
                        cur.execute(f"-- {self.task_id}\n{self.sql}")
                else:
                    run_step(conn, self.sql, self.task_id)
            self.log.info("%s committed in %.1fs", self.task_id, time.monotonic() - started)
            return None


def migration_step(sql_file: str, *, autocommit: bool = False, **kwargs: Any) -> MigrationStepOperator:
    """One idempotent step: the whole file runs in one transaction (unless it is maintenance such as
    VACUUM, which cannot) and may be retried, unless it refuses (SQLSTATE class VA)."""
    return MigrationStepOperator(
        task_id=step_task_id(sql_file), sql=sql_file, autocommit=autocommit, do_xcom_push=False, **kwargs
    )


class ChunkedSQLOperator(EndsItsSessionsWhenKilled, SQLExecuteQueryOperator):
    """Runs a chunked step (the call step: chunks.py, sql/_incremental.sql): the run's chunks, each a
    short committed transaction, `sessions` at once; a retry does only the chunks not yet committed.
    The log reports progress at least every 10 seconds. A failed chunk fails the task (with a refusal,
    if any chunk refused: final); the chunks committed stay, which is safe because the step is
    idempotent."""

    template_fields: Sequence[str] = (*SQLExecuteQueryOperator.template_fields, "concurrency")

    def __init__(self, *, concurrency: int | str = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.concurrency = concurrency

    def execute(self, context: Any) -> None:
        step = ChunkedStep(self.sessions(context), self.sql, self.task_id, int(self.concurrency), self.log)
        with refusals_are_final():
            step.run()


def chunked_migration_step(sql_file: str, concurrency: int | str, **kwargs: Any) -> ChunkedSQLOperator:
    """A migration step whose SQL runs in chunks, `concurrency` sessions at once (ChunkedSQLOperator)."""
    return ChunkedSQLOperator(task_id=step_task_id(sql_file), sql=sql_file, concurrency=concurrency, **kwargs)


class CheckFailed(AirflowFailException):
    """A migration check found a problem. `finding` is what it found (counts and a few ids) and is the
    whole message. An AirflowFailException, so the failure is final: a failed check is never retried."""

    def __init__(self, finding: str) -> None:
        super().__init__(finding)
        self.finding = finding


def check_verdict(row: Sequence[Any] | None) -> tuple[bool, str]:
    """(passed, finding) of a check's row `(passed boolean, detail text)`; no row or a NULL verdict fails."""
    if row is None:
        return False, "the check returned no row"
    if len(row) != 2:
        return False, f"the check returned {len(row)} columns instead of (passed, detail)"
    passed, detail = row
    finding = "(no detail)" if detail is None else str(detail)
    if passed is None:
        return False, f"the check's verdict is NULL: {finding}"
    return bool(passed), finding


# PostgreSQL's JIT compiles a check's large generated query for longer than it runs (PostgreSQL 15:
# 16.2 of the content check's 18.5 s at 200k calls, "Optimization" and "Emission"); the steps turn it
# off too (serialize_step).
NO_JIT = "SET jit = off"


class MigrationCheckOperator(EndsItsSessionsWhenKilled, BaseSQLOperator):
    """Runs one check of sql/check/, which returns one row `(passed boolean, detail text)`.

    Its log says first what the check found ("check_x passed: ..." or "check_x FAILED: ..."); the
    rendered SQL is logged only at DEBUG. The SQL runs on a cursor of its own, not through the hook's
    `run`, which would log the whole statement at INFO. A failure raises `CheckFailed` carrying the
    finding, for the log and the alert. A check writes nothing: its connection closes uncommitted.

    `work_mem` (e.g. "256MB") is set for the check's session: a check that hashes whole tables then
    keeps its hash tables in memory instead of batching them to disk. A check is one statement, so it
    cannot `SET LOCAL` itself.
    """

    template_fields: Sequence[str] = ("sql", *BaseSQLOperator.template_fields)
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}

    def __init__(self, *, sql: str, work_mem: str | None = None, **kwargs: Any) -> None:
        if work_mem is not None:
            kwargs["hook_params"] = {**(kwargs.get("hook_params") or {}), "options": f"-c work_mem={work_mem}"}
        super().__init__(**kwargs)
        self.sql = sql
        self.work_mem = work_mem

    def execute(self, context: Any) -> None:
        with closing(self.sessions(context).open()) as conn, closing(conn.cursor()) as cur:
            cur.execute(NO_JIT)
            cur.execute(self.sql)
            row = cur.fetchone()
        passed, finding = check_verdict(row)
        self.log.info("%s %s: %s", self.task_id, "passed" if passed else "FAILED", finding)
        self.log.debug("%s ran:\n%s", self.task_id, self.sql)
        if not passed:
            raise CheckFailed(finding)


def migration_check(sql_file: str, work_mem: str | None = None, **kwargs: Any) -> MigrationCheckOperator:
    """A check of sql/check/ (see MigrationCheckOperator). It is not retried: a failed check is final,
    and a check that could not run deserves a look before it runs again."""
    return MigrationCheckOperator(task_id=step_task_id(sql_file), sql=sql_file, work_mem=work_mem, retries=0, **kwargs)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a plain-text table for task logs and terminals."""
    cells = [[str(col) for col in columns], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    numeric = [all(isinstance(row[i], int) for row in rows) and bool(rows) for i in range(len(columns))]

    def line(row: list[str]) -> str:
        padded = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


class SQLReportOperator(EndsItsSessionsWhenKilled, BaseSQLOperator):
    """Runs a read-only query, logs it as a table and returns its rows (XCom) as dicts."""

    template_fields: Sequence[str] = ("sql", *BaseSQLOperator.template_fields)
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}

    def __init__(self, *, sql: str, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.title = title

    def execute(self, context: Any) -> list[dict[str, Any]]:
        with closing(self.sessions(context).open()) as conn, closing(conn.cursor()) as cur:
            cur.execute(self.sql)
            columns = [desc[0] for desc in cur.description]
            rows = cur.fetchall()
        self.log.info("%s\n%s", self.title, format_table(columns, rows))
        return [dict(zip(columns, row, strict=True)) for row in rows]


class DryRunOperator(EndsItsSessionsWhenKilled, BaseSQLOperator):
    """Runs migration steps in order in ONE transaction on one connection, then a report query that
    reads what they did, then rolls everything back: the target schema, its sequences included, is
    left exactly as it was. (The steps' SQL skips what a rollback cannot undo, such as setval.)"""

    template_fields: Sequence[str] = ("before_sql", "steps", "report_sql", *BaseSQLOperator.template_fields)
    template_ext: Sequence[str] = (".sql",)

    def __init__(self, *, before_sql: str, steps: Sequence[str], report_sql: str, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.before_sql = before_sql
        self.step_files = list(steps)
        self.steps = list(steps)
        self.report_sql = report_sql
        self.title = title

    def execute(self, context: Any) -> list[dict[str, Any]]:
        with refusals_are_final(), closing(self.sessions(context).open()) as conn:
            try:
                with closing(conn.cursor()) as cur:
                    cur.execute(self.before_sql)
                    for name, sql in zip(self.step_files, self.steps, strict=True):
                        started = time.monotonic()
                        cur.execute(sql)
                        self.log.info("dry run: %s done in %.1fs (not committed)", name, time.monotonic() - started)
                    cur.execute(self.report_sql)
                    columns = [desc[0] for desc in cur.description]
                    rows = cur.fetchall()
            finally:
                conn.rollback()
        self.log.info("dry run rolled back: nothing was written\n%s\n%s", self.title, format_table(columns, rows))
        return [dict(zip(columns, row, strict=True)) for row in rows]


def dry_run_of(step_files: Sequence[str], before_sql: str, report_sql: str) -> DryRunOperator:
    """The dry run of the migration steps that run these files of sql/, in this order."""
    return DryRunOperator(
        task_id="dry_run",
        before_sql=before_sql,
        steps=step_files,
        report_sql=report_sql,
        title="Dry run: what a run would do, per legacy table (nothing was written)",
    )


def refuse_unknown_params(conf: Mapping[str, Any] | None, known: Collection[str] = tuple(MIGRATION_PARAMS)) -> None:
    """Refuse (for good) a run whose conf holds a key that is not a param of the DAG: Airflow keeps such a
    key as an extra param and runs on, so a typo (`windw_start`) would run with the default instead."""
    unknown = sorted(set(conf or {}) - set(known))
    if unknown:
        named = ", ".join(
            key + "".join(f" (did you mean {match}?)" for match in difflib.get_close_matches(key, known, n=1))
            for key in unknown
        )
        raise AirflowFailException(
            f"unknown params in the run's conf: {named}; known params: {', '.join(sorted(known))}"
        )


def choose_mode(*, dry_run: BaseOperator, rollback: BaseOperator, migrate: BaseOperator) -> Any:
    """Branch on the params: the dry run alone, the rollback alone, or the migration and its checks.
    First, it refuses a conf naming a param the DAG does not have, before any other task runs."""

    @task.branch(task_id="choose_mode")
    def choose(params: dict[str, Any] | None = None, dag_run: Any = None) -> str:
        refuse_unknown_params(getattr(dag_run, "conf", None))
        params = params or {}
        if params.get("dry_run") and params.get("rollback"):
            raise AirflowFailException("dry_run and rollback exclude each other: choose one")
        if params.get("dry_run"):
            return dry_run.task_id
        return rollback.task_id if params.get("rollback") else migrate.task_id

    return choose()
