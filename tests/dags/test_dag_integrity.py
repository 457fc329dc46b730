"""The DAG parses, follows the contract (ids, params, connection) and runs its steps in the guide's order."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pendulum
import pytest
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from tests.helpers import MIGRATION_STEPS, load_dag, sql_path
from voice_agent_migration.alerts import alert_on_failure
from voice_agent_migration.catalog import CATALOG
from voice_agent_migration.operators import STEP_RETRIES, MigrationCheckOperator


@pytest.fixture(scope="module")
def dag():
    return load_dag()


def test_dag_contract(dag):
    assert dag.dag_id == "voice_agent_tenant_migration"
    assert {"migration", "voice_agent"} <= set(dag.tags)
    assert dag.doc_md and "check_conservation" in dag.doc_md
    assert dag.params["source_schema"] == "voice_agent"
    assert dag.params["target_schema"] == "public"
    assert dag.params["system_tenant_id"] == "00000000-0000-0000-0000-000000000000"
    sql_tasks = [task for task in dag.tasks if task.task_id != "choose_mode"]  # the branch is plain Python
    assert {task.conn_id for task in sql_tasks} == {"voice_agent_db"}


def test_steps_are_the_numbered_files_in_order_and_migrate_the_catalog_in_its_order(dag):
    steps = [t for t in dag.tasks if isinstance(t, SQLExecuteQueryOperator) and t.task_id != "rollback_migration"]
    numbered = sorted(
        (str(path.relative_to(sql_path())) for path in sql_path().glob("*/[0-9][0-9]_*.sql")),
        key=lambda sql_file: sql_file.split("/")[1],
    )
    assert MIGRATION_STEPS == numbered  # every numbered file is a step, in its number's order
    # DagBag has already loaded each templated .sql file into the task.
    assert [t.sql for t in steps] == [sql_path(step).read_text() for step in MIGRATION_STEPS]
    for upstream, downstream in itertools.pairwise(steps):
        assert downstream.task_id in upstream.downstream_task_ids
    # The guide's order: the tenants, then the catalog's tables in the order it declares them.
    migrating = [step for step in MIGRATION_STEPS if step.startswith("migrate/")]
    assert migrating[0] == "migrate/02_migrate_tenants.sql"
    assert [step for step in migrating if step in {t.step for t in CATALOG}] == [t.step for t in CATALOG]


def test_sql_is_found_relative_to_the_repository(dag):
    assert dag.template_searchpath == [str(sql_path())]
    assert sql_path().parent == Path(dag.fileloc).resolve().parent.parent


def test_steps_retry_and_checks_do_not(dag):
    checks = [t for t in dag.tasks if isinstance(t, MigrationCheckOperator)]
    assert {t.task_id for t in checks} == {path.stem for path in sql_path("check").glob("*.sql")}
    for check in checks:
        assert check.retries == 0  # and a failed check raises CheckFailed, final (see test_operators.py)
        # Only a teardown may follow a check, so that a failed check fails the run.
        assert all(dag.get_task(t).is_teardown for t in check.downstream_task_ids), check.task_id
    for step in (t for t in dag.tasks if isinstance(t, SQLExecuteQueryOperator)):
        assert step.retries >= 1
        assert step.autocommit is (step.task_id == "vacuum_voice_calls"), "one transaction per step"


def test_every_task_gets_the_dags_default_args(dag):
    """The connection, the alert and the retries are set once, in the DAG's default_args, and reach
    every kind of task: SQL steps, checks, reports, the dry run, the branch and the teardown."""
    assert {type(t).__name__ for t in dag.tasks} >= {
        "MigrationStepOperator",
        "ChunkedSQLOperator",
        "MigrationCheckOperator",
        "SQLReportOperator",
        "DryRunOperator",
        "_BranchPythonDecoratedOperator",
        "RunReportOperator",
    }
    for task in dag.tasks:
        assert task.on_failure_callback == [alert_on_failure], task.task_id
        retries = {"retries": 0} if isinstance(task, MigrationCheckOperator) else STEP_RETRIES
        assert {name: getattr(task, name) for name in retries} == retries, task.task_id
    assert dag.get_task("choose_mode").op_kwargs == {}  # no default_arg is passed to the branch's function


def test_the_dry_run_runs_the_data_steps_files(dag):
    files = dag.get_task("dry_run").step_files
    assert files == [step for step in MIGRATION_STEPS if step in files]  # the DAG's own steps, in its order
    assert {step for step in MIGRATION_STEPS if step.startswith(("setup/", "migrate/"))} <= set(files)


@pytest.mark.parametrize(
    "conf",
    [
        {"source_schema": "voice_agent; DROP TABLE voice_agent.users_voiceagent"},
        {"target_schema": 'public"."x'},
        {"target_schema": "Public"},
        {"system_tenant_id": "not-a-uuid"},
        {"system_tenant_id": "00000000-0000-0000-0000-000000000000' OR '1'='1"},
    ],
)
def test_params_refuse_values_that_are_not_identifiers_or_uuids(dag, conf):
    from airflow.sdk.definitions.param import ParamValidationError

    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match="Invalid input for param"):
        params.update(conf)  # a ParamsDict validates each value as it is set


def test_params_accept_valid_values(dag):
    params = copy.deepcopy(dag.params)
    params["source_schema"] = "legacy_copy"
    params["system_tenant_id"] = "6f1c1f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
    assert params.validate()["source_schema"] == "legacy_copy"


def test_scheduled_runs_get_real_daily_intervals_in_utc(dag):
    """Airflow 3 turns a plain "@daily" into zero-length intervals; this timetable must not."""
    from airflow.timetables.base import TimeRestriction

    first = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert first.data_interval.start == pendulum.datetime(2025, 1, 1, tz="UTC")
    assert first.data_interval.end == pendulum.datetime(2025, 1, 2, tz="UTC")
    assert dag.timetable.periodic
    assert dag.max_active_runs > 1  # concurrent runs are safe by design (advisory locks)


def test_every_param_explains_itself_in_the_trigger_form(dag):
    for name in dag.params:
        param = dag.params.get_param(name)
        schema = param.schema
        assert schema.get("title"), name
        assert param.description or schema.get("description_md"), name
        assert {"pattern", "minimum", "enum"} & schema.keys() or schema.get("type") == "boolean", name
