"""Housekeeping for a bot that runs for months: old alerts leave the database, finished recording
days are compressed, and old ones deleted.

`pgmbot run` does it at start and every few hours, in a worker thread (wall-clock time; nothing
here touches the engine). Alerts still waiting to be delivered are never deleted, whatever their
age; today's and yesterday's recordings are never touched (a restart rebuilds state from today's).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import re
import shutil
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from bot.notices import AdminNotices
from bot.store import Store
from bot.store.db import file_identity, safe_url
from bot.store.facade import on_writes
from bot.ticks import today_kst

log = logging.getLogger(__name__)

EVERY = 6 * 3600.0  # seconds between two rounds
_DAY_FILE = re.compile(r"(\d{4}-\d{2}-\d{2})\.tsv(\.gz)?")  # what Recorder writes, and gzipped


@dataclass
class Tidied:
    compressed: list[Path] = field(default_factory=list)  # the .tsv.gz files made
    deleted: list[Path] = field(default_factory=list)


def _day_files(directory: Path) -> list[tuple[date, Path]]:
    found = []
    for path in directory.iterdir() if directory.is_dir() else ():
        match = _DAY_FILE.fullmatch(path.name)
        if match and path.is_file():
            try:
                found.append((date.fromisoformat(match.group(1)), path))
            except ValueError:
                continue  # 2026-13-45.tsv: not ours
    return sorted(found)


def compress(path: Path) -> Path:
    """``DAY.tsv`` -> ``DAY.tsv.gz``, crash-safe: the original goes only once the copy is whole."""
    target = path.with_name(path.name + ".gz")
    partial = path.with_name(path.name + ".gz.part")
    with path.open("rb") as source, gzip.open(partial, "wb", compresslevel=6) as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    with partial.open("rb") as written:
        os.fsync(written.fileno())
    partial.replace(target)
    path.unlink()
    return target


def tidy_recordings(directory: Path, today: date, keep_days: int | None) -> Tidied:
    """Compress the day files older than yesterday; delete those more than ``keep_days`` days
    old (None: keep all). Other files in the directory are left alone."""
    tidied = Tidied()
    oldest_kept = today - timedelta(days=keep_days) if keep_days is not None else date.min
    for day, path in _day_files(directory):
        if day < oldest_kept:
            path.unlink()
            tidied.deleted.append(path)
        elif day < today - timedelta(days=1) and path.suffix == ".tsv":
            if path.with_name(path.name + ".gz").exists():
                continue  # both: a copy made by hand, or by someone else; leave it to them
            tidied.compressed.append(compress(path))
    return tidied


@dataclass(frozen=True)
class Retention:
    """How long things are kept, in days (None: for ever)."""

    alert_days: int | None  # storage.keep_days
    recordings: Path | None  # the directory the live bot records to, if any
    recording_days: int | None  # record_keep_days


def tidy(store: Store, retention: Retention, writes: Executor | None = None) -> None:
    """One round: prune the store (on ``writes`` when given: the store's one write thread),
    tidy the recordings (here: compressing a day's file takes seconds, no write waits on it).
    Logs what it did."""
    today = today_kst()
    if retention.alert_days is not None:
        cutoff = today - timedelta(days=retention.alert_days)
        alerts, deliveries = on_writes(writes, store.prune, cutoff)
        if alerts or deliveries:
            log.info("pruned alerts=%d deliveries=%d", alerts, deliveries)
    if retention.recordings is not None:
        done = tidy_recordings(retention.recordings, today, retention.recording_days)
        if done.compressed or done.deleted:
            log.info(
                "recordings tidied compressed=%d deleted=%d dir=%s",
                len(done.compressed),
                len(done.deleted),
                retention.recordings,
            )


async def run_housekeeping(
    store: Store, retention: Retention, every: float = EVERY, writes: Executor | None = None
) -> None:
    """Tidy now and every ``every`` seconds until cancelled; a failed round is logged only."""
    while True:
        try:
            await asyncio.to_thread(tidy, store, retention, writes)
        except Exception:
            log.exception("housekeeping failed; trying again in %.0f s", every)
        await asyncio.sleep(every)


async def watch_database(
    url: str, identity: tuple[int, int] | None, notices: AdminNotices, every: float = 30.0
) -> None:
    """Tell the admins when the SQLite file vanishes or is replaced under the running bot: its
    writes would go to a deleted file, and the next start would begin empty."""
    while identity is not None:
        await asyncio.sleep(every)
        if await asyncio.to_thread(file_identity, url) != identity:
            log.error("database file gone or replaced url=%s", safe_url(url))
            notices.say("notice.database_gone", kind="database-gone", url=safe_url(url))
