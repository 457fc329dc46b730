"""`make bench ROWS=N`: the whole DAG against the guide's own call-log INSERT run by hand, on the
same database, plus a re-run over unchanged data. Appends the figures to docs/benchmarks-history.md.

The reference is the guide's call-log query with its fatal `::uuid` cast dropped (lead_id NULL) and
its metadata fields included, into a fresh table shaped like voice_calls (but `status text`: the
guide's query aborts on the first over-long status). It does none of the DAG's extra work
(quarantine, lineage, findings, checks).

Airflow's own cost is measured too: the same DAG over a legacy database with no call logs (same small
tables, same 26 tasks), so that the ratio can be read with and without the part no SQL change can touch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from devtools.airflow_env import DAG_ID, REPO, airflow, airflow_env
from devtools.legacy_db import build_demo_database, create_application_tables, create_legacy_schema, seed_demo
from devtools.postgres import airflow_connection, create_database, drop_database, server_uri

REFERENCE_SQL = """
CREATE TABLE bench_reference.voice_calls (
    id uuid PRIMARY KEY, tenant_id uuid, voice_id varchar(255), agent_id integer,
    from_number varchar(50), to_number varchar(50), status text, added_context text,
    lead_id uuid, initiated_by varchar(255), recording_url text, started_at timestamp,
    ended_at timestamp, created_at timestamp, updated_at timestamp, metadata jsonb
);
INSERT INTO bench_reference.voice_calls (
  id, tenant_id, voice_id, agent_id, from_number, to_number, status, added_context,
  lead_id, initiated_by, recording_url, started_at, ended_at, created_at, updated_at, metadata
)
SELECT
  cl.id, u.organization_id, cl.voice::varchar, cl.agent, n.phone_number, l.lead_number, cl.status,
  cl.added_context, NULL, u.user_id, cl.call_recording_url, cl.started_at, cl.ended_at,
  cl.started_at, NOW(),
  jsonb_build_object(
    'vapi_call_id', cl.vapi_call_id, 'vapi_data', cl.vapi_data, 'call_type', cl.call_type,
    'cost', cl.cost, 'cost_breakdown', cl.cost_breakdown, 'call_duration', cl.call_duration,
    'job_id', cl.job_id, 'room_name', cl.room_name, 'batch_id', cl.batch_id,
    'transcriptions', cl.transcriptions)
FROM voice_agent.call_logs_voiceagent cl
LEFT JOIN voice_agent.users_voiceagent u ON cl.initiated_by = u.id
LEFT JOIN voice_agent.numbers_voiceagent n ON cl.from_number_id = n.id
LEFT JOIN voice_agent.leads_voiceagent l ON cl.target = l.id
WHERE u.organization_id IS NOT NULL;
"""


def timed_dag_run(env: dict[str, str]) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    run = airflow(env, "dags", "test", DAG_ID, check=False)
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(f"DAG run failed:\n{run.stdout[-10000:]}\n{run.stderr[-10000:]}")
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        rows = meta.execute(
            "SELECT task_id, (julianday(end_date) - julianday(start_date)) * 86400 FROM task_instance"
            " WHERE run_id = (SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 1)"
        ).fetchall()
    return elapsed, dict(rows)


def reference_run(uri: str) -> float:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_reference CASCADE")
        conn.execute("CREATE SCHEMA bench_reference")
        started = time.monotonic()
        conn.execute(REFERENCE_SQL)
        elapsed = time.monotonic() - started
        conn.execute("DROP SCHEMA bench_reference CASCADE")
    return elapsed


def airflow_fixed_cost(admin_uri: str, env: dict[str, str]) -> float:
    """The whole DAG, timed the same way, over a legacy database without call logs: what Airflow costs
    (start-up, parsing, run creation, in-process API, task starts) whatever the data."""
    uri = create_database(admin_uri, prefix="voice_agent_bench_empty")
    try:
        build_demo_database(uri, calls=0)
        elapsed, _ = timed_dag_run({**env, "AIRFLOW_CONN_VOICE_AGENT_DB": airflow_connection(uri)})
    finally:
        drop_database(admin_uri, uri)
    return elapsed


def revision() -> str:
    """The commit measured, marked when the work tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=False, cwd=REPO, capture_output=True, text=True).stdout.strip()

    head, dirty = (
        git("rev-parse", "--short", "HEAD"),
        git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks-history.md"),
    )
    return (head or "unknown") + (" (with uncommitted changes)" if dirty else "")


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=int(os.environ.get("ROWS", "100000")))
    args = parser.parse_args()

    with server_uri() as admin_uri, tempfile.TemporaryDirectory(prefix="airflow-bench-") as home:
        uri = create_database(admin_uri, prefix="voice_agent_bench")
        started = time.monotonic()
        with psycopg.connect(uri, autocommit=True) as conn:
            create_legacy_schema(conn)
            seed_demo(conn, calls=args.rows)
            create_application_tables(conn)
            server_version = conn.execute("SHOW server_version").fetchone()[0]
        print(f"seeded {args.rows:,} call logs in {time.monotonic() - started:.1f}s (PostgreSQL {server_version})")

        env = airflow_env(Path(home), airflow_connection(uri))
        airflow(env, "db", "migrate")
        reference = reference_run(uri)
        first, tasks = timed_dag_run(env)
        peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        second, second_tasks = timed_dag_run(env)
        drop_database(admin_uri, uri)
        fixed = airflow_fixed_cost(admin_uri, env)

    in_tasks = sum(tasks.values())
    lines = [
        f"### {dt.date.today().isoformat()}: {args.rows:,} call logs",
        "",
        f"Commit {revision()}. Machine: {machine()}; PostgreSQL {server_version}; `make bench ROWS={args.rows}`.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| reference: the guide's call INSERT by hand | {reference:.1f} s |",
        f"| full DAG run (`airflow dags test`, checks included) | {first:.1f} s |",
        f"| ratio DAG / reference | {first / reference:.2f}x |",
        f"| call logs per second (full run) | {args.rows / first:,.0f} |",
        f"| re-run over unchanged data | {second:.1f} s ({second / first:.2f} of the first run) |",
        f"| peak RSS of the Airflow process | {peak_rss_mib:.0f} MiB |",
        f"| Airflow's fixed cost (same DAG, no call logs) | {fixed:.1f} s ({fixed / reference:.2f}x the reference) |",
        f"| ratio without the fixed cost: (DAG - fixed) / reference | {(first - fixed) / reference:.2f}x |",
        f"| re-run without the fixed cost | {(second - fixed) / (first - fixed):.2f} of the first run |",
        "",
        "Share of the first run's task time (the rest of the wall time is Airflow start-up):",
        "",
        "| task | seconds | share | re-run seconds |",
        "| --- | --- | --- | --- |",
        *(
            f"| {task} | {secs:.2f} | {secs / in_tasks:.0%} | {second_tasks.get(task, 0):.2f} |"
            for task, secs in sorted(tasks.items(), key=lambda kv: -kv[1])
        ),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    out = REPO / "docs" / "benchmarks-history.md"
    if not out.exists():
        out.write_text("# Benchmarks\n\n## Run log (appended by `make bench`)\n\n")
    with out.open("a") as fh:
        fh.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
