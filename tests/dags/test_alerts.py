"""Failure alerts of the real DAG, delivered by Apprise to a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from devtools.airflow_env import DAG_ID
from tests.helpers import run_dag, sql_path

BASE_URL = "http://airflow.example.test:8080/"
STRAY_TENANT = "99999999-9999-4999-8999-999999999999"
SYSTEM_TENANT = "00000000-0000-0000-0000-000000000000"


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every POSTed JSON body with its path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alerts(self) -> list[dict]:
        return [body for path, body in self.received if path == "/alerts"]


def use_destinations(monkeypatch, config) -> None:
    """Make `config` (one destination or a list) the `apprise_default` connection's."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_APPRISE_DEFAULT", json.dumps({"conn_type": "apprise", "extra": {"config": config}})
    )


@pytest.fixture
def receiver(monkeypatch):
    """The receiver, wired in as the `apprise_default` connection; the log links use BASE_URL."""
    receiver = Receiver()
    receiver.thread.start()
    use_destinations(monkeypatch, {"path": f"json://127.0.0.1:{receiver.port}/alerts", "tag": "alerts"})
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def failed(states) -> dict[str, str]:
    return {task: state for task, (state, _) in states.items() if state not in {"success", "skipped"}}


def log_url(run_id: str, task_id: str, try_number: int = 1) -> str:
    return f"{BASE_URL.rstrip('/')}/dags/{DAG_ID}/runs/{quote(run_id)}/tasks/{task_id}?try_number={try_number}"


def test_a_planted_orphan_sends_one_alert_with_what_the_check_found(demo_db, receiver, capfd):
    assert failed(run_dag(demo_db)) == {}
    assert receiver.received == []  # a clean run sends no failure alert
    stray = "0a000000-0000-4000-8000-00000000dead"
    demo_db.execute("INSERT INTO voice_calls (id, tenant_id) VALUES (%s, %s)", (stray, STRAY_TENANT))
    capfd.readouterr()

    states = run_dag(demo_db)

    assert failed(states) == {"check_no_orphan_tenants": "failed"}
    (alert,) = receiver.alerts()
    assert alert["type"] == "failure"
    assert alert["title"] == f"[{DAG_ID}] check check_no_orphan_tenants failed"
    assert alert["message"] == (
        f"DAG: {DAG_ID}\n"
        f"Run: {states.run_id}\n"
        "Task: check_no_orphan_tenants (try 1 of 1)\n"
        "Found:\n"
        f"  voice_calls: 1 rows without a valid tenant e.g. {stray}\n"
        f"Log: {log_url(states.run_id, 'check_no_orphan_tenants')}"
    )
    assert "SELECT" not in alert["message"]  # the finding, not the check's query
    out = capfd.readouterr()
    log = out.out + out.err
    assert f"check_no_orphan_tenants FAILED: voice_calls: 1 rows without a valid tenant e.g. {stray}" in log
    # The check's log gives its finding, not its query (nor the provider's "Test failed." dump).
    assert sql_path("check/check_no_orphan_tenants.sql").read_text().splitlines()[0] not in log
    assert "Test failed." not in log


def test_a_planted_duplicate_sends_one_alert_naming_the_number(demo_db, receiver):
    assert failed(run_dag(demo_db)) == {}
    # Planted where no run repairs it: two application rows holding one phone (a legacy number whose
    # phone an application row holds is quarantined instead, see tests/sql/test_live_legacy_model.py).
    demo_db.execute("ALTER TABLE phone_numbers DROP CONSTRAINT phone_numbers_phone_number_key")
    for _ in range(2):
        demo_db.execute(
            "INSERT INTO phone_numbers (tenant_id, phone_number) VALUES (%s, '+15550109999')", (SYSTEM_TENANT,)
        )

    states = run_dag(demo_db)

    assert failed(states) == {"check_no_duplicate_natural_keys": "failed"}
    (alert,) = receiver.alerts()
    assert alert["title"] == f"[{DAG_ID}] check check_no_duplicate_natural_keys failed"
    assert f"Run: {states.run_id}\n" in alert["message"]
    assert "Found:\n  phone_numbers(phone_number) = +15550109999 held 2 times\n" in alert["message"]
    assert alert["message"].endswith(f"Log: {log_url(states.run_id, 'check_no_duplicate_natural_keys')}")


