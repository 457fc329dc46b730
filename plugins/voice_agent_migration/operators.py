"""Operators of the migration DAG: SQL steps, SQL checks and readable reports, all from `sql/`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta
from typing import Any, ClassVar

from airflow.providers.common.sql.hooks.handlers import fetch_all_handler
from airflow.providers.common.sql.operators.sql import BaseSQLOperator, SQLCheckOperator, SQLExecuteQueryOperator
from airflow.sdk import BaseOperator, task
from airflow.sdk.exceptions import AirflowFailException

from voice_agent_migration.alerts import alert_on_failure

CONN_ID = "voice_agent_db"

# Migration steps are idempotent, so a transient fault (a dropped connection, a lock timeout) is
# retried with backoff; checks never are.
STEP_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
}


def step_task_id(sql_file: str) -> str:
    """`migrate/07_migrate_voice_calls.sql` -> `migrate_voice_calls`."""
    return sql_file.rsplit("/", 1)[-1].removesuffix(".sql").lstrip("0123456789_")


def migration_step(sql_file: str, *, autocommit: bool = False, **kwargs: Any) -> SQLExecuteQueryOperator:
    """One idempotent step: the whole file runs in one transaction (unless it is maintenance such as
    VACUUM, which cannot) and may be retried."""
    step = SQLExecuteQueryOperator(
        task_id=step_task_id(sql_file),
        conn_id=CONN_ID,
        sql=sql_file,
        autocommit=autocommit,
        do_xcom_push=False,
        on_failure_callback=kwargs.pop("on_failure_callback", alert_on_failure),
        **STEP_RETRIES,
        **kwargs,
    )
    step.sql_file = sql_file  # `sql` becomes the file's text once the DAG is parsed
    return step


class PartitionedSQLOperator(SQLExecuteQueryOperator):
    """Runs one SQL file as `partitions` concurrent transactions, one connection each.

    Each connection sees its share through the settings `voice_agent_migration.partition` and
    `voice_agent_migration.partitions` (the SQL filters on them, see sql/_common.sql). Rows never
    pass through Python: the threads only wait on the database. A failed partition fails the task;
    the others may have committed, which is safe because the step is idempotent.
    """

    template_fields: Sequence[str] = (*SQLExecuteQueryOperator.template_fields, "partitions")

    def __init__(self, *, partitions: int | str = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.partitions = partitions

    def execute(self, context: Any) -> None:
        count = int(self.partitions)
        hook = self.get_db_hook()

        def run(index: int) -> None:
            started = time.monotonic()
            with closing(hook.get_conn()) as conn:
                with closing(conn.cursor()) as cur:
                    cur.execute(
                        "SELECT set_config('voice_agent_migration.partitions', %s, false),"
                        " set_config('voice_agent_migration.partition', %s, false)",
                        (str(count), str(index)),
                    )
                    cur.execute(self.sql)
                conn.commit()
            self.log.info("partition %d/%d committed in %.1fs", index + 1, count, time.monotonic() - started)

        with ThreadPoolExecutor(max_workers=count, thread_name_prefix=self.task_id) as pool:
            for future in [pool.submit(run, index) for index in range(count)]:
                future.result()


def partitioned_migration_step(sql_file: str, partitions: int | str, **kwargs: Any) -> PartitionedSQLOperator:
    """A migration step whose SQL runs in `partitions` concurrent, idempotent transactions."""
    step = PartitionedSQLOperator(
        task_id=step_task_id(sql_file),
        conn_id=CONN_ID,
        sql=sql_file,
        partitions=partitions,
        on_failure_callback=kwargs.pop("on_failure_callback", alert_on_failure),
        **STEP_RETRIES,
        **kwargs,
    )
    step.sql_file = sql_file
    return step


def migration_check(sql_file: str, work_mem: str | None = None, **kwargs: Any) -> SQLCheckOperator:
    """A check returning one row (passed, detail); a failure is final and its log shows the detail.

    `work_mem` (e.g. "256MB") is set for the check's session: a check that hashes whole tables then
    keeps its hash tables in memory instead of batching them to disk. A check is one statement, so it
    cannot `SET LOCAL` itself.
    """
    if work_mem is not None:
        kwargs["hook_params"] = {**kwargs.get("hook_params", {}), "options": f"-c work_mem={work_mem}"}
    return SQLCheckOperator(
        task_id=step_task_id(sql_file),
        conn_id=CONN_ID,
        sql=sql_file,
        retry_on_failure=False,
        retries=0,
        on_failure_callback=kwargs.pop("on_failure_callback", alert_on_failure),
        **kwargs,
    )


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


class SQLReportOperator(BaseSQLOperator):
    """Runs a read-only query, logs it as a table and returns its rows (XCom) as dicts."""

    template_fields: Sequence[str] = ("sql", *BaseSQLOperator.template_fields)
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}

    def __init__(self, *, sql: str, title: str, **kwargs: Any) -> None:
        kwargs.setdefault("on_failure_callback", alert_on_failure)
        super().__init__(conn_id=kwargs.pop("conn_id", CONN_ID), **kwargs)
        self.sql = sql
        self.title = title

    def execute(self, context: Any) -> list[dict[str, Any]]:
        hook = self.get_db_hook()
        rows = hook.run(self.sql, handler=fetch_all_handler) or []
        columns = [desc[0] for desc in hook.last_description]
        self.log.info("%s\n%s", self.title, format_table(columns, rows))
        return [dict(zip(columns, row, strict=True)) for row in rows]


class DryRunOperator(BaseSQLOperator):
    """Runs migration steps in order in ONE transaction on one connection, then a report query that
    reads what they did, then rolls everything back: the target schema, its sequences included, is
    left exactly as it was. (The steps' SQL skips what a rollback cannot undo, such as setval.)"""

    template_fields: Sequence[str] = ("before_sql", "steps", "report_sql", *BaseSQLOperator.template_fields)
    template_ext: Sequence[str] = (".sql",)

    def __init__(self, *, before_sql: str, steps: Sequence[str], report_sql: str, title: str, **kwargs: Any) -> None:
        kwargs.setdefault("on_failure_callback", alert_on_failure)
        super().__init__(conn_id=kwargs.pop("conn_id", CONN_ID), **kwargs)
        self.before_sql = before_sql
        self.step_files = list(steps)
        self.steps = list(steps)
        self.report_sql = report_sql
        self.title = title

    def execute(self, context: Any) -> list[dict[str, Any]]:
        with closing(self.get_db_hook().get_conn()) as conn:
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


def dry_run_of(steps: Sequence[BaseSQLOperator], before_sql: str, report_sql: str) -> DryRunOperator:
    """The dry run of these migration steps (built by `migration_step` and friends)."""
    return DryRunOperator(
        task_id="dry_run",
        before_sql=before_sql,
        steps=[step.sql_file for step in steps],
        report_sql=report_sql,
        title="Dry run: what a run would do, per legacy table (nothing was written)",
    )


def choose_mode(*, dry_run: BaseOperator, rollback: BaseOperator, migrate: BaseOperator) -> Any:
    """Branch on the params: the dry run alone, the rollback alone, or the migration and its checks."""

    @task.branch(task_id="choose_mode", on_failure_callback=alert_on_failure)
    def choose(params: dict[str, Any] | None = None) -> str:
        params = params or {}
        if params.get("dry_run") and params.get("rollback"):
            raise AirflowFailException("dry_run and rollback exclude each other: choose one")
        if params.get("dry_run"):
            return dry_run.task_id
        return rollback.task_id if params.get("rollback") else migrate.task_id

    return choose()
