"""Exponential backoff, in one place: reconnects, Telegram polling, delivery retries, commits."""

from __future__ import annotations

import math
import random


def backoff_delay(attempt: int, minimum: float, maximum: float) -> float:
    """The delay before try number ``attempt + 1``: ``minimum`` doubled per attempt, capped."""
    return min(maximum, minimum * math.ldexp(1.0, min(max(attempt, 0), 30)))


class Backoff:
    """Exponential delays from ``minimum`` doubling to ``maximum``, with 0-25 % jitter (none
    when ``jitter`` is False: a retry whose time is stored, or a test)."""

    def __init__(
        self,
        minimum: float,
        maximum: float,
        rng: random.Random | None = None,
        *,
        jitter: bool = True,
    ) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self._rng = rng or random.Random()
        self._jitter = jitter
        self._attempt = 0

    def next(self) -> float:
        delay = backoff_delay(self._attempt, self.minimum, self.maximum)
        self._attempt += 1
        if self._jitter:
            delay = min(self.maximum, delay * self._rng.uniform(1.0, 1.25))
        return delay

    def reset(self) -> None:
        self._attempt = 0
