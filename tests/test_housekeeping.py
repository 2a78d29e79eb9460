"""Housekeeping: old alerts pruned (never undelivered ones), recordings gzipped, then deleted."""

from __future__ import annotations

import asyncio
import gzip
import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import event

from bot.alerts import Alert
from bot.config import ConfigError, load_settings
from bot.housekeeping import Retention, run_housekeeping, tidy_recordings, watch_database
from bot.kis.recording import read_recording
from bot.notices import AdminNotices
from bot.store import Store, upgrade
from bot.store.db import InstanceLock, file_identity
from bot.ticks import Tick, today_kst

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def alert(day: date, rule: str = "r") -> Alert:
    tick = Tick("005930", day, "090000", 9 * 3600, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    return Alert(rule, "005930", tick, 6, f"{rule} {day}")


@pytest.fixture
def store(each_backend_url: str) -> Iterator[Store]:
    store = Store(each_backend_url, allowed_chat_ids=[1, 2])
    store.add_watches(1, ["005930"])
    store.add_watches(2, ["005930"])
    yield store
    store.close()


def test_prune_deletes_old_alerts_but_never_an_undelivered_one(store: Store) -> None:
    cutoff = TODAY - timedelta(days=90)
    old, waiting, half, recent = (
        alert(cutoff - timedelta(days=1), "old-sent"),
        alert(cutoff - timedelta(days=200), "old-pending"),
        alert(cutoff - timedelta(days=5), "old-half-sent"),
        alert(cutoff, "recent"),
    )
    store.add_alerts([old, waiting, half, recent], NOW)
    rows = {(d.rule, d.chat_id): d.id for d in store.pending_deliveries(limit=100, now=NOW)}
    store.mark_sent([rows["old-sent", 1], rows["old-sent", 2], rows["recent", 1]], NOW)
    store.mark_failed([rows["old-half-sent", 1]], "chat not found")

    assert store.prune(cutoff) == (1, 3)  # old-sent with its 2 deliveries; 1 failed delivery

    kept = {a.rule for a in store.recent_alerts(limit=100)}
    assert kept == {"old-pending", "old-half-sent", "recent"}
    pending = {(d.rule, d.chat_id) for d in store.pending_deliveries(limit=100, now=NOW)}
    assert pending == {
        ("old-pending", 1), ("old-pending", 2), ("old-half-sent", 2), ("recent", 2)
    }  # fmt: skip
    assert store.prune(cutoff) == (0, 0)  # nothing more to do
    store.mark_sent([rows["old-pending", 1], rows["old-pending", 2]], NOW)
    assert store.prune(cutoff) == (1, 2)  # delivered at last: now it goes


def day_file(directory: Path, day: date, suffix: str = ".tsv") -> Path:
    path = directory / f"{day.isoformat()}{suffix}"
    text = f"{day.isoformat()}T09:00:00+09:00\t0|H0UNPGM0|001|005930^090000^1^2^3^4^5^6^7^8^9\n"
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_recordings_are_compressed_after_yesterday_and_deleted_after_keep_days(
    tmp_path: Path,
) -> None:
    days = {n: TODAY - timedelta(days=n) for n in (0, 1, 2, 30, 31, 40)}
    files = {n: day_file(tmp_path, day) for n, day in days.items() if n != 40}
    older = day_file(tmp_path, days[40], ".tsv.gz")
    original = files[2].read_text(encoding="utf-8")
    others = [tmp_path / "notes.txt", tmp_path / "2026-13-45.tsv"]
    for path in others:
        path.write_text("mine", encoding="utf-8")

    done = tidy_recordings(tmp_path, TODAY, keep_days=30)

    assert sorted(done.deleted) == sorted([files[31], older])
    assert done.compressed == [files[n].with_name(files[n].name + ".gz") for n in (30, 2)]
    assert files[0].exists() and files[1].exists()  # today's feeds a restart; yesterday's too
    assert not files[2].exists() and not files[30].exists()
    assert all(path.read_text(encoding="utf-8") == "mine" for path in others)
    compressed = done.compressed[1]
    assert gzip.decompress(compressed.read_bytes()).decode() == original
    assert [frame for _, _, frame in read_recording(compressed)] == [original.split("\t")[1][:-1]]
    assert tidy_recordings(tmp_path, TODAY, keep_days=30) == type(done)()  # nothing left to do


def test_a_compression_cut_short_is_redone_and_none_keeps_everything(tmp_path: Path) -> None:
    path = day_file(tmp_path, TODAY - timedelta(days=400))
    (tmp_path / f"{path.name}.gz.part").write_bytes(b"half a gzip stream")  # a crash mid-way
    done = tidy_recordings(tmp_path, TODAY, keep_days=None)
    assert done.deleted == []
    assert [p.name for p in tmp_path.iterdir()] == [f"{path.name}.gz"]
    assert gzip.decompress(done.compressed[0].read_bytes()).startswith(b"2025-")


async def test_the_bot_tidies_at_start(tmp_path: Path, url: str) -> None:
    store = Store(url, allowed_chat_ids=[1])
    store.add_alerts([alert(today_kst() - timedelta(days=100))])  # nobody watches: no delivery
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    stale = day_file(recordings, today_kst() - timedelta(days=60))
    task = asyncio.create_task(run_housekeeping(store, Retention(90, recordings, 30), every=3600))
    for _ in range(200):
        if not stale.exists() and not store.recent_alerts():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    assert not stale.exists()
    assert store.recent_alerts() == []
    store.close()


async def test_the_prune_waits_its_turn_on_the_stores_write_thread(
    tmp_path: Path, url: str
) -> None:
    """The bot's writes keep their order on one thread: the prune queues behind a write under
    way (here, one held until released) instead of racing it from a thread of its own."""
    store = Store(url, allowed_chat_ids=[1])
    store.add_alerts([alert(today_kst() - timedelta(days=100))])
    writes = ThreadPoolExecutor(1)
    held = threading.Event()
    writes.submit(held.wait, 10)
    task = asyncio.create_task(run_housekeeping(store, Retention(90, None, None), writes=writes))
    await asyncio.sleep(0.3)  # the round is under way, its prune queued behind the held write
    waiting = len(store.recent_alerts())
    held.set()
    for _ in range(200):
        if not store.recent_alerts():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    writes.shutdown()
    assert waiting == 1 and store.recent_alerts() == []
    store.close()


def test_retention_settings(tmp_path: Path) -> None:
    defaults = load_settings(None, env={})
    assert (defaults.storage.keep_days, defaults.record_keep_days) == (90, 30)
    path = tmp_path / "config.yaml"
    path.write_text("storage:\n  keep_days: null\nrecord_keep_days: 7\n", encoding="utf-8")
    settings = load_settings(path, env={})
    assert (settings.storage.keep_days, settings.record_keep_days) == (None, 7)
    path.write_text("storage:\n  keep_days: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.problems[0].startswith(f"{path}:2:14: storage.keep_days:")


def test_prune_reads_no_table_whole(tmp_path: Path) -> None:
    # Each chunk's SELECT and DELETE, planned by SQLite itself: an index for every lookup, so
    # that a day of a big database is quick and the write lock short.
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    store = Store(url, allowed_chat_ids=[1])
    store.add_watches(1, ["005930"])
    day = TODAY - timedelta(days=200)
    store.add_alerts([alert(day, "old-pending"), alert(day, "old-sent")], NOW)
    sent = [d.id for d in store.pending_deliveries(now=NOW) if d.rule == "old-sent"]
    store.mark_sent(sent, NOW)
    statements: list[tuple[str, Any]] = []

    def remember(_conn: object, _cursor: object, sql: str, params: Any, *_: object) -> None:
        if sql.lstrip().upper().startswith(("DELETE", "SELECT")):
            statements.append((sql, params))

    event.listen(SqlEngine, "before_cursor_execute", remember)
    try:
        assert store.prune(TODAY) == (1, 1)  # old-sent goes; old-pending waits for its send
    finally:
        event.remove(SqlEngine, "before_cursor_execute", remember)
    store.close()
    assert sum(sql.lstrip().upper().startswith("DELETE") for sql, _ in statements) == 2
    with sqlite3.connect(tmp_path / "plan.db") as db:
        for sql, params in statements:
            plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "SCAN" not in plan, plan


async def test_a_database_deleted_under_the_bot_is_told_to_the_admins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    upgrade(url)
    told: list[str] = []
    notices = AdminNotices()
    notices.attach(lambda text: _append(told, text))
    watch = asyncio.create_task(watch_database(url, file_identity(url), notices, every=0.01))
    try:
        await asyncio.sleep(0.05)
        assert told == []  # still there: nothing to say
        (tmp_path / "gone.db").unlink()
        for _ in range(200):
            if told:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        watch.cancel()
    assert len(told) == 1 and "지워지거나 바뀌었습니다" in told[0]  # once, not every round


async def _append(into: list[str], text: str) -> None:
    into.append(text)


def test_a_second_bot_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    first, second = InstanceLock(url), InstanceLock(url)
    first.acquire()
    with pytest.raises(RuntimeError, match=rf"another pgmbot \(pid {os.getpid()}\) runs on"):
        second.acquire()
    first.release()
    second.acquire()  # the first one stopped: the next may start
    second.release()
