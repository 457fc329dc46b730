"""The plain-text table the report tasks log and `make demo` prints."""

from __future__ import annotations

from devtools.postgres import airflow_connection
from voice_agent_migration.operators import CONN_ID, format_table, migration_check


def test_format_table_aligns_text_left_and_numbers_right():
    table = format_table(["table", "rows", "reasons"], [("voices", 30, ""), ("call_logs", 742, "owner_missing=3")])
    assert table.splitlines() == [
        "table      rows  reasons",
        "---------  ----  ---------------",
        "voices       30",
        "call_logs   742  owner_missing=3",
    ]


def test_format_table_with_no_rows_prints_the_header():
    assert format_table(["kind", "calls"], []).splitlines() == ["kind  calls", "----  -----"]


def test_a_check_can_give_its_session_more_work_mem(legacy_db, monkeypatch):
    """A check is one statement and cannot SET LOCAL: its work_mem goes with the connection."""
    monkeypatch.setenv("AIRFLOW_CONN_VOICE_AGENT_DB", airflow_connection(legacy_db.uri))
    roomy = migration_check("check/check_content_matches_legacy.sql", work_mem="256MB", conn_id=CONN_ID)
    plain = migration_check("check/check_conservation.sql", conn_id=CONN_ID)
    assert roomy.get_db_hook().get_first("SHOW work_mem") == ("256MB",)
    assert plain.get_db_hook().get_first("SHOW work_mem") != ("256MB",)
