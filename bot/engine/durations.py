"""Durations in rule files: whole seconds, or `h`/`m`/`s` parts such as `1h30m`."""

from __future__ import annotations

import re

_PARTS = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: object) -> int:
    """``90``, ``"30s"``, ``"5m"``, ``"1h30m"`` -> seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 30s, 5m, 1h30m")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text.isdigit():
            return int(text)
        match = _PARTS.fullmatch(text)
        if text and match:
            hours, minutes, seconds = (int(part or 0) for part in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    raise ValueError(f"{value!r} is not a duration: write seconds (90) or 30s, 5m, 1h30m")


def format_duration(seconds: int) -> str:
    """``5400`` -> ``1h30m``; ``0`` -> ``0s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return text or "0s"
