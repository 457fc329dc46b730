"""Windowed runs: the call step and the reconciliation take exactly the calls whose started_at lies in
[window_start, window_end), compared as instants whatever the database's time zone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from devtools.airflow_env import render_sql

DAY_1 = {"window_start": "2025-01-02T00:00:00+00:00", "window_end": "2025-01-03T00:00:00+00:00"}
DAY_2 = {"window_start": "2025-01-03T00:00:00+00:00", "window_end": "2025-01-04T00:00:00+00:00"}


def legacy_calls(db, where: str = "TRUE") -> set[str]:
    return {r[0] for r in db.rows(f"SELECT id::text FROM voice_agent.call_logs_voiceagent WHERE {where}")}


def settled_calls(db) -> set[str]:
    """Calls landed or quarantined."""
    return {
        r[0]
        for r in db.rows(
            "SELECT id::text FROM public.voice_calls"
            " UNION ALL SELECT source_id FROM public.migration_rejects WHERE source_table = 'call_logs_voiceagent'"
        )
    }


def recorded_calls(db, run_id: str) -> tuple[int, int, int, int, int]:
    return db.rows(
        "SELECT legacy_rows, landed, rejected, missing, doubled FROM public.migration_reconciliation"
        " WHERE run_id = %s AND source_table = 'call_logs_voiceagent'",
        (run_id,),
    )[0]


@pytest.fixture
def kathmandu_demo(demo_db):
    """The demo database in UTC+05:45, with calls planted on both edges of DAY_1."""
    dbname = demo_db.value("SELECT current_database()")
    demo_db.execute(f"ALTER DATABASE \"{dbname}\" SET timezone = 'Asia/Kathmandu'")
    demo_db.execute("""
        INSERT INTO voice_agent.call_logs_voiceagent (id, initiated_by, status, started_at)
        SELECT md5('edge' || n)::uuid,
               (SELECT min(id) FROM voice_agent.users_voiceagent WHERE organization_id IS NOT NULL),
               'completed', ts
        FROM (VALUES (1, timestamptz '2025-01-02 00:00:00+00'), (2, timestamptz '2025-01-02 23:59:59.999999+00'),
                     (3, timestamptz '2025-01-03 00:00:00+00'), (4, timestamptz '2025-01-01 23:59:59.999999+00'))
             AS edge (n, ts)
    """)
    demo_db.migrate(upto="migrate_leads")
    return demo_db


def run_call_step(db, partitions: int = 1, **params) -> None:
    step = "migrate/07_migrate_voice_calls.sql"
    if partitions > 1:
        db.run_chunked_step(step, partitions, **params)
    else:
        db.run_sql_file(step, **params)


def test_a_window_takes_exactly_its_calls_in_utc_whatever_the_time_zone(kathmandu_demo):
    db = kathmandu_demo
    run_call_step(db, **DAY_1)

    expected = legacy_calls(db, "started_at >= '2025-01-02 00:00:00+00' AND started_at < '2025-01-03 00:00:00+00'")
    assert settled_calls(db) == expected
    edges = {r[0] for r in db.rows("SELECT md5('edge' || n)::uuid::text FROM generate_series(1, 4) AS n")}
    assert sorted(e in expected for e in edges) == [False, False, True, True]  # start in, end out
    assert len(expected) > 2


def test_adjacent_windows_cover_the_range_once_and_a_full_run_adds_only_the_rest(kathmandu_demo):
    db = kathmandu_demo
    run_call_step(db, partitions=2, **DAY_1)
    run_call_step(db, partitions=3, **DAY_2)
    in_range = legacy_calls(db, "started_at >= '2025-01-02 00:00:00+00' AND started_at < '2025-01-04 00:00:00+00'")
    assert settled_calls(db) == in_range
    assert db.value("SELECT count(*) FROM public.voice_calls") + db.value(
        "SELECT count(*) FROM public.migration_rejects WHERE source_table = 'call_logs_voiceagent'"
    ) == len(in_range)  # nothing doubled

    landed_by_windows = db.rows("SELECT * FROM public.voice_calls ORDER BY id")
    run_call_step(db, partitions=2)  # a manual full run: every call, NULL started_at included
    assert settled_calls(db) == legacy_calls(db)
    assert db.value("SELECT count(*) FROM voice_agent.call_logs_voiceagent WHERE started_at IS NULL") > 0
    window_ids = {r[0] for r in landed_by_windows}
    assert [r for r in db.rows("SELECT * FROM public.voice_calls ORDER BY id") if r[0] in window_ids] == (
        landed_by_windows
    )  # the full run rewrote none of them


def test_the_reconciliation_of_a_windowed_run_counts_the_calls_of_its_window(kathmandu_demo):
    db = kathmandu_demo
    db.migrate(**DAY_1)
    db.run_sql_file("record/12_record_run_account.sql", **DAY_1)
    in_window = legacy_calls(db, "started_at >= '2025-01-02 00:00:00+00' AND started_at < '2025-01-03 00:00:00+00'")
    legacy, landed, rejected, missing, doubled = recorded_calls(db, "manual__outside_airflow")
    assert (legacy, landed + rejected, missing, doubled) == (len(in_window), len(in_window), 0, 0)
    passed, detail = db.check("check_conservation", **DAY_1)
    assert passed, detail
    # The same database judged as a full run: the calls outside the window are missing.
    passed, detail = db.check("check_conservation")
    assert not passed
    assert "call_logs_voiceagent" in detail


def test_the_content_check_of_a_windowed_run_compares_the_calls_of_its_window(kathmandu_demo):
    """The target keeps UTC wall-clock timestamps: the check must place them in the window as UTC
    instants, not in the session's time zone (calls sit on both edges of the window)."""
    db = kathmandu_demo
    db.migrate(**DAY_1)
    passed, detail = db.check("check_content_matches_legacy", **DAY_1)
    assert passed, detail
    # A call of the window (on its first instant) edited in the target fails it.
    edge = db.value("SELECT md5('edge' || 1)::uuid::text")
    db.execute("UPDATE public.voice_calls SET status = 'edited' WHERE id = %s", (edge,))
    passed, detail = db.check("check_content_matches_legacy", **DAY_1)
    assert not passed and edge in detail, detail


