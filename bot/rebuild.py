"""A restart resumes mid-day: today's recording replayed through the engine.

The recording is the engine's write-ahead log (bot.kis.recording), so the replay fires exactly
the alerts the stopped bot fired, under the same keys: those already stored are skipped by the
store's unique key. Alerts the replay finds missing (fired, never committed, or a database that
was lost) are delivered only when their frame arrived within ``recent`` of now; older ones are
stored as "recovered", not sent: a restart never sends a trader alerts from hours ago.

The replay stops at ``end``, the recording's size when the bot started: the frames the new feed
records meanwhile are held by the pipeline and follow once the rebuild caught up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.alerts import Alert
from bot.engine.evaluate import Engine
from bot.kis.recording import parse_line
from bot.store.repo import Store
from bot.ticks import KST, FrameError, parse_frame

log = logging.getLogger(__name__)

RECENT = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Rebuilt:
    ticks: int  # replayed
    delivered: int  # missing alerts stored and sent
    recovered: int  # missing alerts stored as recovered, not sent


def recorded_frames(
    path: Path, day: date, start: int = 0, end: int | None = None
) -> Iterator[tuple[datetime, str]]:
    """``(receive time, frame)`` of the lines between byte offsets ``start`` and ``end``; a
    line cut at ``end`` (still being written) is left out, lines without a time get ``day``."""
    midnight = datetime.combine(day, datetime.min.time(), KST)
    with path.open("rb") as file:
        file.seek(start)
        position = start
        for raw in file:
            position += len(raw)
            if end is not None and position > end:
                return
            try:
                when, frame = parse_line(raw.decode("utf-8", errors="replace"))
            except ValueError:
                continue  # reported when it was recorded
            yield when or midnight, frame


def replay(
    engine: Engine, path: Path, day: date, start: int = 0, end: int | None = None
) -> tuple[int, list[tuple[Alert, datetime]]]:
    """Run the recorded frames through the engine: (ticks, alerts with their frame's time)."""
    ticks = 0
    fired: list[tuple[Alert, datetime]] = []
    for when, frame in recorded_frames(path, day, start, end):
        try:
            parsed = parse_frame(frame, when.astimezone(KST).date())
        except FrameError:
            continue  # the feed already reported it when it arrived
        fired += [(alert, when) for alert in engine.on_ticks(parsed)]
        ticks += len(parsed)
    return ticks, fired


def store_missing(
    store: Store, fired: list[tuple[Alert, datetime]], now: datetime, recent: timedelta = RECENT
) -> tuple[int, int]:
    """Store the alerts not stored yet: recent ones to be sent, older ones as recovered.
    Returns (delivered, recovered)."""
    old = [alert for alert, when in fired if when < now - recent]
    new = [alert for alert, when in fired if when >= now - recent]
    recovered = store.recover_alerts(old, now)
    delivered = store.insert_alerts(new, now)
    return len(delivered), len(recovered)


def rebuild(
    engine: Engine, store: Store, path: Path, day: date, *, end: int, now: datetime
) -> Rebuilt:
    """Replay ``path`` up to ``end`` and store what is missing (in a worker thread)."""
    if not path.is_file():
        return Rebuilt(0, 0, 0)
    ticks, fired = replay(engine, path, day, 0, end)
    delivered, recovered = store_missing(store, fired, now)
    log.info(
        "rebuild replayed file=%s ticks=%d alerts=%d missing_delivered=%d missing_recovered=%d",
        path,
        ticks,
        len(fired),
        delivered,
        recovered,
    )
    return Rebuilt(ticks, delivered, recovered)
