"""Each run's account per legacy table and tenant: what it inserted, updated, left unchanged and
rejected, counted by the upserts themselves, balancing against the rows in scope."""

from __future__ import annotations

import psycopg

from devtools.airflow_env import render_sql
from tests.helpers import MIGRATION_STEPS

ORG_A = "5abb0a93-f59f-48fc-9c5a-2b549b4f8367"


def run(db, run_id: str, **params) -> None:
    """Every migration step of one run, as its tasks would render them (one transaction each)."""
    for step in MIGRATION_STEPS:
        with psycopg.connect(db.uri, autocommit="vacuum" in step) as conn:
            conn.execute(render_sql(step, params, run_id=run_id))


def account(db, run_id: str) -> dict[str, tuple[int, int, int, int, int]]:
    """{source_table: (in_scope, inserted, updated, unchanged, rejected)} summed over tenants."""
    return {
        row[0]: tuple(int(v) for v in row[1:])
        for row in db.rows(
            "SELECT source_table, sum(in_scope), sum(inserted), sum(updated), sum(unchanged), sum(rejected)"
            " FROM migration_run_tables WHERE run_id = %s GROUP BY source_table",
            (run_id,),
        )
    }


def test_a_first_run_inserts_a_re_run_leaves_unchanged_and_an_edit_is_one_update(demo_db):
    run(demo_db, "first")
    first = account(demo_db, "first")
    assert first["call_logs_voiceagent"] == (742, 729, 0, 0, 13)
    assert first["leads_voiceagent"] == (63, 61, 0, 0, 2)  # merged leads count once per legacy lead
    assert first["voices_voiceagent"] == (30, 30, 0, 0, 0)

    run(demo_db, "second")
    second = account(demo_db, "second")
    assert {table: counts[1:3] for table, counts in second.items()} == dict.fromkeys(first, (0, 0))

    demo_db.execute(
        """
        UPDATE voice_agent.call_logs_voiceagent SET call_recording_url = 'https://example.test/r.mp3'
        WHERE id = (SELECT id FROM public.voice_calls WHERE tenant_id = %s ORDER BY id LIMIT 1)
    """,
        (ORG_A,),
    )
    run(demo_db, "third", call_partitions=2)
    third = account(demo_db, "third")
    assert third["call_logs_voiceagent"] == (742, 0, 1, 728, 13)
    assert demo_db.rows(
        "SELECT tenant_id::text, updated FROM migration_run_tables"
        " WHERE run_id = 'third' AND source_table = 'call_logs_voiceagent' AND updated > 0"
    ) == [(ORG_A, 1)]
    assert demo_db.check("check_run_balanced")[0] is True  # (renders as run manual__outside_airflow)


def test_every_run_records_itself(demo_db):
    window = {"window_start": "2025-01-02T00:00:00+00:00", "window_end": "2025-01-03T00:00:00+00:00"}
    run(demo_db, "backfill__2025-01-02", **window)
    ((run_type, start, params, outcome),) = demo_db.rows(
        "SELECT run_type, window_start, params, outcome FROM migration_runs WHERE run_id = 'backfill__2025-01-02'"
    )
    assert (run_type, outcome) == ("manual", "running")  # closed by the DAG's report_run task
    assert start.isoformat() == "2025-01-02T00:00:00+00:00"
    assert params["window_end"] == window["window_end"] and params["target_schema"] == "public"
    in_window = demo_db.value(
        "SELECT count(*) FROM voice_agent.call_logs_voiceagent"
        " WHERE started_at >= '2025-01-02 00:00+00' AND started_at < '2025-01-03 00:00+00'"
    )
    assert account(demo_db, "backfill__2025-01-02")["call_logs_voiceagent"][0] == in_window
