"""The preflight (sql/setup/00_check_legacy_schema.sql) refuses a legacy schema the mapping cannot read
right: a missing schema, table or column, or a column of another type than LEGACY_COLUMN_TYPES says.
Every refusal raises SQLSTATE VA000 (final, see operators.py), names each offending column in one
message, and writes nothing."""

from __future__ import annotations

import psycopg
import pytest

from voice_agent_migration.catalog import LEGACY_COLUMN_TYPES, legacy_columns

PREFLIGHT = "setup/00_check_legacy_schema.sql"
HINT = "check the source_schema param and the voice_agent_db connection"


def refusal(db, **params) -> psycopg.Error:
    """The error the preflight raises on `db`; fails the test if it passes."""
    with pytest.raises(psycopg.Error) as raised:
        db.run_sql_file(PREFLIGHT, **params)
    assert raised.value.sqlstate == "VA000", raised.value
    return raised.value


def public_relations(db) -> list[tuple]:
    return db.rows("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1")


def test_every_typed_column_is_one_the_mapping_reads_and_of_a_known_kind():
    read = {(table, column) for table, columns in legacy_columns().items() for column in columns}
    assert set(LEGACY_COLUMN_TYPES) <= read
    assert set(LEGACY_COLUMN_TYPES.values()) <= {"timestamptz", "uuid", "integer"}


def test_the_legacy_schema_of_the_project_passes(demo_db):
    assert demo_db.run_sql_file(PREFLIGHT) == []


def test_a_varchar_organization_id_is_refused_naming_the_column_and_the_expected_type(demo_db):
    demo_db.execute("ALTER TABLE voice_agent.users_voiceagent ALTER COLUMN organization_id TYPE varchar(36)")
    error = refusal(demo_db)
    assert error.diag.message_primary == (
        "legacy column voice_agent.users_voiceagent.organization_id is character varying, expected uuid"
    )


def test_a_naive_started_at_is_refused_before_anything_is_written(demo_db):
    demo_db.execute("ALTER TABLE voice_agent.call_logs_voiceagent ALTER COLUMN started_at TYPE timestamp")
    before = public_relations(demo_db)
    error = refusal(demo_db)
    assert error.diag.message_primary == (
        "legacy column voice_agent.call_logs_voiceagent.started_at is timestamp without time zone,"
        " expected timestamp with time zone"
    )
    assert "time zone's offset" in error.diag.message_detail
    assert public_relations(demo_db) == before


def test_every_offending_column_is_named_in_one_message(demo_db):
    demo_db.execute("""
        ALTER TABLE voice_agent.call_logs_voiceagent ALTER COLUMN started_at TYPE timestamp,
            ALTER COLUMN ended_at TYPE timestamp, ALTER COLUMN target TYPE text, DROP COLUMN cost_breakdown;
        ALTER TABLE voice_agent.agents_voiceagent ALTER COLUMN voice_id TYPE text;
        ALTER TABLE voice_agent.numbers_voiceagent ALTER COLUMN default_agent TYPE numeric;
    """)
    error = refusal(demo_db)
    naive = "timestamp without time zone, expected timestamp with time zone"
    integer = "expected an integer type (smallint, integer or bigint)"
    assert error.diag.message_primary.splitlines() == [
        "legacy column voice_agent.agents_voiceagent.voice_id is text, expected uuid",
        "legacy column voice_agent.call_logs_voiceagent.cost_breakdown does not exist",
        f"legacy column voice_agent.call_logs_voiceagent.ended_at is {naive}",
        f"legacy column voice_agent.call_logs_voiceagent.started_at is {naive}",
        f"legacy column voice_agent.call_logs_voiceagent.target is text, {integer}",
        f"legacy column voice_agent.numbers_voiceagent.default_agent is numeric, {integer}",
    ]


def test_any_integer_type_will_do_for_an_integer_key(demo_db):
    demo_db.execute("""
        ALTER TABLE voice_agent.call_logs_voiceagent ALTER COLUMN initiated_by TYPE bigint,
            ALTER COLUMN agent TYPE integer;
        ALTER TABLE voice_agent.leads_voiceagent ALTER COLUMN added_by TYPE smallint;
    """)
    assert demo_db.run_sql_file(PREFLIGHT) == []


def test_a_missing_column_is_named_with_the_hint(legacy_db):
    legacy_db.execute("ALTER TABLE voice_agent.call_logs_voiceagent DROP COLUMN cost_breakdown")
    error = refusal(legacy_db)
    assert error.diag.message_primary == "legacy column voice_agent.call_logs_voiceagent.cost_breakdown does not exist"
    assert error.diag.message_hint == HINT


def test_a_missing_table_is_named_once(legacy_db):
    legacy_db.execute("DROP TABLE voice_agent.leads_voiceagent")
    error = refusal(legacy_db)
    assert error.diag.message_primary == "legacy table voice_agent.leads_voiceagent does not exist"


def test_a_missing_schema_is_one_line(legacy_db):
    error = refusal(legacy_db, source_schema="voice_agent_typo")
    assert error.diag.message_primary == "legacy schema voice_agent_typo does not exist"
    assert error.diag.message_hint == HINT


def test_a_leads_table_not_keyed_by_uuid_is_refused(legacy_db):
    legacy_db.execute("CREATE TABLE public.leads (id bigint PRIMARY KEY)")
    error = refusal(legacy_db)
    assert error.diag.message_primary == (
        "target table cannot hold the mapping: public.leads.id is bigint, expected uuid"
    )
