"""The plain-text table the report tasks log and `make demo` prints."""

from __future__ import annotations

from voice_agent_migration.operators import format_table


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
