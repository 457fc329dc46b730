"""Test helpers: run SQL steps or the whole DAG against a database, snapshot the target schema."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from devtools.airflow_env import DAG_ID, REPO, SQL_DIR, render_sql
from devtools.postgres import airflow_connection
from voice_agent_migration.chunks import ChunkedStep
from voice_agent_migration.operators import NO_JIT, step_task_id
from voice_agent_migration.sessions import Sessions

# Tables where every run appends its own record: a re-run adds to them by design.
RUN_RECORD_TABLES = {
    "migration_reconciliation",
    "migration_runs",
    "migration_run_writes",
    "migration_run_tables",
    "migration_run_scope",
    "migration_run_lineage",
    "migration_run_chunks",
}


def sql_file_of(task_id: str) -> str:
    """The file of sql/ a task runs: `migrate_voices` -> `migrate/03_migrate_voices.sql`."""
    (found,) = [
        str(path.relative_to(SQL_DIR)) for path in SQL_DIR.glob("*/*.sql") if step_task_id(path.name) == task_id
    ]
    return found


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(DAG_ID)


def dag_definition():
    """The DAG object as its file defines it (imported, not through a DagBag: no metadata database)."""
    spec = importlib.util.spec_from_file_location("voice_agent_dag_under_test", REPO / "dags" / f"{DAG_ID}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def read_dag_plan() -> tuple[list[str], list[str]]:
    """(the DAG's steps in run order as files of sql/, its checks in declaration order), read from
    the DAG itself: the chain of single steps from `check_legacy_schema` to the checks."""
    dag = dag_definition()
    steps, task = [], dag.get_task("check_legacy_schema")
    while True:
        steps.append(sql_file_of(task.task_id))
        following = [dag.get_task(t) for t in task.downstream_task_ids]
        if len(following) != 1:
            break
        task = following[0]
    checks = [t.task_id for t in dag.tasks if (SQL_DIR / "check" / f"{t.task_id}.sql").exists()]
    return steps, checks


# The DAG's steps and checks, as the DAG declares them.
MIGRATION_STEPS, CHECKS = read_dag_plan()


@dataclass
class LegacyDatabase:
    uri: str
    # The Airflow run the SQL is rendered for (its records are keyed by it): set a new one per run.
    run_id: str = "manual__outside_airflow"

    def execute(self, sql: str, params: Any = None) -> None:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(sql, params)

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.uri) as conn:
            return conn.execute(sql, params).fetchall()

    def value(self, sql: str, params: Any = None) -> Any:
        return self.rows(sql, params)[0][0]

    def run_sql_file(self, relative_path: str, **params: str) -> list[tuple]:
        """Render a file of sql/ as the DAG does and run it in one transaction, like its task
        (maintenance such as VACUUM runs in autocommit, as its task does; without JIT, as the check
        operator runs a check: the steps switch it off themselves)."""
        with psycopg.connect(self.uri, autocommit="vacuum" in relative_path) as conn:
            conn.execute(NO_JIT)
            cur = conn.execute(render_sql(relative_path, params, run_id=self.run_id))
            return cur.fetchall() if cur.description else []

    def run_chunked_step(self, relative_path: str, sessions: int, **params: str) -> Any:
        """Run a chunked step as its task does: the run's chunks, `sessions` at once (chunks.py)."""
        sql = render_sql(relative_path, params, run_id=self.run_id)
        return ChunkedStep(Sessions(lambda: psycopg.connect(self.uri)), sql, "test", sessions).run()

    def migrate(self, upto: str | None = None, partitions: int = 1, **params: str) -> None:
        """Run the migration steps in order, through the one whose file name contains `upto`; with
        `partitions` > 1, the call step runs in chunks as its task does, that many sessions at once."""
        for step in MIGRATION_STEPS:
            if "migrate_voice_calls" in step and partitions > 1:
                self.run_chunked_step(step, partitions, **params)
            else:
                self.run_sql_file(step, **params)
            if upto and upto in step:
                return

    def check(self, name: str, **params: str) -> tuple[bool, str]:
        """Run a check as the DAG does; conservation and balance read the run's records: record them first."""
        if name in ("check_conservation", "check_run_balanced"):
            self.run_sql_file("record/12_record_run_account.sql", **params)
        (row,) = self.run_sql_file(f"check/{name}.sql", **params)
        return row

    def snapshot(
        self, schema: str = "public", *, run_records: bool = False, ignore_columns: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """Content digest of every table and sequence value in `schema` (the runs' own records
        only if `run_records`; without `ignore_columns`, such as those filled by now())."""
        row = (
            "x::text"
            if not ignore_columns
            else "(to_jsonb(x) - " + " - ".join(f"'{c}'" for c in ignore_columns) + ")::text"
        )
        with psycopg.connect(self.uri) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
                ).fetchall()
            ]
            digest = {
                t: conn.execute(
                    f"SELECT count(*) || ':' || coalesce(md5(string_agg({row}, '|' ORDER BY {row})), '') "
                    f'FROM "{schema}"."{t}" AS x'
                ).fetchone()[0]
                for t in tables
                if run_records or t not in RUN_RECORD_TABLES
            }
            for seq, value in conn.execute(
                "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s", (schema,)
            ).fetchall():
                digest[f"sequence {seq}"] = str(value)
        return digest


class RunResult(dict):  # ruff: ignore[subclass-builtin] (a plain dict of states, plus two helpers)
    """{task_id: (state, try_number)} of a finished run, which can also read the run's XComs."""

    def __init__(self, run_id: str, states: dict[str, tuple[str, int]]) -> None:
        super().__init__(states)
        self.run_id = run_id

    def xcom(self, task_id: str) -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(run_id=self.run_id, key="return_value", dag_ids=DAG_ID, task_ids=task_id)
            ).first()
            assert row is not None, f"{task_id} returned nothing"
            return XComModel.deserialize_value(row)


def run_dag(db: LegacyDatabase, conf: dict[str, Any] | None = None, *, step_retries: bool = False) -> RunResult:
    """Run the real DAG in-process (`dag.test`) against `db`; return {task_id: (state, try_number)}.

    Unless `step_retries`, retries are switched off so that a failing step fails at once instead of
    waiting out its backoff.
    """
    os.environ["AIRFLOW_CONN_VOICE_AGENT_DB"] = airflow_connection(db.uri)
    dag = load_dag()
    if not step_retries:
        for task in dag.tasks:
            task.retries = 0
    dag_run = dag.test(run_conf=conf)
    return RunResult(
        dag_run.run_id, {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    )


def sql_path(*parts: str) -> Path:
    return SQL_DIR.joinpath(*parts)
