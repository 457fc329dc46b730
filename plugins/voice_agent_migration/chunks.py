"""The call step in chunks: short committed transactions, resumable, with progress, cancellable.

A chunked step's SQL (sql/migrate/07_migrate_voice_calls.sql, machinery in sql/_incremental.sql) has
three parts, split at two marker lines:

1. the locks, taken once on a coordinating connection and held (session advisory locks) until the
   step ends, so that no other run's step interleaves;
2. the plan, one short transaction: it records the run's chunks once (ranges of call ids) and returns
   those not yet committed, so a retried task resumes where the last try stopped;
3. the work, run once per chunk as its own REPEATABLE READ transaction, with the chunk's bounds in
   place of the literals that mean "every call id"; it records its chunk as committed (the
   checkpoint) in the same transaction.

`sessions` connections work through the chunks at once. The log says how far it is at least every
`report_every` seconds. A failed chunk stops the others from taking new chunks; the chunks under way
end, and the failure is raised (a refusal first: final). An interruption (a timeout, the task being
killed) ends every session on the server (cancelling what it runs) before it is raised.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from voice_agent_migration.sessions import SNAPSHOT_MARKER, Sessions, last_result, run_step

CHUNK_MARKER = "-- each chunk's transaction starts here"
# The literals of sql/_incremental.sql that a chunk's bounds replace (run whole, they mean every call).
LOWER = "'00000000-0000-0000-0000-000000000000'::uuid /* chunk lower */"
UPPER = "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid /* chunk upper */"
NUMBER = "0 /* chunk number */"
COUNT = "1 /* chunk count */"


@dataclass(frozen=True)
class Chunk:
    number: int
    lower: str
    upper: str


def split_chunked_step(sql: str) -> tuple[str, str, str]:
    """(locks, plan, work) of a chunked step's rendered SQL; a file without both markers is refused."""
    locks, snapshot, rest = sql.partition(SNAPSHOT_MARKER)
    plan, chunk, work = rest.partition(CHUNK_MARKER)
    if not snapshot or not chunk:
        raise ValueError(
            f"not a chunked step: its SQL needs the lines {SNAPSHOT_MARKER!r} (c.serialize_step) and "
            f"{CHUNK_MARKER!r} (inc.each_chunk)"
        )
    return locks, plan, work


def narrow(work: str, chunk: Chunk, chunks: int) -> str:
    """The work of one chunk: its bounds, number and the run's chunk count in place of the literals."""
    for marker in (LOWER, UPPER, NUMBER, COUNT):
        if marker not in work:
            raise ValueError(f"the chunk's SQL lacks the literal {marker!r} (sql/_incremental.sql)")
    return (
        work.replace(LOWER, f"'{chunk.lower}'::uuid")
        .replace(UPPER, f"'{chunk.upper}'::uuid")
        .replace(NUMBER, str(chunk.number))
        .replace(COUNT, str(chunks))
    )


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Progress:
    """What the step has done so far, for the log: chunks, calls, rate, what is left."""

    total: int
    to_do: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    calls: int = 0
    longest: float = 0.0
    longest_chunk: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, number: int, calls: int, seconds: float) -> None:
        with self.lock:
            self.done += 1
            self.calls += calls
            if seconds > self.longest:
                self.longest, self.longest_chunk = seconds, number

    def line(self) -> str:
        with self.lock:
            elapsed = time.monotonic() - self.started
            earlier = self.total - self.to_do
            rate = self.calls / elapsed if elapsed > 0 else 0.0
            left = elapsed / self.done * (self.to_do - self.done) if self.done else None
            return (
                f"{earlier + self.done}/{self.total} chunks"
                + (f" ({earlier} committed by an earlier try)" if earlier else "")
                + f", {self.calls:,} calls in {duration(elapsed)}, {rate:,.0f} calls/s"
                + (f", about {duration(left)} left" if left is not None else "")
                + (f"; longest transaction {self.longest:.1f}s (chunk {self.longest_chunk})" if self.done else "")
            )


class ChunkedStep:
    """One run of a chunked step (see the module's doc) on connections that `sessions` opens."""

    def __init__(
        self,
        sessions: Sessions,
        sql: str,
        name: str,
        concurrency: int = 1,
        log: Any = None,
        report_every: float = 10.0,
    ) -> None:
        self.locks, self.plan, self.work = split_chunked_step(sql)
        self.name, self.concurrency, self.log, self.report_every = name, concurrency, log, report_every
        self.sessions = sessions
        self.stopping = threading.Event()

    def info(self, message: str, *args: Any) -> None:
        if self.log is not None:
            self.log.info(message, *args)

    def run(self) -> Progress:
        try:
            with closing(self.sessions.open()) as coordinator:
                coordinator.autocommit = True
                with closing(coordinator.cursor()) as cur:
                    cur.execute(self.locks)  # held until the coordinator closes
                coordinator.autocommit = False
                with closing(coordinator.cursor()) as cur:
                    cur.execute(f"-- {self.name} plan\n{self.plan}")
                    rows = last_result(cur)
                coordinator.commit()
                total = int(rows[0][3]) if rows else 0
                chunks = deque(Chunk(int(number), lower, upper) for number, lower, upper, _ in rows)
                progress = Progress(total=total, to_do=len(chunks))
                if not chunks:
                    self.info("%s: every chunk of this run is committed already: nothing to do", self.name)
                    return progress
                self.info("%s: %d chunks to do of %d, %d sessions", self.name, len(chunks), total, self.concurrency)
                self.work_through(chunks, progress)
                self.info("%s: done: %s", self.name, progress.line())
                return progress
        except BaseException:
            self.cancel()
            raise

    def work_through(self, chunks: deque[Chunk], progress: Progress) -> None:
        taking = threading.Lock()

        def session() -> None:
            with closing(self.sessions.open()) as conn:
                while not (self.stopping.is_set() or self.sessions.cancelled.is_set()):
                    with taking:
                        if not chunks:
                            return
                        chunk = chunks.popleft()
                    started = time.monotonic()
                    rows = run_step(
                        conn,
                        narrow(self.work, chunk, progress.total),
                        f"{self.name} chunk {chunk.number + 1}/{progress.total}",
                    )
                    calls = sum(int(row[0] or 0) for row in rows)
                    progress.add(chunk.number, calls, time.monotonic() - started)

        workers = min(self.concurrency, len(chunks))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=self.name) as pool:
            futures = [pool.submit(session) for _ in range(workers)]
            try:
                while True:
                    finished, pending = wait(futures, timeout=self.report_every, return_when=FIRST_EXCEPTION)
                    if any(f.exception() is not None for f in finished):
                        # No new chunk; the chunks under way end (seconds), then a refusal among
                        # the errors is raised first.
                        self.stopping.set()
                        wait(futures)
                        raise first_error([f.exception() for f in futures])
                    if not pending:
                        return
                    self.info("%s: %s", self.name, progress.line())
            except BaseException:
                self.stopping.set()
                self.cancel()
                raise

    def cancel(self) -> None:
        """Stop taking chunks and end every session of the step on the server (what it runs is cancelled)."""
        self.stopping.set()
        self.sessions.end_all()


def first_error(errors: Sequence[BaseException | None]) -> BaseException:
    """The error to raise of several sessions' errors: a refusal (final) first, else the first."""
    from voice_agent_migration.operators import as_refusal

    real = [error for error in errors if error is not None]
    return next((error for error in real if as_refusal(error)), real[0])
