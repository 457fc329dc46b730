"""`make demo`: a throwaway PostgreSQL, the demo legacy database, one real `airflow dags test`,
then the reconciliation, the findings and the per-tenant account as the DAG's report tasks show them."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import psycopg

from devtools.airflow_env import DAG_ID, airflow, airflow_env, render_sql
from devtools.legacy_db import build_demo_database
from devtools.postgres import airflow_connection, create_database, server_uri
from voice_agent_migration.operators import format_table


def print_report(uri: str, sql_file: str, title: str, run_id: str) -> None:
    with psycopg.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(render_sql(sql_file, run_id=run_id))
        columns = [d.name for d in cur.description]
        print(f"\n{title}\n{format_table(columns, cur.fetchall())}")


def main() -> int:
    with server_uri() as admin_uri, tempfile.TemporaryDirectory(prefix="airflow-home-") as home:
        uri = create_database(admin_uri, prefix="voice_agent_demo")
        build_demo_database(uri)
        print(f"Demo legacy database ready ({uri}).")
        env = airflow_env(Path(home), airflow_connection(uri))
        airflow(env, "db", "migrate")
        started = time.monotonic()
        run = airflow(env, "dags", "test", DAG_ID, check=False)
        elapsed = time.monotonic() - started
        if run.returncode != 0:
            print(run.stdout[-20000:], run.stderr[-20000:], sep="\n")
            print(f"airflow dags test {DAG_ID} FAILED (exit {run.returncode})")
            return run.returncode
        print(f"airflow dags test {DAG_ID}: success in {elapsed:.1f}s")
        with psycopg.connect(uri) as conn:  # the run just made (the only one)
            (run_id,) = conn.execute("SELECT DISTINCT run_id FROM public.migration_reconciliation").fetchone()
        print_report(uri, "report/reconciliation.sql", f"Reconciliation per legacy table ({run_id})", run_id)
        print_report(uri, "report/findings.sql", "Findings for the cutover (not failures)", run_id)
        print_report(uri, "report/run_detail.sql", "Run account per legacy table and tenant (report_run)", run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
