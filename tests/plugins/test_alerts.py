"""The text of a failure alert, from the exceptions the real operators raise on a real database."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowFailException

from devtools.postgres import airflow_connection
from tests.dags.test_alerts import Receiver
from voice_agent_migration.alerts import (
    alert_on_failure,
    destinations,
    error_excerpt,
    failure_message,
    gets_failure_alerts,
    gets_summary,
    log_link,
    send_summary,
    tag_names,
)
from voice_agent_migration.operators import CheckFailed, MigrationCheckOperator

DAG_ID = "voice_agent_tenant_migration"
RUN_ID = "manual__2025-06-01T10:00:00+00:00"
RUN_ID_QUOTED = "manual__2025-06-01T10%3A00%3A00%2B00%3A00"
BASE_URL = "https://airflow.example.test/"
ORPHANS = (
    "voice_calls: 2 rows without a valid tenant e.g. 0a00-1 0a00-2; leads: 1 rows without a valid tenant e.g. 7d0c"
)
# As the check files do: a CTE, then one row (passed, detail).
CHECK_SQL = f"WITH found AS (SELECT 1)\nSELECT false AS no_orphans, '{ORPHANS}' AS detail FROM found"


@pytest.fixture
def db_conn(legacy_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VOICE_AGENT_DB", airflow_connection(legacy_db.uri))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    return legacy_db


def raised_by(operator) -> BaseException:
    with pytest.raises(Exception) as caught:
        operator.execute(context={})
    return caught.value


@pytest.fixture
def check_error(db_conn) -> BaseException:
    """What a check raises when its row says it failed."""
    return raised_by(MigrationCheckOperator(task_id="check_no_orphan_tenants", conn_id="voice_agent_db", sql=CHECK_SQL))


@pytest.fixture
def step_error(db_conn) -> BaseException:
    """What a step raises when its SQL raises, as the preflight does on a missing column."""
    sql = """DO $$ BEGIN
        RAISE EXCEPTION 'legacy schema is missing: %', 'voice_agent.call_logs_voiceagent.cost_breakdown'
            USING HINT = 'check the source_schema param and the voice_agent_db connection';
    END $$;"""
    return raised_by(SQLExecuteQueryOperator(task_id="check_legacy_schema", conn_id="voice_agent_db", sql=sql))


def task_instance(task_id: str, try_number: int = 1, max_tries: int = 0) -> SimpleNamespace:
    """The attributes of a runtime task instance the alert reads (its log_url aside)."""
    return SimpleNamespace(
        dag_id=DAG_ID, run_id=RUN_ID, task_id=task_id, try_number=try_number, max_tries=max_tries, map_index=-1
    )


def apprise_connection(config) -> str:
    return json.dumps({"conn_type": "apprise", "extra": {"config": config}})


def test_the_check_error_is_the_one_the_alert_expects(check_error):
    assert isinstance(check_error, CheckFailed) and isinstance(check_error, AirflowFailException)
    assert check_error.finding == str(check_error) == ORPHANS  # the finding, not the query


def test_a_failed_check_alert_shows_what_it_found_and_not_its_query(check_error):
    context = {"ti": task_instance("check_no_orphan_tenants"), "run_id": RUN_ID, "exception": check_error}

    title, body = failure_message(context)

    assert title == f"[{DAG_ID}] check check_no_orphan_tenants failed"
    assert body == (
        f"DAG: {DAG_ID}\n"
        f"Run: {RUN_ID}\n"
        "Task: check_no_orphan_tenants (try 1 of 1)\n"
        "Found:\n"
        "  voice_calls: 2 rows without a valid tenant e.g. 0a00-1 0a00-2\n"
        "  leads: 1 rows without a valid tenant e.g. 7d0c\n"
        f"Log: https://airflow.example.test/dags/{DAG_ID}/runs/{RUN_ID_QUOTED}/tasks/check_no_orphan_tenants"
        "?try_number=1"
    )


def test_a_failed_step_alert_shows_the_errors_first_lines(step_error):
    context = {"ti": task_instance("check_legacy_schema", 3, 2), "run_id": RUN_ID, "exception": step_error}

    title, body = failure_message(context)

    assert title == f"[{DAG_ID}] task check_legacy_schema failed"
    lines = body.splitlines()
    assert lines[:4] == [f"DAG: {DAG_ID}", f"Run: {RUN_ID}", "Task: check_legacy_schema (try 3 of 3)", "Error:"]
    assert lines[4].endswith(": legacy schema is missing: voice_agent.call_logs_voiceagent.cost_breakdown")
    assert "check the source_schema param" in lines[5]
    assert lines[-1].endswith("/tasks/check_legacy_schema?try_number=3")


def test_the_runtime_task_instances_own_log_url_is_used():
    ti = SimpleNamespace(**vars(task_instance("migrate_voices")), log_url="https://ui.example/the-log")
    assert log_link(ti) == "https://ui.example/the-log"


def test_many_findings_and_long_errors_are_cut_to_a_message_size():
    detail = "; ".join(f"table_{i}: 1 rows" for i in range(25))
    context = {"ti": task_instance("check_conservation"), "exception": CheckFailed(detail)}
    _, body = failure_message(context)
    assert body.count(": 1 rows") == 10 and "  table_9: 1 rows\n  ... and 15 more (see the log)\n" in body
    excerpt = error_excerpt(RuntimeError("\n".join(f"line {i}" for i in range(20))))
    assert excerpt == ["RuntimeError: line 0", *(f"line {i}" for i in range(1, 6)), "... (14 more lines in the log)"]


def test_only_a_check_failure_is_read_as_a_finding():
    """The finding comes from the exception's type, never from parsing a message."""
    lookalike = AirflowFailException("Test failed.\nQuery:\nSELECT 1\nResults:\n(False, 'x: 1 rows')")
    title, body = failure_message({"ti": task_instance("check_conservation"), "exception": lookalike})
    assert title == f"[{DAG_ID}] task check_conservation failed"
    assert "Error:\n  AirflowFailException: Test failed.\n" in body and "Found:" not in body


