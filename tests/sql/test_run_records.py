"""Each run's account per legacy table and tenant: what it inserted, updated, left unchanged and
rejected, counted by the upserts themselves, balancing against the rows in scope."""

from __future__ import annotations

import psycopg
import pytest

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


# --- Findings: summed per group by record_findings, call by call in the view ---------------------

GROUP = "kind, tenant_id, referenced_tenant_id, covered_by_grant"


def share_agents_and_leads(db) -> None:
    """Most calls use an agent and a lead of any organization: the messy legacy database."""
    db.execute(
        "UPDATE voice_agent.call_logs_voiceagent SET agent = 1 + abs(hashtext(id::text)) % 19,"
        " target = 1 + abs(hashtext(id::text || 'lead')) % 58 WHERE abs(hashtext(id::text)) % 10 < 7"
    )


def summary(db) -> dict[tuple, tuple[int, list[str]]]:
    return {
        tuple(row[:4]): (row[4], row[5])
        for row in db.rows(f"SELECT {GROUP}, calls, example_call_ids FROM migration_call_findings_summary")
    }


def assert_summary_sums_the_view(db) -> dict[tuple, tuple[int, list[str]]]:
    stored = summary(db)
    per_call = {
        tuple(row[:4]): row[4]
        for row in db.rows(f"SELECT {GROUP}, count(*) FROM migration_call_findings GROUP BY {GROUP}")
    }
    assert {group: calls for group, (calls, _) in stored.items()} == per_call
    # The examples: the smallest id of each of 8 slices of the group's calls (by the id's last digit).
    smallest_per_slice = {
        tuple(row[:4]): row[4]
        for row in db.rows(
            f"SELECT {GROUP}, array_agg(first_id ORDER BY first_id) FROM ("
            f" SELECT {GROUP}, min(source_id) AS first_id FROM migration_call_findings"
            f" GROUP BY {GROUP}, ascii(right(source_id, 1)) % 8) AS slices GROUP BY {GROUP}"
        )
    }
    assert {group: examples for group, (_, examples) in stored.items()} == smallest_per_slice
    for (kind, tenant_id, referenced_tenant_id, covered_by_grant), (calls, examples) in stored.items():
        assert 1 <= len(examples) <= min(calls, 8) and len(set(examples)) == len(examples)
        of_group = db.value(
            "SELECT count(*) FROM migration_call_findings WHERE source_id = ANY(%s) AND kind = %s"
            " AND tenant_id IS NOT DISTINCT FROM %s AND referenced_tenant_id IS NOT DISTINCT FROM %s"
            " AND covered_by_grant = %s",
            (examples, kind, tenant_id, referenced_tenant_id, covered_by_grant),
        )
        assert of_group == len(examples), (kind, examples)  # real calls of that group
    assert db.value("SELECT count(*) FROM migration_findings WHERE source_table = 'call_logs_voiceagent'") == 0
    return stored


def cross_tenant_calls(db, run_id: str) -> dict:
    """The run's account of cross-tenant calls per tenant (those with none left out)."""
    return dict(
        db.rows(
            "SELECT tenant_id, cross_tenant_findings FROM migration_run_tables WHERE run_id = %s"
            " AND source_table = 'call_logs_voiceagent' AND cross_tenant_findings > 0",
            (run_id,),
        )
    )


@pytest.mark.parametrize("messy", [False, True], ids=["demo", "shared_agents_and_leads"])
def test_the_findings_summary_sums_the_per_call_view_and_a_re_run_doubles_nothing(demo_db, messy):
    if messy:
        share_agents_and_leads(demo_db)
    run(demo_db, "first")
    first = assert_summary_sums_the_view(demo_db)
    kinds = {kind for kind, *_ in first}
    assert {"agent_in_other_tenant", "agent_not_migrated", "lead_not_migrated"} <= kinds
    if messy:
        assert "lead_in_other_tenant" in kinds
        assert sum(calls for (kind, *_), (calls, _) in first.items() if kind.endswith("_in_other_tenant")) > 700
    # The account counts each cross-tenant call once, per the call's tenant.
    assert cross_tenant_calls(demo_db, "first") == dict(
        demo_db.rows(
            "SELECT tenant_id, count(DISTINCT source_id) FROM migration_call_findings"
            " WHERE kind LIKE '%\\_in\\_other\\_tenant' GROUP BY tenant_id"
        )
    )

    run(demo_db, "second")
    assert assert_summary_sums_the_view(demo_db) == first
    assert cross_tenant_calls(demo_db, "second") == cross_tenant_calls(demo_db, "first")

    # The report: one row per kind, the calls summed.
    report = {row[0]: row[1] for row in demo_db.rows(render_sql("report/findings.sql", {}, run_id="second"))}
    assert report == {kind: sum(calls for (k, *_), (calls, _) in first.items() if k == kind) for kind in kinds}


def test_a_rollback_empties_the_findings_summary_and_the_view(demo_db):
    run(demo_db, "first")
    assert demo_db.value("SELECT count(*) FROM migration_call_findings_summary") > 0
    with psycopg.connect(demo_db.uri) as conn:  # the run ends, then the rollback may go through
        conn.execute("SELECT set_config('voice_agent_migration.outcome', 'success', false)")
        conn.execute("SELECT set_config('voice_agent_migration.failed_tasks', '', false)")
        conn.execute(render_sql("report/run_outcome.sql", {}, run_id="first"))
        conn.execute(render_sql("rollback/rollback_migration.sql", {"rollback": True}, run_id="rollback"))
    assert demo_db.value("SELECT count(*) FROM migration_call_findings_summary") == 0
    assert demo_db.value("SELECT count(*) FROM migration_call_findings") == 0
