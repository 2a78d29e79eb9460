"""Engine snapshots: every ticker's rule states at one moment, as plain values, and their bytes.

``Engine.snapshot()`` copies what the engine holds (per ticker: the trading date; per rule, by its
definition key: the compiled state, with the alert that waits for its resolved event if any, and
the ``last`` and ``seq`` of its alerts and of its resolved events) into immutable values,
so the engine may run on while the copy is written out. ``encode``/``decode`` turn a snapshot into
JSON and back; ``decode`` validates every value (a file may be damaged or from another version)
and raises SnapshotError with the reason. Pure: no I/O (bot/checkpoint.py writes the files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import pydantic
import pydantic_core

from bot.alerts import Alert
from bot.engine.compiler import Frozen, State
from bot.ticks import Tick

#: Layout of the encoded form and of the rules' states in it: bump it when either changes (a
#: compiler change to a rule's state variables changes the layout), so old snapshots are refused.
LAYOUT = 2

Scalar = bool | int | None  # what a state holds besides its windows and an open alert


class SnapshotError(ValueError):
    """A snapshot that cannot be restored; the message says why."""


class RuleSnapshot(NamedTuple):
    """One rule's state for one ticker, and its cooldown: the second of its last alert, its seq
    (and the same for its resolved events)."""

    state: Frozen
    last: int | None
    seq: int
    resolved_last: int | None = None
    resolved_seq: int = 0


Counters = tuple[int | None, int, int | None, int]  # last, seq, resolved_last, resolved_seq


@dataclass(frozen=True, slots=True)
class TickerSnapshot:
    """One ticker's trading date and its rules, in parallel (cheap to take on the event loop)."""

    day: date
    keys: tuple[str, ...]  # the rules' definition keys
    states: tuple[Frozen, ...]
    cooldowns: tuple[Counters, ...]

    def rules(self) -> dict[str, RuleSnapshot]:
        """Each rule's state and cooldown, by definition key."""
        return {
            key: RuleSnapshot(state, *counters)
            for key, state, counters in zip(self.keys, self.states, self.cooldowns, strict=True)
        }

    @classmethod
    def of(cls, day: date, rules: Mapping[str, RuleSnapshot]) -> TickerSnapshot:
        return cls(
            day,
            tuple(rules),
            tuple(rule.state for rule in rules.values()),
            tuple(
                (rule.last, rule.seq, rule.resolved_last, rule.resolved_seq)
                for rule in rules.values()
            ),
        )


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    tickers: Mapping[str, TickerSnapshot]


def thaw(frozen: Frozen, fresh: State) -> State:
    """A frozen state made live again, shaped like ``fresh`` (the rule's fresh state).

    Raises SnapshotError when the shapes differ: the snapshot was made for another layout.
    """
    if len(frozen) != len(fresh):
        raise SnapshotError(f"a state of {len(frozen)} values where {len(fresh)} belong")
    thawed: list[object] = []
    for saved, like in zip(frozen, fresh, strict=True):
        if isinstance(like, list) != isinstance(saved, list) or (
            isinstance(saved, Alert) and like is not None
        ):
            raise SnapshotError(f"state value {saved!r:.40} does not fit {like!r:.40}")
        thawed.append(list(saved) if isinstance(saved, list) else saved)
    return tuple(thawed)


# The encoded form. Definition keys are long: each is written once, rules refer to its index.
_STRICT = pydantic.ConfigDict(strict=True, extra="forbid", frozen=True)


class _OpenAlert(pydantic.BaseModel):
    """An alert that waits for its resolved event: its tick, value, message and seq."""

    model_config = _STRICT

    rule: str
    tick: tuple[str, date, str, int, int, int, int, int, int, int, int, int, int]
    value: int
    message: str
    seq: int

    @classmethod
    def of(cls, alert: Alert) -> dict[str, object]:
        return {
            "open": {
                "rule": alert.rule,
                "tick": [*alert.tick[:1], alert.tick.day.isoformat(), *alert.tick[2:]],
                "value": alert.value,
                "message": alert.message,
                "seq": alert.seq,
            }
        }

    def alert(self) -> Alert:
        tick = Tick(*self.tick)
        return Alert(self.rule, tick.ticker, tick, self.value, self.message, self.seq)


class _Open(pydantic.BaseModel):
    model_config = _STRICT

    open: _OpenAlert


