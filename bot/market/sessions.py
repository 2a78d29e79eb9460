"""Times of day in whole minutes, and the trading sessions by name.

A range ``"09:00-15:30"`` takes in its first minute through its last minute, both included:
09:00:00 to 15:30:59. The names ``pre``, ``regular`` and ``after`` mean the defaults below unless
the config's ``market.sessions`` redefines them (rules' ``hours`` then follow the config).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_RANGE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


@dataclass(frozen=True, slots=True)
class MinuteRange:
    """Minutes of the day ``first`` through ``last`` (both included), 0 = 00:00."""

    first: int
    last: int

    @classmethod
    def parse(cls, text: str) -> MinuteRange:
        """``"HH:MM-HH:MM"`` -> a range; ValueError in plain words for anything else."""
        match = _RANGE.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a range of times like 09:00-15:30")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"{text!r} has a time that does not exist (00:00 to 23:59)")
        first, last = h1 * 60 + m1, h2 * 60 + m2
        if last < first:
            raise ValueError(f"{text!r} ends before it starts")
        return cls(first, last)

    def holds(self, seconds_of_day: int) -> bool:
        """Whether a time (seconds after midnight) falls in this range."""
        return self.first * 60 <= seconds_of_day < (self.last + 1) * 60

    @property
    def start_seconds(self) -> int:
        return self.first * 60

    @property
    def end_seconds(self) -> int:
        """The first second after the range."""
        return (self.last + 1) * 60

    def __str__(self) -> str:
        return f"{_hhmm(self.first)}-{_hhmm(self.last)}"


#: The session names rules may use in ``hours``, in the order of the day.
SESSION_NAMES = ("pre", "regular", "after")

#: The defaults of rules-spec.md: NXT pre-market (and the minutes before the open), the KRX/NXT
#: regular session with its closing auction, the NXT after-market.
DEFAULT_SESSIONS: Mapping[str, MinuteRange] = {
    "pre": MinuteRange.parse("08:00-08:59"),
    "regular": MinuteRange.parse("09:00-15:30"),
    "after": MinuteRange.parse("15:31-20:00"),
}

#: How a Korean trader calls each session.
SESSION_LABELS_KO: Mapping[str, str] = {
    "pre": "프리마켓",
    "regular": "정규장",
    "after": "애프터마켓",
}


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
