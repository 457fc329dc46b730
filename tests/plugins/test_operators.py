"""The plain-text table the report tasks log and `make demo` prints, and the checks' own operator."""

from __future__ import annotations

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from devtools.postgres import airflow_connection
from voice_agent_migration.operators import (
    CONN_ID,
    CheckFailed,
    ChunkedSQLOperator,
    DryRunOperator,
    MigrationCheckOperator,
    MigrationRefused,
    MigrationStepOperator,
    format_table,
    migration_check,
    refuse_unknown_params,
)
from voice_agent_migration.params import MIGRATION_PARAMS


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


@pytest.fixture
def db_conn(legacy_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VOICE_AGENT_DB", airflow_connection(legacy_db.uri))
    return legacy_db


def test_a_check_can_give_its_session_more_work_mem(db_conn):
    """A check is one statement and cannot SET LOCAL: its work_mem goes with the connection."""
    roomy = migration_check("check/check_content_matches_legacy.sql", work_mem="256MB", conn_id=CONN_ID)
    plain = migration_check("check/check_conservation.sql", conn_id=CONN_ID)
    assert roomy.get_db_hook().get_first("SHOW work_mem") == ("256MB",)
    assert plain.get_db_hook().get_first("SHOW work_mem") != ("256MB",)
    # And the check's own query runs in that session.
    sql = "SELECT current_setting('work_mem') = '256MB', 'work_mem ' || current_setting('work_mem')"
    MigrationCheckOperator(task_id="check_work_mem", conn_id=CONN_ID, sql=sql, work_mem="256MB").execute({})


def check(sql: str) -> MigrationCheckOperator:
    return MigrationCheckOperator(task_id="check_x", conn_id=CONN_ID, sql=sql)


def logged(capfd) -> str:
    out = capfd.readouterr()
    return out.out + out.err


def test_a_passing_check_logs_its_finding_and_not_its_query(db_conn, capfd):
    capfd.readouterr()
    check("SELECT true, '6 legacy tables balance' -- the query's text").execute({})
    log = logged(capfd)
    assert "check_x passed: 6 legacy tables balance" in log
    assert "the query's text" not in log  # neither the operator nor the hook logs the SQL at INFO


def test_a_failed_check_raises_its_finding_and_is_final(db_conn, capfd):
    capfd.readouterr()
    with pytest.raises(CheckFailed) as failed:
        check("SELECT false, 'leads: 1 rows without a valid tenant e.g. 7d0c' -- the query's text").execute({})
    assert isinstance(failed.value, AirflowFailException)  # never retried
    assert failed.value.finding == str(failed.value) == "leads: 1 rows without a valid tenant e.g. 7d0c"
    log = logged(capfd)
    assert "check_x FAILED: leads: 1 rows without a valid tenant e.g. 7d0c" in log
    assert "the query's text" not in log


@pytest.mark.parametrize(
    ("sql", "finding"),
    [
        ("SELECT true, 'x' WHERE false", "the check returned no row"),
        ("SELECT NULL::boolean, 'voices: digest NULL'", "the check's verdict is NULL: voices: digest NULL"),
        ("SELECT false, NULL::text", "(no detail)"),
        ("SELECT true", "the check returned 1 columns instead of (passed, detail)"),
    ],
)
def test_a_check_without_a_clear_verdict_fails(db_conn, capfd, sql, finding):
    capfd.readouterr()
    with pytest.raises(CheckFailed) as failed:
        check(sql).execute({})
    assert failed.value.finding == finding
    assert f"check_x FAILED: {finding}" in logged(capfd)


def test_a_check_writes_nothing(db_conn):
    db_conn.execute("CREATE TABLE public.scratch (id int)")
    check("WITH w AS (INSERT INTO public.scratch VALUES (1) RETURNING id) SELECT true, 'x' FROM w").execute({})
    assert db_conn.value("SELECT count(*) FROM public.scratch") == 0


# A refusal (SQLSTATE class VA) and a transient error (any other), as the migration's SQL raises them.
REFUSING_SQL = """DO $$ BEGIN
    RAISE EXCEPTION 'legacy table voice_agent.leads_voiceagent does not exist'
        USING ERRCODE = 'VA000', DETAIL = 'what was found', HINT = 'what to do';
END $$"""
TRANSIENT_SQL = "DO $$ BEGIN RAISE EXCEPTION 'canceling statement due to lock timeout'; END $$"
REFUSAL = "legacy table voice_agent.leads_voiceagent does not exist\nDETAIL: what was found\nHINT: what to do"


def test_a_refusal_of_a_step_is_final_and_carries_the_database_message(db_conn):
    with pytest.raises(MigrationRefused) as refused:
        MigrationStepOperator(task_id="step", conn_id=CONN_ID, sql=REFUSING_SQL).execute({})
    assert isinstance(refused.value, AirflowFailException)  # never retried
    assert str(refused.value) == REFUSAL
    assert refused.value.sqlstate == "VA000" and refused.value.hint == "what to do"


def test_any_other_error_of_a_step_is_raised_as_it_is(db_conn):
    with pytest.raises(psycopg.Error) as raised:
        MigrationStepOperator(task_id="step", conn_id=CONN_ID, sql=TRANSIENT_SQL).execute({})
    assert not isinstance(raised.value, AirflowFailException)
    assert "lock timeout" in str(raised.value)


def chunked_sql(work: str) -> str:
    """A chunked step (chunks.py) of two chunks whose work is `work`."""
    return f"""SELECT 1;
-- the step's snapshot starts here
SELECT * FROM (VALUES
    (0, '00000000-0000-0000-0000-000000000000', '7fffffff-ffff-ffff-ffff-ffffffffffff', 2::bigint),
    (1, '80000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 2::bigint)
) AS plan (chunk_number, lower_id, upper_id, chunks);
-- each chunk's transaction starts here
SELECT '00000000-0000-0000-0000-000000000000'::uuid /* chunk lower */,
    'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid /* chunk upper */, 1 /* chunk count */;
DO $$ BEGIN IF 0 /* chunk number */ = 0 THEN
    PERFORM pg_sleep(0.5); RAISE EXCEPTION 'canceling statement due to lock timeout';
END IF; END $$;
{work}"""


def test_a_refusal_of_any_chunk_is_final(db_conn):
    """Chunk 0 fails with a transient error while chunk 1 refuses: the task's failure is the refusal."""
    with pytest.raises(MigrationRefused) as refused:
        ChunkedSQLOperator(task_id="step", conn_id=CONN_ID, sql=chunked_sql(REFUSING_SQL), concurrency=2).execute({})
    assert str(refused.value) == REFUSAL
    with pytest.raises(psycopg.Error):
        ChunkedSQLOperator(task_id="step", conn_id=CONN_ID, sql=chunked_sql("SELECT 1"), concurrency=2).execute({})


def test_a_refusal_in_the_dry_run_is_final(db_conn):
    dry_run = DryRunOperator(
        task_id="dry_run",
        conn_id=CONN_ID,
        before_sql="SELECT 1",
        steps=["SELECT 1", REFUSING_SQL],
        report_sql="SELECT 1",
        title="dry run",
    )
    with pytest.raises(MigrationRefused) as refused:
        dry_run.execute({})
    assert str(refused.value) == REFUSAL


def test_a_conf_naming_an_unknown_param_is_refused_naming_it_and_the_known_ones():
    with pytest.raises(AirflowFailException) as refused:
        refuse_unknown_params({"windw_start": "2025-01-02T00:00:00+00:00", "dry_run": True})
    message = str(refused.value)
    assert message.startswith("unknown params in the run's conf: windw_start (did you mean window_start?); ")
    assert message.endswith("known params: " + ", ".join(sorted(MIGRATION_PARAMS)))


@pytest.mark.parametrize("conf", [None, {}, dict.fromkeys(MIGRATION_PARAMS)])
def test_a_conf_of_known_params_only_passes(conf):
    refuse_unknown_params(conf)
