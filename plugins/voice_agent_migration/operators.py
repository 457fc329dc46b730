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
    return SQLExecuteQueryOperator(
        task_id=step_task_id(sql_file),
        conn_id=CONN_ID,
        sql=sql_file,
        autocommit=autocommit,
        do_xcom_push=False,
        **STEP_RETRIES,
        **kwargs,
    )


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
    return PartitionedSQLOperator(
        task_id=step_task_id(sql_file),
        conn_id=CONN_ID,
        sql=sql_file,
        partitions=partitions,
        **STEP_RETRIES,
        **kwargs,
    )


def migration_check(sql_file: str, **kwargs: Any) -> SQLCheckOperator:
    """A check returning one row (passed, detail); a failure is final and its log shows the detail."""
    return SQLCheckOperator(
        task_id=step_task_id(sql_file),
        conn_id=CONN_ID,
        sql=sql_file,
        retry_on_failure=False,
        retries=0,
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
        super().__init__(conn_id=kwargs.pop("conn_id", CONN_ID), **kwargs)
        self.sql = sql
        self.title = title

    def execute(self, context: Any) -> list[dict[str, Any]]:
        hook = self.get_db_hook()
        rows = hook.run(self.sql, handler=fetch_all_handler) or []
        columns = [desc[0] for desc in hook.last_description]
        self.log.info("%s\n%s", self.title, format_table(columns, rows))
        return [dict(zip(columns, row, strict=True)) for row in rows]