def test_runs_keep_their_own_reconciliation(kathmandu_demo):
    db = kathmandu_demo
    db.migrate(**DAY_1)
    for run_id, params in (("backfill__day1", DAY_1), ("manual__full", {})):
        with psycopg.connect(db.uri) as conn:
            conn.execute(render_sql("record/12_record_run_account.sql", params, run_id=run_id))
    day_1 = recorded_calls(db, "backfill__day1")
    full = recorded_calls(db, "manual__full")
    assert day_1[0] < full[0]
    assert day_1[3] == 0 and full[3] > 0  # the full run sees the calls no window has migrated yet
    assert (
        db.value(
            "SELECT count(*) FROM public.migration_reconciliation"
            " WHERE run_id = 'backfill__day1' AND window_start IS NOT NULL"
        )
        == 6
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_start": "2025-01-02T00:00:00+00:00"}, "give both or neither"),
        ({"window_start": "2025-01-03T00:00:00Z", "window_end": "2025-01-02T00:00:00Z"}, "must be before"),
        ({"window_start": "2025-01-02T00:00:00Z", "window_end": "2025-01-02T00:00:00+00:00"}, "must be before"),
        ({"window_start": "2025-01-02T00:00:00", "window_end": "2025-01-03T00:00:00Z"}, "explicit UTC offset"),
        ({"window_start": "yesterday", "window_end": "2025-01-03T00:00:00Z"}, "not an ISO-8601"),
    ],
)
def test_a_malformed_window_fails_rendering_before_any_sql_runs(params, message):
    with pytest.raises(AirflowFailException, match=message):  # final: a retry would render the same
        render_sql("setup/00_check_legacy_schema.sql", params)


def test_concurrent_windowed_and_full_call_steps_with_different_partition_counts_settle_every_call_once(
    kathmandu_demo,
):
    """Three runs' call steps at once, with 2, 3 and 1 sessions: neither deadlock nor double."""
    db = kathmandu_demo
    runs = [(2, {}), (3, DAY_1), (1, DAY_2)]
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [
            pool.submit(run_call_step, replace(db, run_id=f"manual__concurrent_{n}"), partitions, **params)
            for n, (partitions, params) in enumerate(runs)
        ]
        for future in futures:
            future.result(timeout=300)  # a deadlock would surface as PostgreSQL's deadlock error
    assert settled_calls(db) == legacy_calls(db)
    db.run_sql_file("migrate/08_migrate_resource_permissions.sql")
    passed, detail = db.check("check_conservation")
    assert passed, detail
