"""`make bench`'s report (devtools/bench.py): the section it appends to docs/benchmarks-history.md."""

from __future__ import annotations

from devtools.bench import ChunkStats, DagRun, report, without_password


def section(first_seconds: float = 40.0) -> list[str]:
    return report(
        rows=1_000_000,
        shape="shared",
        server="PostgreSQL 15.20 at postgres@127.0.0.1:5432/postgres",
        command="make bench ROWS=1000000 SHAPE=shared PG_URI=postgresql://postgres@127.0.0.1:5432/postgres",
        seeded=20.0,
        reference=10.0,
        first=DagRun(first_seconds, {"migrate_voice_calls": 20.0, "choose_mode": 3.0}, "manual__1", 244.6),
        second=DagRun(25.0, {"migrate_voice_calls": 5.0, "choose_mode": 3.0}, "manual__2", 243.9),
        fixed=DagRun(15.0, {}, "manual__3", 240.0),
        chunks=ChunkStats(chunks=20, committed=20, calls=1_000_000, longest=6.5, median=5.25, largest=50_000),
    ).splitlines()


def test_the_heading_and_the_summary_row_name_the_shape_and_the_server():
    lines = section()
    assert lines[0].endswith(
        ": 1,000,000 call logs, shared shape, PostgreSQL 15.20 at postgres@127.0.0.1:5432/postgres"
    )
    header, rule, row = lines[4:7]
    assert header.startswith("| shape | server | call logs | reference | full DAG run | ratio | re-run |")
    assert rule.count("---") == header.count("|") - 1
    assert row == (
        "| shared | PostgreSQL 15.20 at postgres@127.0.0.1:5432/postgres | 1,000,000 | 10.0 s | 40.0 s | 4.00x"
        " | 25.0 s (0.62) | 15.0 s | 2.50x | 0.40 | 245 / 244 / 240 MiB | 20 (6.5 s / 5.2 s) |"
    )


def test_the_measures_hold_the_chunks_and_the_net_ratios():
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section() if line.startswith("|")]
    measures = {cells[0]: cells[1] for cells in rows if len(cells) == 2}
    assert measures["call step, first run: chunks (committed)"] == "20 (20), 1,000,000 calls, at most 50,000 per chunk"
    assert measures["call step, first run: longest chunk transaction"] == "6.50 s"
    assert measures["call step, first run: median chunk transaction"] == "5.25 s"
    assert measures["ratio without the fixed cost: (DAG - fixed) / reference"] == "2.50x"
    assert measures["re-run without the fixed cost"] == "0.40 of the first run"
    assert measures["peak RSS of the Airflow process: first run / re-run / fixed-cost run"] == "245 / 244 / 240 MiB"


def test_the_net_re_run_share_is_not_given_below_a_second_of_own_work():
    row = section(first_seconds=15.5)[6]
    assert "| 0.05x | n/a |" in row


def test_the_server_is_recorded_without_its_password():
    assert without_password("postgresql://migrator:s3cret@db.internal:5433/postgres") == (
        "migrator@db.internal:5433/postgres"
    )
