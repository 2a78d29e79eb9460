"""AlertWriter: alerts from the event loop into the store, in batches, on a worker thread.

``submit()`` only appends to a queue, so the engine's tick path never waits for the database. The
writer's ``run()`` task commits what has gathered, in one transaction per batch on its own thread
(alerts and their deliveries together), then calls the ``on_commit`` callbacks (e.g.
``sender.wake``) on the loop. By default it commits at once (``interval`` 0): alerts that arrive
while a commit runs form the next batch, so batches grow with the load and an alert on a quiet
day waits for nobody (benchmarks/bench_latency.py). ``interval`` > 0 waits that long for a batch
to gather, up to ``batch_size``.

The write-ahead rule: when the bot records frames, ``journal`` (``Recorder.flush``) runs in the
worker thread before every commit, so no alert is stored before the frames it came from are in the
recording; the recording's writes are grouped with the commits, as a database groups its log.

Nothing queued is dropped for a database that is down or locked, or a recording that cannot be
written: the batch stays at the head of the queue and is tried again with backoff. The queue is
bounded (``max_queued``): beyond it new alerts are not queued (they are in the recording, and the
next start's rebuild stores them), and ``on_full`` is told once per spell. An alert the database
refuses as such (bad data) is logged with its key and skipped, so it cannot hold the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from sqlalchemy.exc import InterfaceError, OperationalError

from bot.alerts import Alert
from bot.backoff import Backoff
from bot.store.repo import Store

log = logging.getLogger(__name__)

CommitCallback = Callable[[list[Alert]], object]
_BACKLOG_WARN = 10_000  # log when this many alerts wait (the database is down or slow)
MAX_QUEUED = 200_000  # alerts held in memory while the database refuses them (~100 MB)


class WriterClosed(RuntimeError):
    """``submit()`` after ``close()``."""


def transient(exc: BaseException) -> bool:
    """A failure worth retrying as is: the database is locked, unreachable, out of disk, or the
    recording cannot be written."""
    return isinstance(exc, OperationalError | InterfaceError | OSError)


class AlertWriter:
    """Queue alerts on the loop, commit them in batches on a worker thread.

    Use from one event loop: ``submit()`` from its thread, ``run()`` as a task, ``flush()`` to wait
    until everything submitted so far is stored, ``close()`` to store the rest and stop.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 500,
        interval: float = 0.0,
        retry_min: float = 0.1,
        retry_max: float = 5.0,
        journal: Callable[[], None] | None = None,
        max_queued: int = MAX_QUEUED,
        on_full: Callable[[str], object] | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        if batch_size < 1 or interval < 0:
            raise ValueError("batch_size must be >= 1 and interval >= 0")
        self._store = store
        self._journal = journal
        self.max_queued = max_queued
        self._on_full = on_full
        self._full = False  # told of the current spell of a full queue
        self.batch_size = batch_size
        self.interval = interval
        self._queue: deque[Alert] = deque()
        self._callbacks: list[CommitCallback] = []
        self._submitted = 0  # alerts ever submitted
        self._done = 0  # alerts ever stored, found duplicate or refused
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()  # something was submitted, or close/flush asked
        self._hurry = asyncio.Event()  # commit now, without waiting for the batch to fill
        self._stopped = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        # The thread that commits: the AsyncStore's writer when given (one writer per process:
        # two would wait for each other in SQLite's busy handler, which sleeps up to 100 ms).
        self._executor = executor
        self._own_executor = executor is None
        self._running = False
        self._closing = False
        self._abandon = False
        self._retry = Backoff(retry_min, retry_max, jitter=False)
        self.stored = 0  # alerts inserted
        self.duplicates = 0  # alerts already stored (a replay after restart, say)
        self.refused = 0  # alerts the database refused as bad data
        self.batches = 0
        self.retries = 0  # batches tried again after a transient failure
        self.overflowed = 0  # alerts not queued because the queue was full
        self.commit_timed: Callable[[float], object] | None = None  # seconds of each commit

    # -- the loop side -----------------------------------------------------------------------

    def submit(self, alerts: Iterable[Alert]) -> None:
        """Queue alerts for storing; returns at once."""
        if self._closing:
            raise WriterClosed("the alert writer is closed")
        before = len(self._queue)
        self._queue.extend(alerts)
        added = len(self._queue) - before
        if not added:
            return
        if len(self._queue) > self.max_queued:
            excess = len(self._queue) - self.max_queued
            self._overflow(excess)
            added -= excess
        self._submitted += added
        self._wakeup.set()
        if len(self._queue) >= self.batch_size:
            self._hurry.set()
        if before < _BACKLOG_WARN <= len(self._queue):
            log.warning("alert writer backlog queued=%d", len(self._queue))

    def _overflow(self, excess: int) -> None:
        """Drop the newest ``excess`` alerts (they are in the recording); tell once."""
        for _ in range(excess):
            self._queue.pop()
        self.overflowed += excess
        if not self._full:
            self._full = True
            text = (
                f"alert queue full: {self.max_queued} alerts wait for the database; newer ones "
                "are kept only in the recording until a restart stores them"
            )
            log.error("alert writer queue full queued=%d", len(self._queue))
            if self._on_full is not None:
                self._on_full(text)

    def on_commit(self, callback: CommitCallback) -> None:
        """Call ``callback(new_alerts)`` on the loop after each commit that stored alerts."""
        self._callbacks.append(callback)

    @property
    def queued(self) -> int:
        """Alerts submitted and not stored yet."""
        return len(self._queue)

    async def run(self) -> None:
        """Commit batches until ``close()``; everything queued is stored before it returns."""
        if self._running:
            raise RuntimeError("AlertWriter.run() is already running")
        self._running = True
        self._stopped.clear()
        log.info("alert writer started batch=%d interval=%.3fs", self.batch_size, self.interval)
        try:
            while not self._abandon:
                if not self._queue:
                    if self._closing:
                        break
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if len(self._queue) < self.batch_size and not self._urgent():
                    await self._pause(self.interval)  # let a batch gather
                await self._commit_next()
        finally:
            self._running = False
            self._stopped.set()
            self._fail_waiters()
            log.info(
                "alert writer stopped stored=%d duplicates=%d refused=%d queued=%d",
                self.stored,
                self.duplicates,
                self.refused,
                len(self._queue),
            )

    async def flush(self) -> None:
        """Return once every alert submitted before this call is stored (or refused)."""
        target = self._submitted
        if self._done >= target:
            return
        if not self._running:
            while self._done < target:
                await self._commit_next()
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._hurry.set()
        self._wakeup.set()
        await future

    async def close(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109 (a bound, not a cancellation)
        """Store everything queued, then stop ``run()``. After ``timeout`` seconds of a failing
        database, give up: the alerts still queued are logged as lost and the writer stops."""
        self._closing = True
        self._hurry.set()
        self._wakeup.set()
        try:
            async with asyncio.timeout(timeout):
                if self._running:
                    await self._stopped.wait()
                else:
                    while self._queue:
                        await self._commit_next()
        except TimeoutError:
            self._abandon = True
            self._wakeup.set()
            log.error("alert writer gave up, alerts not stored count=%d", len(self._queue))
            if self._running:
                await self._stopped.wait()
        finally:
            if self._executor is not None and self._own_executor:
                self._executor.shutdown(wait=False)
                self._executor = None

    # -- committing --------------------------------------------------------------------------

    def _urgent(self) -> bool:
        return self._closing or bool(self._waiters)

    async def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a full batch, flush() or close() cuts it short."""
        self._hurry.clear()
        if self._urgent() or len(self._queue) >= self.batch_size:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._hurry.wait()

    async def _commit_next(self) -> None:
        """Store the head of the queue (one batch); on a transient failure, wait and return."""
        async with self._commit_lock:  # run(), flush() and close() may all want to commit
            await self._commit_head()

    async def _commit_head(self) -> None:
        batch = list(islice(self._queue, self.batch_size))
        if not batch:
            return
        try:
            inserted = await self._in_thread(batch)
        except Exception as exc:
            if transient(exc):
                await self._backoff(exc, len(batch))
                return
            log.warning(
                "alert batch refused, storing one by one count=%d error=%r", len(batch), str(exc)
            )
            inserted, handled = await self._one_by_one(batch)
            batch = batch[:handled]
        self._retry.reset()
        self._full = False
        for _ in batch:
            self._queue.popleft()
        self._done += len(batch)
        self.batches += 1
        self.stored += len(inserted)
        self.duplicates += len(batch) - len(inserted)
        self._wake_waiters()
        if inserted:
            self._notify(inserted)

    async def _one_by_one(self, batch: list[Alert]) -> tuple[list[Alert], int]:
        """Store a refused batch alert by alert, skipping the bad ones; stops at a transient
        failure. Returns the alerts inserted and how many of the batch were handled."""
        inserted: list[Alert] = []
        for handled, alert in enumerate(batch):
            try:
                inserted += await self._in_thread([alert])
            except Exception as exc:
                if transient(exc):
                    return inserted, handled
                self.refused += 1
                log.error(
                    "alert refused by the database rule=%s ticker=%s time=%s seq=%s error=%r",
                    getattr(alert, "rule", "?"),
                    getattr(alert, "ticker", "?"),
                    getattr(getattr(alert, "tick", None), "hhmmss", "?"),
                    getattr(alert, "seq", "?"),
                    str(exc)[:300],
                )
        return inserted, len(batch)

    async def _in_thread(self, batch: list[Alert]) -> list[Alert]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="alert-writer")
        loop = asyncio.get_running_loop()
        pairs = await loop.run_in_executor(self._executor, self._commit, batch)
        return [alert for _, alert in pairs]

    def _commit(self, batch: list[Alert]) -> list[tuple[int, Alert]]:
        """In the worker thread: the frames first (write-ahead), then the alerts."""
        if self._journal is not None:
            self._journal()
        started = time.perf_counter()
        inserted = self._store.insert_alerts(batch)
        if self.commit_timed is not None:  # metrics: the database's commit latency
            self.commit_timed(time.perf_counter() - started)
        return inserted

    async def _backoff(self, exc: BaseException, count: int) -> None:
        self.retries += 1
        delay = self._retry.next()
        log.warning(
            "alert batch not stored, retrying count=%d queued=%d retry_in=%.2fs error=%r",
            count,
            len(self._queue),
            delay,
            str(exc)[:300],
        )
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                while not self._abandon:  # only giving up cuts a backoff short
                    await self._wakeup.wait()
                    self._wakeup.clear()

    def _notify(self, alerts: list[Alert]) -> None:
        for callback in self._callbacks:
            try:
                callback(alerts)
            except Exception:  # one bad listener must not stop the writer
                log.exception("alert writer callback failed callback=%r", callback)

    def _wake_waiters(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if future.done():
                continue
            if self._done >= target:
                future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still

    def _fail_waiters(self) -> None:
        self._wake_waiters()
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(RuntimeError("the alert writer stopped before storing"))
        self._waiters = []
