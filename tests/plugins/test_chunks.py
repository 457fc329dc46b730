"""A chunked step as its task runs it: every chunk once, progress in the log while it runs."""

from __future__ import annotations

import re

import psycopg
import pytest

from voice_agent_migration.chunks import Chunk, ChunkedStep, Progress, narrow, split_chunked_step
from voice_agent_migration.sessions import Sessions

CHUNKS = 6


def chunked_sql(work: str) -> str:
    """A chunked step of CHUNKS chunks (the plan returns them all) whose work is `work`."""
    return f"""SELECT 1;
-- the step's snapshot starts here
SELECT n, '00000000-0000-0000-0000-00000000000' || n, '00000000-0000-0000-0000-00000000000' || n, {CHUNKS}::bigint
FROM generate_series(0, {CHUNKS - 1}) AS n;
-- each chunk's transaction starts here
SELECT '00000000-0000-0000-0000-000000000000'::uuid /* chunk lower */,
    'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid /* chunk upper */, 1 /* chunk count */;
{work}"""


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)


def test_every_chunk_runs_once_with_its_bounds_and_progress_is_logged_while_it_runs(legacy_db):
    legacy_db.execute("CREATE TABLE public.done (chunk integer, lower_id uuid, chunks integer)")
    work = """SELECT pg_sleep(0.3);
INSERT INTO public.done VALUES (0 /* chunk number */, '00000000-0000-0000-0000-000000000000'::uuid /* chunk lower */,
    1 /* chunk count */);
SELECT 1000"""
    log = Log()
    step = ChunkedStep(Sessions(lambda: psycopg.connect(legacy_db.uri)), chunked_sql(work), "calls", 2, log, 0.25)
    progress = step.run()

    assert sorted(legacy_db.rows("SELECT chunk, lower_id::text, chunks FROM public.done")) == [
        (n, f"00000000-0000-0000-0000-00000000000{n}", CHUNKS) for n in range(CHUNKS)
    ]
    assert (progress.done, progress.calls) == (CHUNKS, CHUNKS * 1000)
    assert log.lines[0] == f"calls: {CHUNKS} chunks to do of {CHUNKS}, 2 sessions"
    during = [
        line
        for line in log.lines[1:-1]
        if re.search(r"^calls: \d/6 chunks, [\d,]+ calls in \d+s, [\d,]+ calls/s", line)
    ]
    assert len(during) >= 2, log.lines  # about 0.9 s of work, reported every 0.25 s
    assert any("left; longest transaction" in line for line in during), log.lines
    assert log.lines[-1].startswith(f"calls: done: {CHUNKS}/{CHUNKS} chunks, 6,000 calls in")


def test_progress_counts_the_chunks_an_earlier_try_committed_and_estimates_the_rest():
    progress = Progress(total=10, to_do=4, started=0.0)
    assert progress.line().startswith("6/10 chunks (6 committed by an earlier try), 0 calls")
    progress.add(7, 5000, 2.5)
    assert re.match(
        r"7/10 chunks \(6 committed by an earlier try\), 5,000 calls in .*left; longest transaction 2\.5s \(chunk 7\)$",
        progress.line(),
    )


def test_a_step_without_its_marker_lines_is_refused_naming_them():
    with pytest.raises(ValueError, match="each chunk's transaction starts here"):
        split_chunked_step("SELECT 1;\n-- the step's snapshot starts here\nSELECT 2")
    with pytest.raises(ValueError, match="chunk upper"):
        narrow("SELECT '00000000-0000-0000-0000-000000000000'::uuid /* chunk lower */", Chunk(0, "a", "b"), 1)
