"""AlertWriter on a real SQLite file: batches, flush, close, a locked database, bad alerts."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alerts import Alert
from bot.kis.recording import Recorder, recording_path
from bot.store import AlertWriter, Store
from bot.store.writer import WriterClosed
from bot.ticks import KST, Tick

DAY = date(2024, 6, 3)


def alert(n: int, rule: str = "net-buy") -> Alert:
    """Alert number ``n``: a distinct key for each n (one tick second, then seq)."""
    seconds = 9 * 3600 + n % 3600
    tick = Tick("005930", DAY, "090000", seconds, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    return Alert(rule, "005930", tick, n, f"alert {n}", seq=n // 3600)


class CountingStore(Store):
    """The real store, remembering the size of each batch it was given."""

    def __init__(self, url: str, **kwargs: object) -> None:
        super().__init__(url, allowed_chat_ids=[1], **kwargs)  # type: ignore[arg-type]
        self.sizes: list[int] = []

    def insert_alerts(
        self, alerts: Sequence[Alert], now: datetime | None = None
    ) -> list[tuple[int, Alert]]:
        self.sizes.append(len(alerts))
        return super().insert_alerts(alerts, now)


class GatedStore(CountingStore):
    """Holds every commit until the test opens the gate."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def insert_alerts(
        self, alerts: Sequence[Alert], now: datetime | None = None
    ) -> list[tuple[int, Alert]]:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return super().insert_alerts(alerts, now)


@pytest.fixture
def store(url: str) -> Iterator[CountingStore]:
    store = CountingStore(url)
    store.add_watches(1, ["005930"])
    yield store
    store.close()