def test_a_refused_preflight_alerts_once_at_its_first_try_with_retries_on(demo_db, receiver, instant_retries):
    """A missing column is a refusal (SQLSTATE VA000): final at once, though steps retry."""
    demo_db.execute("ALTER TABLE voice_agent.call_logs_voiceagent DROP COLUMN cost_breakdown")

    states = run_dag(demo_db, step_retries=True)

    assert states["check_legacy_schema"] == ("failed", 1)  # not retried: the same schema would be refused again
    assert {task for task, state in failed(states).items() if state != "upstream_failed"} == {"check_legacy_schema"}
    (alert,) = receiver.alerts()  # not one per try, nor one per task downstream
    assert alert["title"] == f"[{DAG_ID}] task check_legacy_schema failed"
    message = alert["message"]
    assert message.startswith(f"DAG: {DAG_ID}\nRun: {states.run_id}\nTask: check_legacy_schema (try 1 of 3)\nError:\n")
    assert "legacy column voice_agent.call_logs_voiceagent.cost_breakdown does not exist" in message
    assert "HINT: check the source_schema param and the voice_agent_db connection" in message
    assert message.endswith(f"Log: {log_url(states.run_id, 'check_legacy_schema', try_number=1)}")


def test_a_clean_run_sends_no_alert(demo_db, receiver):
    assert failed(run_dag(demo_db)) == {}
    assert receiver.received == []  # (no destination is tagged "summary" here)


def test_a_clean_run_sends_its_account_to_the_summary_destination_only(demo_db, receiver, monkeypatch):
    use_destinations(
        monkeypatch,
        [
            {"path": f"json://127.0.0.1:{receiver.port}/alerts", "tag": "alerts"},
            {"path": f"json://127.0.0.1:{receiver.port}/summary", "tag": "summary"},
        ],
    )
    states = run_dag(demo_db)
    assert failed(states) == {}
    assert receiver.alerts() == []
    ((path, summary),) = receiver.received
    assert path == "/summary" and summary["type"] == "success"
    assert summary["title"] == f"[{DAG_ID}] run {states.run_id} succeeded"
    assert "call_logs_voiceagent" in summary["message"] and "in_scope" in summary["message"]


def test_a_single_untagged_destination_gets_the_failure_alert(demo_db, receiver, monkeypatch):
    use_destinations(monkeypatch, {"path": f"json://127.0.0.1:{receiver.port}/alerts"})  # one URL, no tag
    demo_db.execute("ALTER TABLE voice_agent.call_logs_voiceagent DROP COLUMN cost_breakdown")

    states = run_dag(demo_db)

    assert states["check_legacy_schema"] == ("failed", 1)
    (alert,) = receiver.alerts()
    assert alert["type"] == "failure" and alert["title"] == f"[{DAG_ID}] task check_legacy_schema failed"


def test_summary_only_gets_no_failure_alert_and_a_destination_tagged_both_gets_both(demo_db, receiver, monkeypatch):
    use_destinations(
        monkeypatch,
        [
            {"path": f"json://127.0.0.1:{receiver.port}/summary", "tag": "summary"},
            {"path": f"json://127.0.0.1:{receiver.port}/both", "tag": "alerts, summary"},
        ],
    )
    assert failed(run_dag(demo_db)) == {}
    demo_db.execute("ALTER TABLE voice_agent.call_logs_voiceagent DROP COLUMN cost_breakdown")

    states = run_dag(demo_db)

    assert states["check_legacy_schema"] == ("failed", 1)
    received = sorted((path, body["type"]) for path, body in receiver.received)
    assert received == [("/both", "failure"), ("/both", "success"), ("/summary", "success")]


def test_without_the_connection_the_run_is_unchanged_and_the_log_says_so(demo_db, capfd, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_APPRISE_DEFAULT", raising=False)
    demo_db.execute("ALTER TABLE voice_agent.call_logs_voiceagent DROP COLUMN cost_breakdown")
    capfd.readouterr()

    states = run_dag(demo_db)

    assert states["check_legacy_schema"] == ("failed", 1)
    out = capfd.readouterr()
    log = out.out + out.err
    assert "alerts not configured" in log
    assert "could not send the failure alert" not in log
