"""The engine: ticks in, alerts out. Pure and synchronous: no clock, no I/O, no asyncio.

Per ticker and trading date the engine holds one step function compiled from the rules that apply
to that ticker (bot.engine.compiler), with every rule's rolling state inside it; a new date builds
a fresh one (values are day-cumulative). Cooldowns and alert numbering live here, in ``Firing``:
they run only when a rule has a candidate. The semantics are docs/RULES-SPEC.md's, restated in
docs/RULES.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date

from bot.alerts import Alert
from bot.engine.compiler import (
    NO_ALERTS,
    Export,
    State,
    Step,
    compile_rules,
    fresh_state,
)
from bot.engine.rule_types import AnyRule, RuleSet
from bot.engine.templates import render
from bot.ticks import Tick


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


def definition_key(rule: AnyRule) -> str:
    """Equal keys mean equal firing behaviour (message and description do not count)."""
    return json.dumps(rule.definition(), sort_keys=True, default=str)


class _Ticker:
    """One ticker's compiled step for one trading date, and what a reload carries over."""

    __slots__ = ("day", "export", "firings", "keys", "step")

    def __init__(
        self, day: date, keys: list[str], firings: list[Firing], step: Step, export: Export
    ) -> None:
        self.day = day
        self.keys = keys  # definition keys of the step's rules, in order
        self.firings = firings
        self.step = step
        self.export = export  # the rules' states, in order

    def kept(self) -> dict[str, tuple[State, Firing]]:
        """Each rule's state and firing, by definition key."""
        return dict(zip(self.keys, zip(self.export(), self.firings, strict=True), strict=True))


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
        kept = old.kept() if old is not None else {}
        applicable = self._applicable(ticker)
        states: list[State] = []
        firings: list[Firing] = []
        for key, rule in applicable:
            state, firing = kept.get(key) or (fresh_state(rule), Firing(rule))
            firing.rule = rule  # same behaviour; maybe a new message or description
            states.append(state)
            firings.append(firing)
        rules = [rule for _, rule in applicable]
        step, export = compile_rules(rules)([f.fire for f in firings], states)
        built = _Ticker(day, [key for key, _ in applicable], firings, step, export)
        self._tickers[ticker] = built
        return built

    def on_tick(self, tick: Tick) -> list[Alert]:
        return self.on_ticks((tick,))

    def on_ticks(self, ticks: Iterable[Tick]) -> list[Alert]:
        """The alerts of several ticks in order (a frame's records): one call for all of them."""
        alerts = NO_ALERTS
        tickers = self._tickers
        for tick in ticks:
            state = tickers.get(tick.ticker)
            if state is None or state.day != tick.day:
                state = self._build(tick.ticker, tick.day)
            fired = state.step(tick)
            if fired:
                alerts = [*alerts, *fired]
        return alerts

    def replace_rules(self, ruleset: RuleSet) -> None:
        """Swap in a new rule set between two ticks; unchanged rules keep their state.

        A rule whose definition changed (or a new one) starts fresh: a crossing needs a previous
        tick first, a window fills again, a cooldown starts over.
        """
        self._set_rules(ruleset)
        for ticker, old in list(self._tickers.items()):
            self._build(ticker, old.day, old)
