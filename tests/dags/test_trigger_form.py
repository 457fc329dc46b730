"""The trigger form of Airflow's UI, in headless Chromium against the real stack: a window typed into the
form reaches the run's conf, and a malformed one is refused before any run exists.

Needs Debian's Chromium at /usr/bin/chromium (`make test` installs it); without it these tests fail.
Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devtools.airflow_env import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 90_000  # the UI's first load and the API are slow on a loaded 2-core machine

WINDOW = {"window_start": "2025-01-02T00:00:00+00:00", "window_end": "2025-01-03T00:00:00+00:00"}


@pytest.fixture(scope="module")
def browser() -> Browser:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Page:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    yield context.new_page()
    context.close()


def open_trigger_form(page: Page, stack):
    """The DAG's page, its Trigger modal, with the Window section open; returns the dialog."""
    page.goto(f"{stack.base_url}/dags/{stack.dag_id}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Trigger Dag - {stack.dag_id}")
    dialog.get_by_role("button", name="Window", exact=True).click()
    expect(dialog.locator("#element_window_start")).to_be_visible()
    return dialog


def is_trigger_request(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/dagRuns")


def fill_window(dialog, window_start: str, window_end: str) -> None:
    for name, value in (("window_start", window_start), ("window_end", window_end)):
        field = dialog.locator(f"#element_{name}")
        field.fill(value)
        expect(field).to_have_value(value)


def test_window_from_the_form_reaches_the_run(airflow_stack, page):
    airflow_stack.unpause()
    dialog = open_trigger_form(page, airflow_stack)
    fill_window(dialog, **WINDOW)
    dialog.screenshot(path=ARTIFACTS / "trigger-form-window.png")

    with page.expect_response(is_trigger_request) as triggered:
        dialog.get_by_role("button", name="Trigger", exact=True).click()
    response = triggered.value
    assert response.status == 200, response.text()
    run_id = response.json()["dag_run_id"]
    page.wait_for_url(re.compile(r"/runs/"))

    states = airflow_stack.wait_for(run_id, timeout=900)

    assert states == {run_id: "success"}, airflow_stack.describe([run_id])
    (run,) = [r for r in airflow_stack.runs() if r["run_id"] == run_id]
    assert run["run_type"] == "manual"
    assert {key: run["conf"].get(key) for key in WINDOW} == WINDOW
    # ... and the run migrated that window's calls, not every call.
    in_window, recorded = airflow_stack.legacy_db.rows(
        "SELECT (SELECT count(*) FROM voice_agent.call_logs_voiceagent WHERE started_at >= %s AND started_at < %s),"
        " (SELECT legacy_rows FROM public.migration_reconciliation"
        "  WHERE run_id = %s AND source_table = 'call_logs_voiceagent')",
        (WINDOW["window_start"], WINDOW["window_end"], run_id),
    )[0]
    assert 0 < recorded == in_window
    page.reload()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "trigger-form-run-success.png")


def test_malformed_window_is_refused(airflow_stack, page):
    runs_before = {run["run_id"] for run in airflow_stack.runs()}
    dialog = open_trigger_form(page, airflow_stack)
    fill_window(dialog, "yesterday", WINDOW["window_end"])

    with page.expect_response(is_trigger_request) as triggered:
        dialog.get_by_role("button", name="Trigger", exact=True).click()

    # The form sends it; the API validates the conf against the params and refuses it, and the
    # dialog stays open showing why.
    assert triggered.value.status == 400, triggered.value.text()
    expect(dialog).to_contain_text("Invalid input for param window_start")
    dialog.screenshot(path=ARTIFACTS / "trigger-form-refused.png")
    assert "/runs/" not in page.url
    assert {run["run_id"] for run in airflow_stack.runs()} == runs_before
