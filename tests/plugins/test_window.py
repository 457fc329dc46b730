"""Which calls a run takes: the params' window, else a scheduled/backfill run's data interval, else all."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pendulum
import pytest

from voice_agent_migration.window import resolve_window

JAN_2 = pendulum.datetime(2025, 1, 2, tz="UTC")
JAN_3 = pendulum.datetime(2025, 1, 3, tz="UTC")


def run(run_type: str, start=JAN_2, end=JAN_3) -> SimpleNamespace:
    return SimpleNamespace(run_type=SimpleNamespace(value=run_type), data_interval_start=start, data_interval_end=end)


@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_scheduled_and_backfill_runs_take_their_data_interval(run_type):
    window = resolve_window({}, run(run_type))
    assert (window.start, window.end) == (JAN_2, JAN_3)
    assert window.start_sql == "'2025-01-02T00:00:00+00:00'::timestamptz"
    assert run_type in str(window)


@pytest.mark.parametrize("dag_run", [None, run("manual"), run("asset_triggered")])
def test_manual_and_other_runs_without_a_window_take_every_call(dag_run):
    assert resolve_window({"window_start": None, "window_end": None}, dag_run) is None


def test_a_window_in_the_params_wins_and_is_converted_to_utc():
    window = resolve_window(
        {"window_start": "2025-01-02T05:45:00+05:45", "window_end": "2025-01-02T19:00:00-05:00"}, run("backfill")
    )
    assert window.start == datetime(2025, 1, 2, tzinfo=UTC)
    assert window.end == datetime(2025, 1, 3, tzinfo=UTC)
    assert window.source == "params"


def test_a_zero_length_data_interval_is_refused():
    with pytest.raises(ValueError, match="non-empty data interval"):
        resolve_window({}, run("scheduled", JAN_2, JAN_2))
