"""Which calls a run migrates: a window of `started_at`, or every call.

- A window given in the trigger form (`window_start` / `window_end`, both or neither) wins.
- A scheduled or backfill run uses its data interval (the DAG's timetable makes it a real day).
- Anything else (a manual trigger, `airflow dags test`) migrates every call, those with a NULL
  `started_at` included.

The window is resolved from the task's template context at render time and validated there, so a
malformed window fails the first step before any SQL reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2

ISO_TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
)

# Run types that carry a data interval worth migrating on its own.
INTERVAL_RUN_TYPES = {"scheduled", "backfill"}


@dataclass(frozen=True)
class Window:
    """Half-open `[start, end)` in UTC."""

    start: datetime
    end: datetime
    source: str

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError(
                f"window_start ({self.start.isoformat()}) must be before window_end ({self.end.isoformat()})"
            )

    @property
    def start_sql(self) -> str:
        return f"'{self.start.isoformat()}'::timestamptz"

    @property
    def end_sql(self) -> str:
        return f"'{self.end.isoformat()}'::timestamptz"

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()}) from {self.source}"


def parse_timestamp(name: str, value: Any) -> datetime:
    """An ISO-8601 timestamp with an explicit offset, as an aware UTC datetime."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError as err:
            raise ValueError(f"{name} is not an ISO-8601 timestamp: {value!r}") from err
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{name} needs an explicit UTC offset (e.g. 2025-01-31T00:00:00+00:00): {value!r}")
    return parsed.astimezone(UTC)


def resolve_window(params: dict[str, Any], dag_run: Any = None) -> Window | None:
    """The window of a run (see the module docstring), or None for a full run."""
    start, end = params.get("window_start"), params.get("window_end")
    if start or end:
        if not (start and end):
            raise ValueError("window_start and window_end go together: give both or neither")
        return Window(parse_timestamp("window_start", start), parse_timestamp("window_end", end), "params")
    run_type = getattr(getattr(dag_run, "run_type", None), "value", getattr(dag_run, "run_type", None))
    if run_type in INTERVAL_RUN_TYPES:
        interval_start = getattr(dag_run, "data_interval_start", None)
        interval_end = getattr(dag_run, "data_interval_end", None)
        if interval_start is None or interval_end is None or interval_start >= interval_end:
            raise ValueError(
                f"a {run_type} run needs a non-empty data interval, got [{interval_start}, {interval_end})"
            )
        return Window(
            parse_timestamp("data_interval_start", interval_start),
            parse_timestamp("data_interval_end", interval_end),
            f"{run_type} data interval",
        )
    return None


@jinja2.pass_context
def migration_window(context: jinja2.runtime.Context) -> Window | None:
    """Template macro: `{% set window = migration_window() %}`. A bad window fails the task for good:
    a retry would render the same params again."""
    try:
        return resolve_window(context.get("params") or {}, context.get("dag_run"))
    except ValueError as err:
        from airflow.sdk.exceptions import AirflowFailException  # only when rendering fails

        raise AirflowFailException(f"invalid window: {err}") from err


@jinja2.pass_context
def migration_run_type(context: jinja2.runtime.Context) -> str:
    """Template macro: the run's type (manual, scheduled, backfill, ...); manual outside Airflow."""
    run_type = getattr(context.get("dag_run"), "run_type", None) or "manual"
    return str(getattr(run_type, "value", run_type))
