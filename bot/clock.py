"""The wall clock, in one place: what parts that need "now" take by default (tests inject their
own). Tick time is not this: it comes from the exchange (bot.ticks)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, timezone-aware, in UTC (the store keeps UTC)."""
    return datetime.now(UTC)
