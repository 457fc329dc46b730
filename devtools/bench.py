"""`make bench ROWS=N [SHAPE=clean|shared] [PG_URI=...]`: the whole DAG against the guide's own call-log
INSERT run by hand, on the same database, plus a re-run over unchanged data. Appends the figures to
docs/benchmarks-history.md.

SHAPE is the legacy data's shape (devtools/legacy_db.py SHAPES): `clean`, the demo's, most calls within
their organization; `shared`, about three calls in four using an agent or a lead of another
organization. PG_URI names the server (an admin URI: the user creates and drops the bench's
databases there); without it, the embedded PostgreSQL (or VOICE_AGENT_PG_URI, as for the tests).

The reference is the guide's call-log query with its fatal `::uuid` cast dropped (lead_id NULL) and
its metadata fields included, into a fresh table shaped like voice_calls (but `status text`: the
guide's query aborts on the first over-long status). It does none of the DAG's extra work
(quarantine, lineage, findings, checks).

Airflow's own cost is measured too: the same DAG over a legacy database with no call logs (same small
tables, same 26 tasks), so that the ratio can be read with and without the part no SQL change can touch.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from devtools.airflow_env import DAG_ID, REPO, airflow, airflow_env
from devtools.legacy_db import SHAPES, build_demo_database, create_application_tables, create_legacy_schema, seed_demo
from devtools.postgres import ENV_URI, airflow_connection, create_database, drop_database, server_uri

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


@dataclass
class DagRun:
    seconds: float  # wall time of the `airflow dags test` process
    tasks: dict[str, float]  # seconds per task, from Airflow's metadata
    run_id: str
    peak_rss_mib: float  # the process's peak RSS (and that of any process it waited for)


class BenchError(RuntimeError):
    pass


def timed_dag_run(env: dict[str, str]) -> DagRun:
    """One `airflow dags test` process, timed, with its own peak RSS (wait4's rusage of that child:
    unlike RUSAGE_CHILDREN, not the maximum over every earlier child)."""
    cli = Path(sys.executable).with_name("airflow")
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        process = subprocess.Popen([str(cli), "dags", "test", DAG_ID], env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            out.seek(0)
            raise BenchError(f"DAG run failed:\n{out.read()[-20000:].decode(errors='replace')}")
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        (run_id,) = meta.execute("SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 1").fetchone()
        rows = meta.execute(
            "SELECT task_id, (julianday(end_date) - julianday(start_date)) * 86400 FROM task_instance WHERE run_id = ?",
            (run_id,),
        ).fetchall()
    return DagRun(elapsed, dict(rows), run_id, usage.ru_maxrss / 1024)


@dataclass
class ChunkStats:
    chunks: int
    committed: int
    calls: int
    longest: float  # seconds of the longest chunk transaction
    median: float
    largest: int  # calls of the largest chunk


def chunk_stats(uri: str, run_id: str, target_schema: str = "public") -> ChunkStats:
    """The call step's chunks of one run, as its checkpoints recorded them."""
    with psycopg.connect(uri) as conn:
        row = conn.execute(
            f"""SELECT count(*), count(committed_at), coalesce(sum(calls), 0), coalesce(max(seconds), 0),
                coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), 0), coalesce(max(calls), 0)
            FROM "{target_schema}".migration_run_chunks WHERE run_id = %s""",
            (run_id,),
        ).fetchone()
    return ChunkStats(row[0], row[1], int(row[2]), float(row[3]), float(row[4]), int(row[5]))


def reference_run(uri: str) -> float:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_reference CASCADE")
        conn.execute("CREATE SCHEMA bench_reference")
        started = time.monotonic()
        conn.execute(REFERENCE_SQL)
        elapsed = time.monotonic() - started
        conn.execute("DROP SCHEMA bench_reference CASCADE")
    return elapsed


