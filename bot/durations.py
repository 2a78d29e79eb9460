"""Durations, one grammar for rule files and chat commands: ``90`` (seconds), ``30s``, ``5m``,
``2h``, ``1d``, ``1h30m``, and the Korean units ``30초``, ``5분``, ``2시간``, ``1일``.

A chat's mute may also last ``오늘`` (``today``): until the end of the trading day, which the
caller works out from the market calendar (``is_today`` tells the word).

Parts go from big to small, each unit once. Numbers are bounded before they are multiplied, so
``9999999999d`` is refused as text, not overflowed.
"""

from __future__ import annotations

import re

_UNITS = {"d": 86400, "일": 86400, "h": 3600, "시간": 3600, "m": 60, "분": 60, "s": 1, "초": 1}
_ORDER = {"d": 0, "일": 0, "h": 1, "시간": 1, "m": 2, "분": 2, "s": 3, "초": 3}
_PART = re.compile(r"(\d{1,9})(시간|[dhms일분초])")
MAX_SECONDS = 10 * 365 * 86400  # no duration of pgmbot's needs more than ten years
TODAY_WORDS = frozenset({"오늘", "today"})  # "until the end of the trading day"
USAGE = "write seconds (90) or 30s, 5m, 2h, 1d, 1h30m (30분, 2시간, 1일)"


class DurationTooLong(ValueError):
    """A duration past ``MAX_SECONDS``."""


class DurationUnitOrder(ValueError):
    """A duration whose units repeat or come out of order (``1h1h``, ``30m1h``)."""


def parse_duration(value: object) -> int:
    """``90``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"1d"``, ``"2시간"`` -> seconds; ValueError
    saying why otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"a duration is a number of seconds or text: {USAGE}")
    if isinstance(value, int):
        seconds = value
    else:
        text = value.strip().replace(" ", "").lower()
        seconds = int(text) if text.isdigit() and len(text) <= 9 else _parts(value, text)
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_SECONDS:
        raise DurationTooLong("a duration of more than ten years is not one pgmbot needs")
    return seconds


def _parts(value: str, text: str) -> int:
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{_shown(value)} is not a duration: {USAGE}")
    order = [_ORDER[unit] for _, unit in parts]
    if order != sorted(set(order)):
        raise DurationUnitOrder(
            f"{_shown(value)}: give each unit once, from days to seconds (1h30m)"
        )
    return sum(int(n) * _UNITS[unit] for n, unit in parts)


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:39] + "…")


def is_today(text: str) -> bool:
    """``오늘`` / ``today``: not a length, a moment (the end of the trading day)."""
    return text.strip().lower() in TODAY_WORDS


_LATIN = {"d": "d", "h": "h", "m": "m", "s": "s"}
_KOREAN = {"d": "일", "h": "시간", "m": "분", "s": "초"}


def format_duration(seconds: int, *, korean: bool = False) -> str:
    """``5400`` -> ``1h30m`` (``1시간30분`` in Korean); ``90000`` -> ``1d1h``; ``0`` -> ``0s``.
    What it prints, ``parse_duration`` reads back to the same seconds."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s"))
    names = _KOREAN if korean else _LATIN
    return "".join(f"{n}{names[unit]}" for n, unit in units if n) or f"0{names['s']}"
