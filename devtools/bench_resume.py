"""`make bench-resume ROWS=N [SHAPE=clean|shared] [PG_URI=...] [KILL_AT=0.7] [CHUNK_SIZE=50000]`: the call
step killed outright at KILL_AT of its chunks, then retried: the retry does only the chunks the killed
try had not committed.

The steps before the call step run as the DAG runs them; the call step runs as its task does
(ChunkedStep, the DAG's default chunk size and sessions) in a child process, killed with SIGKILL once
KILL_AT of the run's chunks are committed (a worker lost: no `on_kill`, nothing cleaned up). The
retry runs the same step for the same run in this process. Prints the chunks each try committed, the
calls and seconds of each, and the longest chunk transaction.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import psycopg

from devtools.airflow_env import render_sql
from devtools.bench import bench_server
from devtools.legacy_db import SHAPES, build_demo_database
from devtools.postgres import create_database, drop_database

CALL_STEP = "migrate/07_migrate_voice_calls.sql"
RUN_ID = "manual__bench_resume"


def call_step(uri: str, chunk_size: int) -> None:
    """The call step for RUN_ID, as its task runs it (the child process, or the retry)."""
    from voice_agent_migration.chunks import ChunkedStep
    from voice_agent_migration.params import MIGRATION_PARAMS
    from voice_agent_migration.sessions import Sessions

    sessions = int(MIGRATION_PARAMS["call_partitions"].value)
    sql = render_sql(CALL_STEP, {"call_chunk_size": chunk_size}, run_id=RUN_ID)
    ChunkedStep(Sessions(lambda: psycopg.connect(uri)), sql, "migrate_voice_calls", sessions).run()


def chunk_state(conn: psycopg.Connection) -> tuple[int, int, int, float]:
    """(chunks planned, committed, calls committed, longest committed transaction in seconds)."""
    return conn.execute(
        "SELECT count(*), count(committed_at), coalesce(sum(calls), 0)::bigint, coalesce(max(seconds), 0)::float"
        " FROM public.migration_run_chunks WHERE run_id = %s",
        (RUN_ID,),
    ).fetchone()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=int(os.environ.get("ROWS") or 1_000_000))
    parser.add_argument("--kill-at", type=float, default=float(os.environ.get("KILL_AT") or 0.7))
    parser.add_argument("--shape", choices=SHAPES, default=os.environ.get("SHAPE") or "clean")
    parser.add_argument("--pg-uri", default=os.environ.get("PG_URI", ""))
    parser.add_argument("--chunk-size", type=int, default=int(os.environ.get("CHUNK_SIZE") or 50_000))
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the killed try: the database URI
    args = parser.parse_args()
    if args.child:
        call_step(args.child, args.chunk_size)
        return 0

    with bench_server(args.pg_uri) as (admin_uri, _):
        uri = create_database(admin_uri, prefix="voice_agent_resume")
        try:
            started = time.monotonic()
            build_demo_database(uri, calls=args.rows, shape=args.shape)
            from dags.voice_agent_tenant_migration import DATA_STEPS  # the DAG's own order

            # Each step on its own session: a step's lock is the session's.
            for step in DATA_STEPS[: DATA_STEPS.index(CALL_STEP)]:
                with psycopg.connect(uri) as conn:
                    conn.execute(render_sql(step, run_id=RUN_ID))
            with psycopg.connect(uri, autocommit=True) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
                seeded = time.monotonic() - started
                print(f"seeded {args.rows:,} call logs ({args.shape}) in {seeded:.0f}s (PostgreSQL {version})")

                started = time.monotonic()
                child = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "devtools.bench_resume",
                        "--chunk-size",
                        str(args.chunk_size),
                        "--child",
                        uri,
                    ]
                )
                while child.poll() is None:
                    planned, committed, _, _ = chunk_state(conn)
                    if planned and committed >= args.kill_at * planned:
                        child.send_signal(signal.SIGKILL)
                        break
                    time.sleep(0.1)
                child.wait()
                killed_after = time.monotonic() - started
                planned, first_chunks, first_calls, _ = chunk_state(conn)
                if child.returncode != -signal.SIGKILL:
                    print(f"the call step ended (status {child.returncode}) before {args.kill_at:.0%} of its chunks")
                    return 1
                print(
                    f"try 1: killed (SIGKILL) after {killed_after:.1f}s with {first_chunks}/{planned} chunks"
                    f" ({first_calls:,} calls) committed"
                )

                started = time.monotonic()
                call_step(uri, args.chunk_size)
                retried = time.monotonic() - started
                planned, chunks, calls, longest = chunk_state(conn)
                print(
                    f"try 2: {chunks - first_chunks} chunks ({calls - first_calls:,} calls) in {retried:.1f}s;"
                    f" all {chunks}/{planned} chunks, {calls:,} calls committed"
                )
                print(
                    f"the retry did {(calls - first_calls) / calls:.0%} of the calls; at try 1's pace the whole step"
                    f" takes {killed_after * calls / max(first_calls, 1):.1f}s; longest transaction {longest:.1f}s"
                )
                return 0 if chunks == planned and calls == args.rows else 1
        finally:
            drop_database(admin_uri, uri)


if __name__ == "__main__":
    sys.exit(main())