def airflow_fixed_cost(admin_uri: str, env: dict[str, str], shape: str) -> DagRun:
    """The whole DAG, timed the same way, over a legacy database without call logs: what Airflow costs
    (start-up, parsing, run creation, in-process API, task starts) whatever the data."""
    uri = create_database(admin_uri, prefix="voice_agent_bench_empty")
    try:
        build_demo_database(uri, calls=0, shape=shape)
        return timed_dag_run({**env, "AIRFLOW_CONN_VOICE_AGENT_DB": airflow_connection(uri)})
    finally:
        drop_database(admin_uri, uri)


@contextlib.contextmanager
def bench_server(pg_uri: str) -> Generator[tuple[str, bool], None, None]:
    """(admin URI, embedded?): the server PG_URI names, else the tests' server (embedded unless
    VOICE_AGENT_PG_URI names one)."""
    if pg_uri:
        yield pg_uri, False
        return
    with server_uri() as admin_uri:
        yield admin_uri, not os.environ.get(ENV_URI)


def without_password(uri: str) -> str:
    """user@host:port/dbname: the server, as the bench prints and records it."""
    params = conninfo_to_dict(uri)
    return "{}@{}:{}/{}".format(
        params.get("user", ""), params.get("host", "localhost"), params.get("port", 5432), params.get("dbname", "")
    )


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


NET_SECONDS_MIN = 1.0


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    return [f"| {' | '.join(cells)} |" for cells in (header, ["---"] * len(header), *rows)]


