"""The engine: ticks in, alerts out. Pure and synchronous: no clock, no I/O, no asyncio.

Each (rule, ticker) gets a small step function holding that pair's rolling state in its closure,
built when the ticker is first seen on a trading date; a new date builds fresh ones (values are
day-cumulative). Per tick the engine runs the ticker's steps; the common path is a comparison.
The semantics are rules-spec's, restated in docs/RULES.md.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date

from bot.alerts import Alert
from bot.engine.spec import ChangeRule, RuleSet, SignFlipRule, ThresholdRule
from bot.engine.templates import render
from bot.ticks import FIELD_INDEX, Tick

AnyRule = ThresholdRule | SignFlipRule | ChangeRule
_NONE: list[Alert] = []  # returned when nothing fires; callers only read it
Step = Callable[[Tick], Alert | None]


class Firing:
    """Cooldown and the alert's ``seq`` for one (rule, ticker): turns a candidate into an Alert."""

    __slots__ = ("last", "rule", "seq")

    def __init__(self, rule: AnyRule) -> None:
        self.rule = rule  # replaced on reload when only the message or description changed
        self.last: int | None = None  # tick second of the last alert
        self.seq = 0

    def fire(self, tick: Tick, value: int, extra: Mapping[str, float | None]) -> Alert | None:
        """An Alert, or None when the candidate falls within the cooldown (dropped)."""
        t = tick.seconds
        last = self.last
        if last is not None and t < last + self.rule.cooldown:
            return None
        self.seq = self.seq + 1 if last == t else 0
        self.last = t
        message = render(self.rule, tick, value, extra)
        return Alert(self.rule.id, tick.ticker, tick, value, message, self.seq)


def _crossing(rule: ThresholdRule, firing: Firing) -> Step:
    index, x, above = FIELD_INDEX[rule.field], rule.threshold, rule.kind == "crosses_above"
    prev: int | None = None

    def step(tick: Tick) -> Alert | None:
        nonlocal prev
        value, before = tick[index], prev
        prev = value
        if before is None:
            return None
        if (before < x <= value) if above else (before > x >= value):
            return firing.fire(tick, value, {"threshold": x, "prev": before})
        return None

    return step


def _sign_flip(rule: SignFlipRule, firing: Firing) -> Step:
    index, min_abs, direction = FIELD_INDEX[rule.field], rule.min_abs, rule.direction
    sign = 0  # sign of the last qualifying value; 0 before the first

    def step(tick: Tick) -> Alert | None:
        nonlocal sign
        value = tick[index]
        if value == 0 or abs(value) < min_abs:
            return None  # does not qualify: leaves the sign unchanged
        before, sign = sign, (1 if value > 0 else -1)
        if before == 0 or before == sign:
            return None
        if direction == "any" or (direction == "to_positive") == (sign > 0):
            return firing.fire(tick, value, {"threshold": min_abs})
        return None

    return step


def _level(rule: ThresholdRule, firing: Firing) -> Step:
    """``above``/``below``: one candidate per run of ticks on which it holds, ``for`` seconds in.

    The run logic is written out here and in ``_change`` rather than shared through a callback:
    it runs for every tick of every state rule.
    """
    index, x, above, wait = (
        FIELD_INDEX[rule.field],
        rule.threshold,
        rule.kind == "above",
        rule.for_,
    )
    extra = {"threshold": x}
    start: int | None = None
    spent = False

    def step(tick: Tick) -> Alert | None:
        nonlocal start, spent
        value = tick[index]
        if not (value > x if above else value < x):
            start = None
            return None
        t = tick.seconds
        if start is None:
            start, spent = t, False
        if spent or t - start < wait:
            return None
        spent = True
        return firing.fire(tick, value, extra)

    return step