class _Ticker(pydantic.BaseModel):
    model_config = _STRICT

    ticker: str
    day: date
    # (index into rules, last, seq, state, resolved_last, resolved_seq)
    rules: list[tuple[int, int | None, int, list[Scalar | list[int] | _Open], int | None, int]]


class _Snapshot(pydantic.BaseModel):
    model_config = _STRICT

    layout: int
    rules: list[str]
    tickers: list[_Ticker]


def encode(snapshot: EngineSnapshot) -> bytes:
    """The snapshot as compact JSON (UTF-8).

    Each ticker is encoded on its own: json's encoder holds the GIL while it runs, and an
    encoding in a worker thread should not hold up the event loop for the whole snapshot.
    """
    index: dict[str, int] = {}
    tickers = [_ticker_json(ticker, saved, index) for ticker, saved in snapshot.tickers.items()]
    text = f'{{"layout":{LAYOUT},"rules":{_json(list(index))},"tickers":[{",".join(tickers)}]}}'
    return text.encode()


def _ticker_json(ticker: str, saved: TickerSnapshot, index: dict[str, int]) -> str:
    rules = [
        [index.setdefault(key, len(index)), last, seq, state, resolved_last, resolved_seq]
        for key, state, (last, seq, resolved_last, resolved_seq) in zip(
            saved.keys, saved.states, saved.cooldowns, strict=True
        )
    ]
    return _json({"ticker": ticker, "day": saved.day.isoformat(), "rules": rules})


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_window)


def _window(value: object) -> object:
    """JSON for what json does not know: an open alert is an object."""
    if isinstance(value, Alert):
        return _OpenAlert.of(value)
    raise TypeError(f"no JSON form for a state value of type {type(value).__name__}")


def decode(data: bytes) -> EngineSnapshot:
    """A snapshot from ``encode``'s bytes. Raises SnapshotError saying what is wrong."""
    try:
        parsed = _Snapshot.model_validate_json(data)
    except pydantic.ValidationError as exc:
        _refuse_other_layout(data)
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SnapshotError(
            f"not a snapshot of layout {LAYOUT}: {where}: {first['msg']}"
            f" ({exc.error_count()} problems)"
        ) from None
    if parsed.layout != LAYOUT:
        raise SnapshotError(f"snapshot layout {parsed.layout}, this bot reads layout {LAYOUT}")
    return _snapshot(parsed)


def _refuse_other_layout(data: bytes) -> None:
    """Say "another layout" rather than its first mismatch when the data says so."""
    try:
        plain = pydantic_core.from_json(data)
    except ValueError:
        return
    layout = plain.get("layout") if isinstance(plain, dict) else None
    if type(layout) is int and layout != LAYOUT:
        raise SnapshotError(f"snapshot layout {layout!r:.20}, this bot reads layout {LAYOUT}")


def _snapshot(parsed: _Snapshot) -> EngineSnapshot:
    keys = parsed.rules
    tickers: dict[str, TickerSnapshot] = {}
    for n, saved in enumerate(parsed.tickers):
        if saved.ticker in tickers:
            raise SnapshotError(f"tickers.{n}: ticker {saved.ticker!r} appears twice")
        rules: dict[str, RuleSnapshot] = {}
        for index, last, seq, state, resolved_last, resolved_seq in saved.rules:
            if not 0 <= index < len(keys) or keys[index] in rules:
                raise SnapshotError(f"tickers.{n}: rule index {index} is unknown or repeated")
            frozen: Frozen = tuple(_thawed_value(v, saved) for v in state)  # type: ignore[misc]
            rules[keys[index]] = RuleSnapshot(frozen, last, seq, resolved_last, resolved_seq)
        tickers[saved.ticker] = TickerSnapshot.of(saved.day, rules)
    return EngineSnapshot(tickers)


def _thawed_value(value: Scalar | list[int] | _Open, ticker: _Ticker) -> object:
    """A state value as the engine holds it: a window a list, an open alert an Alert (of the
    ticker and day it is saved under: anything else is damage)."""
    if isinstance(value, list):
        return value
    if isinstance(value, _Open):
        tick = value.open.tick
        if tick[0] != ticker.ticker or tick[1] != ticker.day:
            raise SnapshotError(f"an open alert of {tick[0]} {tick[1]} saved under another stock")
        return value.open.alert()
    return value
