"""Recorded frames, paced for the simulator's replay mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from bot.kis.recording import read_recording
from bot.kis.simulator.protocol import split_records
from bot.ticks import FrameError

log = logging.getLogger(__name__)


def replay_gap(
    previous: datetime | None, when: datetime | None, *, speed: float, rate: float
) -> float:
    """Seconds to wait before a frame: the recorded gap / speed; 1/rate / speed when a line
    has no time; never for speed 0 (as fast as possible)."""
    if speed == 0:
        return 0.0
    gap = 1 / rate
    if previous is not None and when is not None:
        gap = max((when - previous).total_seconds(), 0.0)
    return gap / speed


async def paced_frames(
    path: Path, *, speed: float, rate: float
) -> AsyncIterator[tuple[str, list[list[str]]]]:
    """Each usable recorded frame as ``(tr_id, records as field lists)``, at its pace.

    Lines that are not plain data frames are logged with their line number and skipped.
    """
    previous: datetime | None = None
    sent = skipped = 0
    for number, when, frame in read_recording(path):
        await asyncio.sleep(replay_gap(previous, when, speed=speed, rate=rate))
        previous = when or previous
        try:
            records = split_records(frame)
        except FrameError as exc:
            skipped += 1
            log.warning("replay line skipped file=%s line=%d reason=%s", path, number, exc)
            continue
        sent += 1
        yield records
    log.info("replay pass finished file=%s frames=%d skipped=%d", path, sent, skipped)