def stored_count(url: str) -> int:
    """What another process would see in the file."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        count: int = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
        return count


@asynccontextmanager
async def running(writer: AlertWriter) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        await writer.close(timeout=5)
        await asyncio.wait_for(task, 5)


async def test_a_burst_is_committed_in_batches_of_batch_size(
    url: str, store: CountingStore
) -> None:
    writer = AlertWriter(store, batch_size=500, interval=10.0)  # only size or flush commit
    async with running(writer):
        writer.submit([alert(n) for n in range(1200)])
        await writer.flush()
        assert store.sizes == [500, 500, 200]
        assert stored_count(url) == 1200
        assert store.pending_count() == 1200  # each with its delivery, same transaction


async def test_alerts_close_in_time_share_one_commit(store: CountingStore) -> None:
    committed: asyncio.Queue[list[Alert]] = asyncio.Queue()
    writer = AlertWriter(store, interval=0.2)
    writer.on_commit(committed.put_nowait)
    async with running(writer):
        for n in range(3):
            writer.submit([alert(n)])
            await asyncio.sleep(0)
        first = await asyncio.wait_for(committed.get(), 5)
        assert [a.value for a in first] == [0, 1, 2]
        assert store.sizes == [3]


async def test_close_stores_everything_queued(url: str, store: CountingStore) -> None:
    writer = AlertWriter(store, batch_size=64, interval=10.0)
    task = asyncio.create_task(writer.run())
    for n in range(1000):
        writer.submit([alert(n)])
    await writer.close()
    await asyncio.wait_for(task, 5)
    assert writer.queued == 0
    reopened = Store(url, allowed_chat_ids=[1])
    assert len(reopened.recent_alerts(limit=2000)) == 1000
    reopened.close()
    with pytest.raises(WriterClosed):
        writer.submit([alert(1)])


async def test_flush_and_close_work_without_run(url: str, store: CountingStore) -> None:
    writer = AlertWriter(store, batch_size=10)
    writer.submit([alert(n) for n in range(25)])
    await writer.flush()
    assert stored_count(url) == 25
    writer.submit([alert(n) for n in range(25, 30)])
    await writer.close()
    assert stored_count(url) == 30


async def test_on_commit_sees_only_new_alerts(store: CountingStore) -> None:
    seen: list[int] = []
    writer = AlertWriter(store)
    writer.on_commit(lambda alerts: seen.extend(a.value for a in alerts))
    writer.on_commit(lambda alerts: 1 / 0)  # a failing listener does not stop the others
    async with running(writer):
        writer.submit([alert(1), alert(2), alert(1)])
        await writer.flush()
        writer.submit([alert(2), alert(3)])  # 2 again: a replay after a restart
        await writer.flush()
    assert seen == [1, 2, 3]
    assert (writer.stored, writer.duplicates) == (3, 2)


async def test_submit_never_waits_for_the_database(url: str) -> None:
    store = GatedStore(url)
    writer = AlertWriter(store, interval=0.0)
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0)

    async with running(writer):
        pulse = asyncio.create_task(heartbeat())
        writer.submit([alert(0)])
        assert await asyncio.to_thread(store.entered.wait, 5)  # a commit is stuck in the thread
        seen = beats
        for n in range(1, 101):
            writer.submit([alert(n)])  # returns at once although the database is held
            await asyncio.sleep(0)
        assert beats > seen  # and the loop kept running meanwhile
        assert writer.queued == 101
        assert stored_count(url) == 0
        store.gate.set()
        await writer.flush()
        pulse.cancel()
    assert stored_count(url) == 101
    store.close()


async def test_a_locked_database_is_retried_and_nothing_is_lost(url: str) -> None:
    store = CountingStore(url, busy_timeout=0.02)
    writer = AlertWriter(store, retry_min=0.01, retry_max=0.05)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    async with running(writer):
        writer.submit([alert(n) for n in range(20)])
        for _ in range(500):
            if writer.retries >= 2:
                break
            await asyncio.sleep(0.01)
        assert writer.retries >= 2
        assert writer.queued == 20
        holder.execute("ROLLBACK")
        await writer.flush()
    holder.close()
    assert stored_count(url) == 20
    store.close()


async def test_close_gives_up_on_a_database_that_stays_locked(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = CountingStore(url, busy_timeout=0.02)
    writer = AlertWriter(store, retry_min=0.01, retry_max=0.02)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(writer.run())
    writer.submit([alert(n) for n in range(5)])
    with caplog.at_level(logging.ERROR, logger="bot.store.writer"):
        await writer.close(timeout=0.2)
    await asyncio.wait_for(task, 5)
    assert "alert writer gave up, alerts not stored count=5" in caplog.text
    holder.execute("ROLLBACK")
    holder.close()
    store.close()


async def test_a_bad_alert_is_refused_alone(
    url: str, store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    bad = Alert("net-buy", "005930", alert(7).tick, 7, None, seq=9)  # type: ignore[arg-type]
    writer = AlertWriter(store)
    with caplog.at_level(logging.ERROR, logger="bot.store.writer"):
        async with running(writer):
            writer.submit([alert(1), bad, alert(2)])
            await writer.flush()
            writer.submit([alert(3)])
            await writer.flush()
    assert stored_count(url) == 3
    assert writer.refused == 1
    assert "alert refused by the database rule=net-buy ticker=005930" in caplog.text


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.lists(st.lists(st.integers(0, 30), max_size=12), max_size=8),
    flushes=st.lists(st.booleans(), min_size=8, max_size=8),
    batch_size=st.integers(1, 16),
)
def test_every_unique_alert_is_stored_and_announced_once(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chunks: list[list[int]],
    flushes: list[bool],
    batch_size: int,
) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.db"
    shutil.copy(template, path)
    store = CountingStore(f"sqlite:///{path}")
    announced: list[int] = []

    async def scenario() -> None:
        writer = AlertWriter(store, batch_size=batch_size, interval=0.001)
        writer.on_commit(lambda alerts: announced.extend(a.value for a in alerts))
        async with running(writer):
            for chunk, flush in zip(chunks, flushes, strict=False):
                writer.submit([alert(n) for n in chunk])
                if flush:
                    await writer.flush()

    asyncio.run(scenario())
    unique = {n for chunk in chunks for n in chunk}
    assert sorted(announced) == sorted(unique)
    assert sorted(a.value for a in store.recent_alerts(limit=100)) == sorted(unique)
    store.close()


class RecordingCheckingStore(CountingStore):
    """At each commit, reads the recording as a restart would, and notes the frames in it."""

    def __init__(self, url: str, recording: Path) -> None:
        super().__init__(url)
        self.recording = recording
        self.frames_seen: list[int] = []  # recorded lines at each commit

    def insert_alerts(
        self, alerts: Sequence[Alert], now: datetime | None = None
    ) -> list[tuple[int, Alert]]:
        text = self.recording.read_text() if self.recording.exists() else ""
        self.frames_seen.append(text.count("\n"))
        return super().insert_alerts(alerts, now)


AT = datetime(2024, 6, 3, 9, 0, tzinfo=KST)


async def test_no_alert_is_committed_before_its_frames_are_recorded(
    url: str, tmp_path: Path
) -> None:
    recorder = Recorder(tmp_path / "rec")
    store = RecordingCheckingStore(url, recording_path(tmp_path / "rec", AT))
    writer = AlertWriter(store, journal=recorder.flush)
    async with running(writer):
        for n in range(30):
            recorder.write(f"frame {n}", AT)  # what Feed.data does before the engine runs
            writer.submit([alert(n)])
            if n % 7 == 0:
                await writer.flush()
        await writer.flush()
    # Every commit saw at least the frames of the alerts it stored (write-ahead), in order.
    committed = 0
    for size, seen in zip(store.sizes, store.frames_seen, strict=True):
        committed += size
        assert seen >= committed
    assert committed == 30
    recorder.close()
    store.close()


async def test_a_recording_that_cannot_be_written_holds_alerts_back_and_loses_none(
    url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "rec"
    recorder = Recorder(directory)
    store = CountingStore(url)
    writer = AlertWriter(store, journal=recorder.flush, retry_min=0.01, retry_max=0.02)
    directory.write_text("not a directory")  # the disk refuses every write of the recording
    async with running(writer):
        for n in range(5):
            recorder.write(f"frame {n}", AT)
            writer.submit([alert(n)])
        for _ in range(500):
            if writer.retries >= 2:
                break
            await asyncio.sleep(0.01)
        assert writer.retries >= 2 and stored_count(url) == 0  # no alert without its frames
        directory.unlink()  # the disk is back
        await writer.flush()
    assert stored_count(url) == 5
    lines = recording_path(directory, AT).read_text().splitlines()
    assert [line.split("\t")[1] for line in lines] == [f"frame {n}" for n in range(5)]
    recorder.close()
    store.close()


async def test_a_full_queue_keeps_the_oldest_alerts_and_says_so_once(url: str) -> None:
    store = CountingStore(url, busy_timeout=0.02)
    told: list[str] = []
    writer = AlertWriter(store, max_queued=10, on_full=told.append, retry_min=0.01)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    async with running(writer):
        for n in range(25):
            writer.submit([alert(n)])
        assert writer.queued == 10 and writer.overflowed == 15
        assert len(told) == 1 and "alert queue full" in told[0]
        holder.execute("ROLLBACK")
        await writer.flush()
    holder.close()
    assert sorted(a.value for a in store.recent_alerts(limit=50)) == list(range(10))
    store.close()
