"""A clock for tests: time moves only when the test moves it (no sleeping)."""

from __future__ import annotations

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
