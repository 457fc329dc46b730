"""The run's last task: closes its record in `migration_runs` and prints its account for sign-off."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import Any

from airflow.providers.common.sql.operators.sql import BaseSQLOperator
from airflow.sdk.exceptions import AirflowSkipException

from voice_agent_migration.alerts import send_summary
from voice_agent_migration.operators import format_table

FAILED_STATES = {"failed", "upstream_failed"}


class RunReportOperator(BaseSQLOperator):
    """Records the run's outcome (from its task states) and returns its per-tenant account.

    Made a teardown by `run_report`: it runs whatever happened upstream and does not decide the run's
    state, so a failed check still fails the run. A dry run writes nothing, so it records nothing.
    """

    template_fields: Sequence[str] = ("outcome_sql", "detail_sql", *BaseSQLOperator.template_fields)
    template_ext: Sequence[str] = (".sql",)

    def __init__(self, *, outcome_sql: str, detail_sql: str, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcome_sql = outcome_sql
        self.detail_sql = detail_sql
        self.title = title

    def execute(self, context: Any) -> list[dict[str, Any]]:
        params = context["params"]
        if params.get("dry_run"):
            raise AirflowSkipException("dry run: nothing was written, so nothing is recorded")
        if params.get("rollback"):
            raise AirflowSkipException("rollback: the rollback step records itself")
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        failed = sorted(task for task, state in states.items() if state in FAILED_STATES and task != self.task_id)
        outcome = "failed" if failed else "success"
        with closing(self.get_db_hook().get_conn()) as conn, closing(conn.cursor()) as cur:
            cur.execute("SELECT to_regclass(format('%%I.migration_runs', %s::text))", (params["target_schema"],))
            if cur.fetchone()[0] is None:
                self.log.warning("run %s: %s before its tables existed; nothing to record", ti.run_id, outcome)
                return []
            cur.execute(
                "SELECT set_config('voice_agent_migration.outcome', %s, false),"
                " set_config('voice_agent_migration.failed_tasks', %s, false)",
                (outcome, ",".join(failed)),
            )
            cur.execute(self.outcome_sql)
            conn.commit()
            cur.execute(self.detail_sql)
            columns = [desc[0] for desc in cur.description]
            rows = cur.fetchall()
        failed_note = f" (failed: {', '.join(failed)})" if failed else ""
        table = format_table(columns, rows)
        self.log.info("%s: run %s %s%s\n%s", self.title, ti.run_id, outcome, failed_note, table)
        if outcome == "success":  # failures have already alerted, task by task
            send_summary(context, f"[{ti.dag_id}] run {ti.run_id} succeeded", f"{self.title}\n{table}")
        return [dict(zip(columns, row, strict=True)) for row in rows]


def run_report(outcome_sql: str, detail_sql: str) -> RunReportOperator:
    """The final task, as a teardown (see RunReportOperator)."""
    return RunReportOperator(
        task_id="report_run",
        outcome_sql=outcome_sql,
        detail_sql=detail_sql,
        title="Run account per legacy table and tenant",
    ).as_teardown()
