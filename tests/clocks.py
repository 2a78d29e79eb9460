"""Clocks for tests: time moves only when the test moves it (no sleeping); and a watch on the
event loop's stalls."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime


class Clock:
    """A monotonic-style clock the test moves by hand (``clock.now += 5``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class WallClock:
    """A wall clock (aware datetimes) the test moves by hand (``clock.now += timedelta(...)``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class LoopWatch:
    """Beats every ``beat`` seconds on the loop and keeps the longest gap: how long the loop was
    stalled. ``with LoopWatch() as watch: ...`` then ``watch.longest``."""

    def __init__(self, beat: float = 0.005) -> None:
        self.beat = beat
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.beat)
            now = time.monotonic()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> LoopWatch:
        self._task = asyncio.get_running_loop().create_task(self._beat())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