def _change(rule: ChangeRule, firing: Firing) -> Step:
    """``change``: value against the window's baseline; one candidate per run, like ``_level``."""
    index, span, needed, wait = FIELD_INDEX[rule.field], rule.window, rule.amount_needed, rule.for_
    rising = rule.rise is not None
    # The window, only as long as it needs to be: tick seconds and values side by side.
    times: deque[int] = deque()
    values: deque[int] = deque()
    start: int | None = None
    spent = False

    def step(tick: Tick) -> Alert | None:
        nonlocal start, spent
        t, value = tick.seconds, tick[index]
        times.append(t)
        values.append(value)
        oldest = t - span
        while times[0] < oldest:  # stops at the current tick at the latest
            times.popleft()
            values.popleft()
        moved = value - values[0]
        if not ((moved >= needed) if rising else (-moved >= needed)):
            start = None
            return None
        if start is None:
            start, spent = t, False
        if spent or t - start < wait:
            return None
        spent = True
        return firing.fire(
            tick, value, {"threshold": needed, "baseline": values[0], "change": moved}
        )

    return step


def make_step(rule: AnyRule, firing: Firing) -> Step:
    """The step function of ``rule`` for one ticker, with fresh state."""
    if isinstance(rule, ThresholdRule):
        return _crossing(rule, firing) if rule.kind.startswith("crosses") else _level(rule, firing)
    if isinstance(rule, SignFlipRule):
        return _sign_flip(rule, firing)
    return _change(rule, firing)


def definition_key(rule: AnyRule) -> str:
    """Equal keys mean equal firing behaviour (message and description do not count)."""
    return json.dumps(rule.definition(), sort_keys=True, default=str)


class _Ticker:
    """One ticker's steps for one trading date."""

    __slots__ = ("day", "parts", "steps")

    def __init__(self, day: date) -> None:
        self.day = day
        self.parts: dict[str, tuple[Step, Firing]] = {}  # definition key -> step, firing
        self.steps: list[Step] = []


class Engine:
    """Evaluates rules on ticks: ``on_tick(tick) -> list[Alert]``, in firing order."""

    def __init__(self, ruleset: RuleSet) -> None:
        self._tickers: dict[str, _Ticker] = {}
        self._set_rules(ruleset)

    def _set_rules(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._rules = [(definition_key(rule), rule) for rule in ruleset.enabled]
        self._for_ticker: dict[str, list[tuple[str, AnyRule]]] = {}

    def _applicable(self, ticker: str) -> list[tuple[str, AnyRule]]:
        rules = self._for_ticker.get(ticker)
        if rules is None:
            rules = [(k, r) for k, r in self._rules if r.tickers is None or ticker in r.tickers]
            self._for_ticker[ticker] = rules
        return rules

    def _build(self, ticker: str, day: date, old: _Ticker | None = None) -> _Ticker:
        state = _Ticker(day)
        for key, rule in self._applicable(ticker):
            kept = old.parts.get(key) if old is not None else None
            if kept is not None:
                kept[1].rule = rule  # same behaviour; new message or description
                state.parts[key] = kept
            else:
                firing = Firing(rule)
                state.parts[key] = (make_step(rule, firing), firing)
            state.steps.append(state.parts[key][0])
        self._tickers[ticker] = state
        return state

    def on_tick(self, tick: Tick) -> list[Alert]:
        state = self._tickers.get(tick.ticker)
        if state is None or state.day != tick.day:
            state = self._build(tick.ticker, tick.day)
        alerts = _NONE
        for step in state.steps:
            alert = step(tick)
            if alert is not None:
                if alerts is _NONE:
                    alerts = []
                alerts.append(alert)
        return alerts

    def replace_rules(self, ruleset: RuleSet) -> None:
        """Swap in a new rule set between two ticks; unchanged rules keep their state.

        A rule whose definition changed (or a new one) starts fresh: a crossing needs a previous
        tick first, a window fills again, a cooldown starts over.
        """
        self._set_rules(ruleset)
        for ticker, old in list(self._tickers.items()):
            self._build(ticker, old.day, old)
