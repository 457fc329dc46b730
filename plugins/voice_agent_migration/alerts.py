"""Failure alerts through Apprise: one message per failed task, naming the run and what went wrong.

Every task of the DAG gets `on_failure_callback=alert_on_failure` through the DAG's `default_args`.
Airflow runs that callback only when a try ends in FAILED, i.e. after the last retry (a try that will be
retried runs `on_retry_callback` instead), and never for tasks that end `upstream_failed`: a broken step
sends one alert, not one per task below it.

Where alerts go is configuration, not code: the Airflow connection `apprise_default` (conn type
`apprise`), extra `{"config": {"path": "<apprise url>", "tag": "..."}}` or a list of such dicts, so
one setting reaches Slack, Teams, email, PagerDuty or a webhook. Failure alerts go to every destination
except those tagged only `summary`; a clean run's account goes only to destinations tagged `summary`.

Choices:
- The destinations are chosen here, not by an Apprise tag filter: a tagged notification reaches only
  destinations carrying the tag (one untagged URL would get nothing), and a filter cannot say "all but
  those tagged only `summary`" (no negation; an untagged destination matches only the tag `all`, which
  matches every destination). Apprise builds the destinations from the connection the provider's way
  (their URLs and tags read as Apprise reads them); the rule keeps some; the notifier sends to those.
- The callback builds a new `AppriseNotifier` per call. A notifier renders its fields in place, so an
  instance shared by many tasks keeps the first task's text.
- The text is built here in plain Python and sent with `notifier.notify(context)`, not `notifier(context)`:
  calling the notifier would render title and body as Jinja templates (an error message holding `{#` or
  `{{` would break or vanish) and merge its fields into the task's context.
- A failed SQL check raises `CheckFailed` (operators.py), which carries what the check found (counts
  and a few ids). The alert shows that finding, one item per line, never the check's query.
- Any other error shows its type and first lines: enough to triage, short enough for a chat message.
- The callback never raises: an alert that cannot be sent is logged, and the task's own failure stands.
  Without the connection (or when none of its destinations gets failure alerts) it logs one line
  saying alerts are not configured, and the run goes on as before.
- Apprise and the provider are imported when an alert is sent, not when the DAG file is parsed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

from voice_agent_migration.operators import CheckFailed

log = logging.getLogger(__name__)

ALERT_CONN_ID = "apprise_default"
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


def gets_failure_alerts(tags: Collection[str]) -> bool:
    """Failure alerts go to every destination except those tagged only `summary`."""
    return set(tags) != {SUMMARY_TAG}


def gets_summary(tags: Collection[str]) -> bool:
    """A clean run's account goes only to destinations tagged `summary`."""
    return SUMMARY_TAG in tags


def destinations(conn: Any) -> list[Any]:
    """The destinations of the `apprise_default` connection `conn` as Apprise services, built the
    provider's way (`AppriseHook.set_config_from_conn`): the URLs and tags a notification would use.
    A URL Apprise cannot use is left out (Apprise logs why)."""
    import apprise
    from airflow.providers.apprise.hooks.apprise import AppriseHook

    if not conn.extra_dejson.get("config"):
        return []
    services = apprise.Apprise()
    AppriseHook(apprise_conn_id=conn.conn_id).set_config_from_conn(conn=conn, apprise_obj=services)
    return list(services.find())  # every service: the filter `all`


def tag_names(service: Any) -> set[str]:
    """A service's tags by name (Apprise keeps them lower-cased, a `2:oncall` priority aside)."""
    return {str(tag) for tag in service.tags}


def _notify(context: Mapping[str, Any], services: list[Any], *, title: str, body: str, notify_type: Any) -> None:
    """Send through the provider's notifier to exactly `services`. Its `config` goes to `Apprise.add`,
    which takes services too; given one, the hook does not load the connection again, and the filter
    `all` reaches each of them."""
    from airflow.providers.apprise.notifications.apprise import AppriseNotifier
    from apprise.common import MATCH_ALL_TAG

    notifier = AppriseNotifier(
        title=title,
        body=body,
        notify_type=notify_type,
        config=services,
        tag=MATCH_ALL_TAG,
        apprise_conn_id=ALERT_CONN_ID,
    )
    notifier.notify(context)  # not notifier(context): see the module docstring


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
        recipients = [service for service in destinations(conn) if gets_failure_alerts(tag_names(service))]
        if not recipients:
            logger.warning(
                "alerts not configured: connection %r has no destination for failure alerts (each one is"
                " tagged only %r, or is not a URL Apprise can use), so this failure is not sent anywhere",
                ALERT_CONN_ID,
                SUMMARY_TAG,
            )
            return
        from apprise import NotifyType

        title, body = failure_message(context)
        _notify(context, recipients, title=title, body=body, notify_type=NotifyType.FAILURE)
        # The hook does not return Apprise's result: a delivery failure shows as Apprise's own warning.
        logger.info(
            "failure alert handed to Apprise via %r for %d destination(s): %s", ALERT_CONN_ID, len(recipients), title
        )
    except Exception:
        logger.exception("could not send the failure alert through %r; the task's own failure stands", ALERT_CONN_ID)


def send_summary(context: Mapping[str, Any], title: str, body: str) -> None:
    """Send a clean run's summary to the destinations tagged `summary`, if any.
    Optional: without such a destination it only logs that it sent nothing. Never raises."""
    logger = _task_log(context)
    try:
        conn = _alerts_connection()
        recipients = [] if conn is None else [s for s in destinations(conn) if gets_summary(tag_names(s))]
        if not recipients:
            logger.info("no Apprise destination tagged %r: the run summary is only in this log", SUMMARY_TAG)
            return
        from apprise import NotifyType

        _notify(context, recipients, title=title, body=body, notify_type=NotifyType.SUCCESS)
        logger.info("run summary handed to Apprise via %r for %d destination(s)", ALERT_CONN_ID, len(recipients))
    except Exception:
        logger.exception("could not send the run summary through %r", ALERT_CONN_ID)
