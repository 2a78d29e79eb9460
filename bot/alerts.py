"""The Alert: what the engine emits when a rule fires, and what the store and notifiers carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from bot.ticks import Tick


class FiredOnTick:
    """What an alert, stored or about to be sent, tells of the tick it fired on."""

    __slots__ = ()
    tick: Tick  # all 11 columns

    @property
    def day(self) -> date:
        """Trading date, KST."""
        return self.tick.day

    @property
    def time(self) -> datetime:
        """Tick time, KST (ISO 8601 with +09:00 via ``.isoformat()``)."""
        return self.tick.time

    @property
    def columns(self) -> dict[str, int | str]:
        """The tick's 11 columns by KIS name."""
        return self.tick.columns()


#: "fired": a rule fired; "resolved": what made an earlier alert of the rule (``resolves``) ended.
Kind = Literal["fired", "resolved"]


@dataclass(frozen=True, slots=True)
class Alert(FiredOnTick):
    """An event of a rule on one tick: a fired alert, or the resolved event of one.

    ``(rule, ticker, day, time, seq, kind)`` is the store's unique key.
    """

    rule: str  # rule id
    ticker: str
    tick: Tick  # the tick that fired it (all 11 columns)
    value: int  # the rule's field in that tick
    message: str  # rendered template, plain text (notifiers escape it)
    # 0 for the first alert of (rule, ticker) at this tick second, 1 for the next, ...: with
    # (rule, ticker, day, time) it makes the store's unique key, deterministic under replay.
    seq: int = 0
    kind: Kind = "fired"
    # For a resolved event: the fired alert it resolves (same rule, ticker and trading date).
    resolves: Alert | None = None

    def as_json(self) -> dict[str, object]:
        """The replay --json record: rule, ticker, time, value, kind, message."""
        return {
            "rule": self.rule,
            "ticker": self.ticker,
            "time": self.time.isoformat(),
            "value": self.value,
            "kind": self.kind,
            "message": self.message,
        }
