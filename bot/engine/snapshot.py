"""Engine snapshots: every ticker's rule states at one moment, as plain values, and their bytes.

``Engine.snapshot()`` copies what the engine holds (per ticker: the trading date; per rule, by its
definition key: the compiled state and the cooldown's ``last`` and ``seq``) into immutable values,
so the engine may run on while the copy is written out. ``encode``/``decode`` turn a snapshot into
JSON and back; ``decode`` validates every value (a file may be damaged or from another version)
and raises SnapshotError with the reason. Pure: no I/O (bot/checkpoint.py writes the files).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import pydantic
import pydantic_core

from bot.engine.compiler import Frozen, State

#: Layout of the encoded form and of the rules' states in it: bump it when either changes (a
#: compiler change to a rule's state variables changes the layout), so old snapshots are refused.
LAYOUT = 1

Scalar = bool | int | None  # what a state holds besides its windows (deques of ints)


class SnapshotError(ValueError):
    """A snapshot that cannot be restored; the message says why."""


class RuleSnapshot(NamedTuple):
    """One rule's state for one ticker, and its cooldown: the second of its last alert, its seq."""

    state: Frozen
    last: int | None
    seq: int


@dataclass(frozen=True, slots=True)
class TickerSnapshot:
    """One ticker's trading date and its rules, in parallel (cheap to take on the event loop)."""

    day: date
    keys: tuple[str, ...]  # the rules' definition keys
    states: tuple[Frozen, ...]
    cooldowns: tuple[tuple[int | None, int], ...]  # (last, seq)

    def rules(self) -> dict[str, RuleSnapshot]:
        """Each rule's state and cooldown, by definition key."""
        return {
            key: RuleSnapshot(state, last, seq)
            for key, state, (last, seq) in zip(self.keys, self.states, self.cooldowns, strict=True)
        }

    @classmethod
    def of(cls, day: date, rules: Mapping[str, RuleSnapshot]) -> TickerSnapshot:
        return cls(
            day,
            tuple(rules),
            tuple(rule.state for rule in rules.values()),
            tuple((rule.last, rule.seq) for rule in rules.values()),
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
        if isinstance(like, deque) != isinstance(saved, deque):
            raise SnapshotError(f"state value {saved!r:.40} does not fit {like!r:.40}")
        thawed.append(deque(saved) if isinstance(saved, deque) else saved)
    return tuple(thawed)


# The encoded form. Definition keys are long: each is written once, rules refer to its index.
_STRICT = pydantic.ConfigDict(strict=True, extra="forbid", frozen=True)


class _Ticker(pydantic.BaseModel):
    model_config = _STRICT

    ticker: str
    day: date
    # (index into rules, last, seq, state)
    rules: list[tuple[int, int | None, int, list[Scalar | list[int]]]]


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
        [index.setdefault(key, len(index)), last, seq, state]
        for key, state, (last, seq) in zip(saved.keys, saved.states, saved.cooldowns, strict=True)
    ]
    return _json({"ticker": ticker, "day": saved.day.isoformat(), "rules": rules})


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_window)


def _window(value: object) -> list[object]:
    """JSON for what json does not know: a window (deque) is a list."""
    if isinstance(value, deque):
        return list(value)
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
        for index, last, seq, state in saved.rules:
            if not 0 <= index < len(keys) or keys[index] in rules:
                raise SnapshotError(f"tickers.{n}: rule index {index} is unknown or repeated")
            frozen = tuple(deque(v) if isinstance(v, list) else v for v in state)
            rules[keys[index]] = RuleSnapshot(frozen, last, seq)
        tickers[saved.ticker] = TickerSnapshot.of(saved.day, rules)
    return EngineSnapshot(tickers)