def test_the_callback_sends_the_text_as_is_never_as_a_template(monkeypatch):
    """Braces in an error reach the receiver unchanged (the notifier is not rendered with Jinja)."""
    receiver = Receiver()
    receiver.thread.start()
    try:
        config = {"path": f"json://127.0.0.1:{receiver.port}/alerts", "tag": "alerts"}
        monkeypatch.setenv("AIRFLOW_CONN_APPRISE_DEFAULT", apprise_connection(config))
        error = ValueError('bad row {"id": 1} {{ params.x }} {# not a comment #}')
        alert_on_failure({"ti": task_instance("migrate_leads"), "exception": error})
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    (alert,) = receiver.alerts()
    assert 'ValueError: bad row {"id": 1} {{ params.x }} {# not a comment #}' in alert["message"]


def routed(config) -> tuple[list[str], list[str]]:
    """(the destinations that get failure alerts, those that get the summary), by URL path."""
    conn = Connection(conn_id="apprise_default", conn_type="apprise", extra=json.dumps({"config": config}))
    services = destinations(conn)

    def path(service) -> str:
        return service.url(privacy=True).split("?")[0].removeprefix("json://h/")

    return (
        [path(s) for s in services if gets_failure_alerts(tag_names(s))],
        [path(s) for s in services if gets_summary(tag_names(s))],
    )


