"""Failure alerts through Apprise: one message per failed task, naming the run and what went wrong.

Every task of the DAG gets `on_failure_callback=alert_on_failure` through the DAG's `default_args`.
Airflow runs that callback only when a try ends in FAILED, i.e. after the last retry (a try that will be
retried runs `on_retry_callback` instead), and never for tasks that end `upstream_failed`: a broken step
sends one alert, not one per task below it.

Where alerts go is configuration, not code: the Airflow connection `apprise_default` (conn type
`apprise`), extra `{"config": {"path": "<apprise url>", "tag": "alerts"}}` or a list of such dicts, so
one setting reaches Slack, Teams, email, PagerDuty or a webhook. Alerts are sent to the services tagged
`alerts`; services with other tags (a summary channel, say) do not get them.

Choices:
- The callback builds a new `AppriseNotifier` per call. A notifier renders its fields in place, so an
  instance shared by many tasks keeps the first task's text.
- The text is built here in plain Python and sent with `notifier.notify(context)`, not `notifier(context)`:
  calling the notifier would render title and body as Jinja templates (an error message holding `{#` or
  `{{` would break or vanish) and merge its fields into the task's context.
- A failed SQL check raises `CheckFailed` (operators.py), which carries what the check found (counts
  and a few ids). The alert shows that finding, one item per line, never the check's query.
- Any other error shows its type and first lines: enough to triage, short enough for a chat message.
- The callback never raises: an alert that cannot be sent is logged, and the task's own failure stands.
  Without the connection (or with no destination tagged `alerts`, which Apprise would silently skip)
  it logs one line saying alerts are not configured, and the run goes on as before.
- Apprise and the provider are imported when an alert is sent, not when the DAG file is parsed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from voice_agent_migration.operators import CheckFailed

log = logging.getLogger(__name__)

ALERT_CONN_ID = "apprise_default"
ALERT_TAG = "alerts"
SUMMARY_TAG = "summary"

MAX_ERROR_LINES = 6
MAX_FINDINGS = 10
MAX_LINE_CHARS = 300
DEFAULT_BASE_URL = "http://localhost:8080/"


def _clip(line: str, limit: int = MAX_LINE_CHARS) -> str:
    return line if len(line) <= limit else line[: limit - 3] + "..."


def error_excerpt(error: BaseException | str | None, max_lines: int = MAX_ERROR_LINES) -> list[str]:
    """The error's type and first non-blank lines, each clipped."""
    if error is None:
        return ["(no error was recorded)"]
    lines = [line.rstrip() for line in str(error).splitlines() if line.strip()] or ["(empty message)"]
    if isinstance(error, BaseException):
        lines[0] = f"{type(error).__name__}: {lines[0]}"
    excerpt = [_clip(line) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        excerpt.append(f"... ({len(lines) - max_lines} more lines in the log)")
    return excerpt


def log_link(ti: Any, base_url: str | None = None) -> str:
    """Link to the task instance's log in the Airflow UI.

    The runtime task instance builds it from `[api] base_url` (`ti.log_url`); otherwise (or when
    `base_url` is given) it is built here the same way.
    """
    if base_url is None:
        url = getattr(ti, "log_url", None)
        if isinstance(url, str) and url:
            return url
        from airflow.sdk.configuration import conf

        base_url = conf.get("api", "base_url", fallback=DEFAULT_BASE_URL)
    map_index = getattr(ti, "map_index", None)
    mapped = f"/mapped/{map_index}" if isinstance(map_index, int) and map_index >= 0 else ""
    try_number = getattr(ti, "try_number", None)
    query = f"?try_number={try_number}" if isinstance(try_number, int) and try_number > 0 else ""
    return f"{base_url.rstrip('/')}/dags/{ti.dag_id}/runs/{quote(ti.run_id)}/tasks/{ti.task_id}{mapped}{query}"


def failure_title(dag_id: str, task_id: str, *, is_check: bool) -> str:
    what = "check" if is_check else "task"
    return f"[{dag_id}] {what} {task_id} failed"


def failure_body(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None,
    max_tries: int | None,
    finding: str | None,
    error_lines: list[str],
    log_url: str,
) -> str:
    """Plain text readable in any channel Apprise reaches: a check shows its findings one per line,
    any other task its error's first lines."""
    tries = ""
    if try_number:
        tries = f" (try {try_number} of {max_tries + 1})" if max_tries is not None else f" (try {try_number})"
    lines = [f"DAG: {dag_id}", f"Run: {run_id}", f"Task: {task_id}{tries}"]
    if finding is not None:
        items = [item.strip() for item in finding.split("; ") if item.strip()] or [finding]
        lines.append("Found:")
        lines.extend(f"  {_clip(item)}" for item in items[:MAX_FINDINGS])
        if len(items) > MAX_FINDINGS:
            lines.append(f"  ... and {len(items) - MAX_FINDINGS} more (see the log)")
    else:
        lines.append("Error:")
        lines.extend(f"  {line}" for line in error_lines)
    lines.append(f"Log: {log_url}")
    return "\n".join(lines)


def failure_message(context: Mapping[str, Any]) -> tuple[str, str]:
    """(title, body) of the alert for the failed task instance of `context`."""
    ti = context["ti"]
    dag_id, task_id = ti.dag_id, ti.task_id
    run_id = context.get("run_id") or ti.run_id
    error = context.get("exception")
    finding = error.finding if isinstance(error, CheckFailed) else None
    title = failure_title(dag_id, task_id, is_check=finding is not None)
    body = failure_body(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        try_number=getattr(ti, "try_number", None),
        max_tries=getattr(ti, "max_tries", None),
        finding=finding,
        error_lines=error_excerpt(error),
        log_url=log_link(ti),
    )
    return title, body


def destinations_tagged(config: Any, tag: str = ALERT_TAG) -> int:
    """How many destinations of an `apprise_default` config (a dict, a list of dicts, or either as JSON
    text) carry `tag`. Apprise silently sends nothing when no destination matches the tag."""
    if isinstance(config, str):
        config = json.loads(config)
    entries = config if isinstance(config, list) else [config]
    count = 0
    for entry in entries:
        tags = entry.get("tag") if isinstance(entry, Mapping) else None
        names = re.split(r"[\s,]+", tags) if isinstance(tags, str) else list(tags or [])
        count += tag in names
    return count


def _alerts_connection() -> Any:
    """The `apprise_default` connection, or None."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(ALERT_CONN_ID)
    except AirflowNotFoundException:
        return None


def _task_log(context: Mapping[str, Any]) -> Any:
    """The failing task's own logger, so these lines read as part of its log; else this module's."""
    task = context.get("task") if isinstance(context, Mapping) else None
    return getattr(task, "log", None) or log


def alert_on_failure(context: Mapping[str, Any]) -> None:
    """Task `on_failure_callback`: send one Apprise alert about this failure. Never raises."""
    logger = _task_log(context)
    try:
        conn = _alerts_connection()
        if conn is None:
            logger.warning(
                "alerts not configured: no Airflow connection %r, so this failure is not sent anywhere"
                " (create it, conn type apprise, to get alerts)",
                ALERT_CONN_ID,
            )
            return
        if not destinations_tagged(conn.extra_dejson.get("config")):
            logger.warning(
                "alerts not configured: no destination in connection %r is tagged %r, so Apprise sends nothing",
                ALERT_CONN_ID,
                ALERT_TAG,
            )
            return
        from airflow.providers.apprise.notifications.apprise import AppriseNotifier
        from apprise import NotifyType

        title, body = failure_message(context)
        notifier = AppriseNotifier(
            title=title, body=body, notify_type=NotifyType.FAILURE, tag=ALERT_TAG, apprise_conn_id=ALERT_CONN_ID
        )
        notifier.notify(context)  # not notifier(context): see the module docstring
        # The hook does not return Apprise's result: a delivery failure shows as Apprise's own warning.
        logger.info("failure alert handed to Apprise via %r (tag %r): %s", ALERT_CONN_ID, ALERT_TAG, title)
    except Exception:
        logger.exception("could not send the failure alert through %r; the task's own failure stands", ALERT_CONN_ID)


def send_summary(context: Mapping[str, Any], title: str, body: str) -> None:
    """Send a clean run's summary to the destinations tagged `summary` (never to `alerts`), if any.
    Optional: without such a destination it only logs that it sent nothing. Never raises."""
    logger = _task_log(context)
    try:
        conn = _alerts_connection()
        if conn is None or not destinations_tagged(conn.extra_dejson.get("config"), SUMMARY_TAG):
            logger.info("no Apprise destination tagged %r: the run summary is only in this log", SUMMARY_TAG)
            return
        from airflow.providers.apprise.notifications.apprise import AppriseNotifier
        from apprise import NotifyType

        AppriseNotifier(
            title=title, body=body, notify_type=NotifyType.SUCCESS, tag=SUMMARY_TAG, apprise_conn_id=ALERT_CONN_ID
        ).notify(context)
        logger.info("run summary handed to Apprise via %r (tag %r)", ALERT_CONN_ID, SUMMARY_TAG)
    except Exception:
        logger.exception("could not send the run summary through %r", ALERT_CONN_ID)
