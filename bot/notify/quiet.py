"""A chat's quiet hours: ``22:00-07:00`` (KST), a range that may cross midnight. Alerts in it
are delivered without sound (Telegram's ``disable_notification``), never held back.

Each end is a minute as in the rules' ``hours`` (bot/market/sessions.py ``MinuteRange``):
``22:00-07:00`` is 22:00:00 through 07:00:59.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.market.sessions import MinuteRange
from bot.ticks import KST

log = logging.getLogger(__name__)

_LAST_MINUTE = 23 * 60 + 59


@dataclass(frozen=True, slots=True)
class QuietHours:
    first: int  # minute of the day it starts (0 = 00:00)
    last: int  # minute it ends with (before ``first``: the range crosses midnight)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"22:00-07:00"`` or ``"12:00-13:00"``; ValueError in plain words otherwise."""
        cleaned = text.strip()
        start, dash, end = cleaned.partition("-")
        if not dash:
            raise ValueError(f"{text!r} is not a range of times like 22:00-07:00")
        first = MinuteRange.parse(f"{start}-{start}").first  # each end checked the same way
        last = MinuteRange.parse(f"{end}-{end}").first
        return cls(first, last)

    def ranges(self) -> tuple[MinuteRange, ...]:
        if self.first <= self.last:
            return (MinuteRange(self.first, self.last),)
        return (MinuteRange(self.first, _LAST_MINUTE), MinuteRange(0, self.last))

    def holds(self, moment: datetime) -> bool:
        """Whether ``moment`` (any timezone, read in KST) falls in the quiet hours."""
        local = moment.astimezone(KST)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return any(minutes.holds(seconds) for minutes in self.ranges())

    def __str__(self) -> str:
        return f"{_hhmm(self.first)}-{_hhmm(self.last)}"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def quiet_hours(stored: str | None) -> QuietHours | None:
    """Quiet hours as stored; None for none (or a value that no longer parses: loud)."""
    if stored is None:
        return None
    try:
        return QuietHours.parse(stored)
    except ValueError:
        log.warning("stored quiet hours unreadable, ignored quiet=%r", stored[:20])
        return None