def report(
    *,
    rows: int,
    shape: str,
    server: str,
    command: str,
    seeded: float,
    reference: float,
    first: DagRun,
    second: DagRun,
    fixed: DagRun,
    chunks: ChunkStats,
) -> str:
    """The run's section of docs/benchmarks-history.md: one summary row, the measures, the tasks."""
    net = first.seconds - fixed.seconds
    # Below a second of the DAG's own work (small ROWS), the re-run share net of the fixed cost is
    # the noise of three Airflow start-ups divided by almost nothing.
    rerun_net = f"{(second.seconds - fixed.seconds) / net:.2f}" if net >= NET_SECONDS_MIN else "n/a"
    rss = f"{first.peak_rss_mib:.0f} / {second.peak_rss_mib:.0f} / {fixed.peak_rss_mib:.0f} MiB"
    summary = table(
        [
            "shape",
            "server",
            "call logs",
            "reference",
            "full DAG run",
            "ratio",
            "re-run",
            "Airflow's fixed cost",
            "ratio without it",
            "re-run without it",
            "peak RSS (first / re-run / fixed)",
            "chunks (longest / median)",
        ],
        [
            [
                shape,
                server,
                f"{rows:,}",
                f"{reference:.1f} s",
                f"{first.seconds:.1f} s",
                f"{first.seconds / reference:.2f}x",
                f"{second.seconds:.1f} s ({second.seconds / first.seconds:.2f})",
                f"{fixed.seconds:.1f} s",
                f"{net / reference:.2f}x",
                rerun_net,
                rss,
                f"{chunks.chunks} ({chunks.longest:.1f} s / {chunks.median:.1f} s)",
            ]
        ],
    )
    measures = table(
        ["measure", "value"],
        [
            ["data shape", shape],
            ["server", server],
            ["seeding the legacy database", f"{seeded:.1f} s"],
            ["reference: the guide's call INSERT by hand", f"{reference:.1f} s"],
            ["full DAG run (`airflow dags test`, checks included)", f"{first.seconds:.1f} s"],
            ["ratio DAG / reference", f"{first.seconds / reference:.2f}x"],
            ["call logs per second (full run)", f"{rows / first.seconds:,.0f}"],
            [
                "re-run over unchanged data",
                f"{second.seconds:.1f} s ({second.seconds / first.seconds:.2f} of the first run)",
            ],
            ["peak RSS of the Airflow process: first run / re-run / fixed-cost run", rss],
            [
                "Airflow's fixed cost (same DAG, no call logs)",
                f"{fixed.seconds:.1f} s ({fixed.seconds / reference:.2f}x the reference)",
            ],
            ["ratio without the fixed cost: (DAG - fixed) / reference", f"{net / reference:.2f}x"],
            [
                "re-run without the fixed cost",
                f"{rerun_net} of the first run" if net >= NET_SECONDS_MIN else "n/a (DAG - fixed < 1 s)",
            ],
            [
                "call step, first run: chunks (committed)",
                f"{chunks.chunks} ({chunks.committed}), {chunks.calls:,} calls, at most {chunks.largest:,} per chunk",
            ],
            ["call step, first run: longest chunk transaction", f"{chunks.longest:.2f} s"],
            ["call step, first run: median chunk transaction", f"{chunks.median:.2f} s"],
        ],
    )
    in_tasks = sum(first.tasks.values()) or 1.0
    tasks = table(
        ["task", "seconds", "share", "re-run seconds"],
        [
            [task, f"{secs:.2f}", f"{secs / in_tasks:.0%}", f"{second.tasks.get(task, 0):.2f}"]
            for task, secs in sorted(first.tasks.items(), key=lambda kv: -kv[1])
        ],
    )
    return "\n".join(
        [
            f"### {dt.date.today().isoformat()}: {rows:,} call logs, {shape} shape, {server}",
            "",
            f"Commit {revision()}. Machine: {machine()}; {server}; `{command}`.",
            "",
            *summary,
            "",
            *measures,
            "",
            "Share of the first run's task time (the rest of the wall time is Airflow start-up):",
            "",
            *tasks,
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=int(os.environ.get("ROWS", "100000")))
    parser.add_argument("--shape", choices=SHAPES, default=os.environ.get("SHAPE") or "clean")
    parser.add_argument(
        "--pg-uri",
        default=os.environ.get("PG_URI", ""),
        help="admin URI of the server to bench on (default: $PG_URI; empty: the embedded PostgreSQL)",
    )
    args = parser.parse_args()
    command = f"make bench ROWS={args.rows} SHAPE={args.shape}"

    with (
        bench_server(args.pg_uri) as (admin_uri, embedded),
        tempfile.TemporaryDirectory(prefix="airflow-bench-") as home,
    ):
        if not embedded:
            command += f" PG_URI=postgresql://{without_password(admin_uri)}"
        uri = create_database(admin_uri, prefix="voice_agent_bench")
        try:
            started = time.monotonic()
            with psycopg.connect(uri, autocommit=True) as conn:
                create_legacy_schema(conn)
                seed_demo(conn, calls=args.rows, shape=args.shape)
                create_application_tables(conn)
                version = conn.execute("SHOW server_version").fetchone()[0]
            seeded = time.monotonic() - started
            server = (
                f"embedded PostgreSQL {version}"
                if embedded
                else f"PostgreSQL {version} at {without_password(admin_uri)}"
            )
            print(f"seeded {args.rows:,} call logs ({args.shape} shape) in {seeded:.1f}s ({server})", flush=True)

            env = airflow_env(Path(home), airflow_connection(uri))
            env.pop("PG_URI", None)  # the connection carries it; nothing else needs the password
            airflow(env, "db", "migrate")
            reference = reference_run(uri)
            print(f"reference {reference:.1f}s", flush=True)
            first = timed_dag_run(env)
            chunks = chunk_stats(uri, first.run_id)
            print(f"first run {first.seconds:.1f}s", flush=True)
            second = timed_dag_run(env)
            print(f"re-run {second.seconds:.1f}s", flush=True)
        except BenchError as error:
            sys.exit(str(error))
        finally:
            drop_database(admin_uri, uri)
        try:
            fixed = airflow_fixed_cost(admin_uri, env, args.shape)
        except BenchError as error:
            sys.exit(str(error))
        print(f"fixed cost {fixed.seconds:.1f}s", flush=True)

    text = report(
        rows=args.rows,
        shape=args.shape,
        server=server,
        command=command,
        seeded=seeded,
        reference=reference,
        first=first,
        second=second,
        fixed=fixed,
        chunks=chunks,
    )
    print(text)
    out = REPO / "docs" / "benchmarks-history.md"
    if not out.exists():
        out.write_text("# Benchmarks\n\n## Run log (appended by `make bench`)\n\n")
    with out.open("a") as fh:
        fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
