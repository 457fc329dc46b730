"""Run the DAG the way a user does (`airflow dags test`) against a given database, in a private
AIRFLOW_HOME, and render the repository's SQL outside Airflow for reports and focused tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2

from voice_agent_migration.templating import SQL_FILTERS, SQL_MACROS

REPO = Path(__file__).resolve().parent.parent
SQL_DIR = REPO / "sql"
DAG_ID = "voice_agent_tenant_migration"


def airflow_env(airflow_home: Path, connection_json: str) -> dict[str, str]:
    """Environment for an isolated Airflow: its own home and metadata DB, this repo's DAGs."""
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW_CONN_VOICE_AGENT_DB=connection_json,
    )
    return env


def airflow(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `airflow` CLI of this virtualenv."""
    cli = Path(sys.executable).with_name("airflow")
    return subprocess.run([str(cli), *args], env=env, check=check, capture_output=True, text=True)


def render_sql(
    relative_path: str, params: dict[str, Any] | None = None, run_id: str = "manual__outside_airflow"
) -> str:
    """Render a file of sql/ with the DAG's filters and macros, as Airflow renders it for a task of a
    manual run `run_id` (no data interval: the window, if any, comes from the params)."""
    # Imported here: this module sets up Airflow's environment, so it must not import Airflow itself.
    from voice_agent_migration.params import MIGRATION_PARAMS

    defaults = {name: param.value for name, param in MIGRATION_PARAMS.items()}  # as a run without conf
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined)
    env.filters.update(SQL_FILTERS)
    env.globals.update(SQL_MACROS)
    return env.get_template(relative_path).render(params={**defaults, **(params or {})}, run_id=run_id)