@pytest.mark.parametrize(
    ("config", "failures", "summary"),
    [
        ({"path": "json://h/untagged"}, ["untagged"], []),  # one URL, no tag: every failure alert
        ({"path": "json://h/a", "tag": "alerts"}, ["a"], []),
        ({"path": "json://h/s", "tag": "summary"}, [], ["s"]),
        ({"path": "json://h/both", "tag": "alerts, summary"}, ["both"], ["both"]),
        ({"path": "json://h/both", "tag": ["Summary", "alerts"]}, ["both"], ["both"]),  # tags as Apprise reads them
        ({"path": "json://h/oncall", "tag": "2:oncall"}, ["oncall"], []),  # any tag but summary alone
        ({"path": "json://h/s", "tag": "summary, summary"}, [], ["s"]),
        (  # a list, here as JSON text
            json.dumps(
                [
                    {"path": "json://h/u"},
                    {"path": "json://h/a", "tag": "alerts"},
                    {"path": "json://h/s", "tag": "summary"},
                ]
            ),
            ["u", "a"],
            ["s"],
        ),
        ({"path": "json://h/a json://h/b"}, ["a", "b"], []),  # a path may hold several URLs
        (None, [], []),
    ],
)
def test_who_gets_failure_alerts_and_who_the_summary(config, failures, summary):
    assert routed(config) == (failures, summary)


def test_the_callback_never_raises(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="voice_agent_migration.alerts")
    context = {"ti": task_instance("migrate_leads"), "exception": RuntimeError("boom")}

    monkeypatch.delenv("AIRFLOW_CONN_APPRISE_DEFAULT", raising=False)
    alert_on_failure(context)
    assert "alerts not configured: no Airflow connection 'apprise_default'" in caplog.text

    monkeypatch.setenv(
        "AIRFLOW_CONN_APPRISE_DEFAULT", apprise_connection({"path": "json://127.0.0.1:9/summary", "tag": "summary"})
    )
    alert_on_failure(context)
    assert "alerts not configured: connection 'apprise_default' has no destination for failure alerts" in caplog.text

    # Nothing listens on port 9 (discard) of loopback: Apprise fails to deliver, the task goes on.
    monkeypatch.setenv(
        "AIRFLOW_CONN_APPRISE_DEFAULT", apprise_connection({"path": "json://127.0.0.1:9/alerts", "tag": "alerts"})
    )
    alert_on_failure(context)
    assert "could not send" not in caplog.text

    monkeypatch.setenv("AIRFLOW_CONN_APPRISE_DEFAULT", apprise_connection("not json"))
    alert_on_failure(context)
    alert_on_failure({})  # no task instance at all
    assert caplog.text.count("could not send the failure alert through 'apprise_default'") == 2


def test_failure_alerts_and_the_summary_reach_the_destinations_the_rule_names(monkeypatch):
    """Real deliveries: untagged and `alerts` get failures, `summary` alone gets only the summary, both get both."""
    receiver = Receiver()
    receiver.thread.start()
    try:
        url = f"json://127.0.0.1:{receiver.port}"
        config = [
            {"path": f"{url}/untagged"},
            {"path": f"{url}/alerts", "tag": "alerts"},
            {"path": f"{url}/summary", "tag": "summary"},
            {"path": f"{url}/both", "tag": "alerts, summary"},
        ]
        monkeypatch.setenv("AIRFLOW_CONN_APPRISE_DEFAULT", apprise_connection(config))
        alert_on_failure({"ti": task_instance("migrate_leads"), "exception": RuntimeError("boom")})
        failures = sorted(path for path, body in receiver.received if body["type"] == "failure")
        send_summary({}, "run succeeded", "all balanced")
        summaries = sorted(path for path, body in receiver.received if body["type"] == "success")
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert failures == ["/alerts", "/both", "/untagged"]
    assert summaries == ["/both", "/summary"]


def test_a_single_untagged_destination_gets_the_failure_alert(monkeypatch):
    receiver = Receiver()
    receiver.thread.start()
    try:
        config = {"path": f"json://127.0.0.1:{receiver.port}/alerts"}  # one URL, no tag
        monkeypatch.setenv("AIRFLOW_CONN_APPRISE_DEFAULT", apprise_connection(config))
        alert_on_failure({"ti": task_instance("migrate_leads"), "exception": RuntimeError("boom")})
        send_summary({}, "run succeeded", "all balanced")  # not tagged summary: no summary
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    (alert,) = receiver.alerts()
    assert alert["type"] == "failure" and alert["title"] == f"[{DAG_ID}] task migrate_leads failed"
    assert len(receiver.received) == 1
