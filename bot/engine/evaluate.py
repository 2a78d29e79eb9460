"""The engine: ticks in, alerts out. Pure and synchronous: no clock, no I/O, no asyncio.

Per ticker and trading date the engine holds one step function compiled from the rules that apply
to that ticker (bot.engine.compiler), with every rule's rolling state inside it; a new date builds
a fresh one (values are day-cumulative). Cooldowns and alert numbering live here, in ``Firing``:
they run only when a rule has a candidate. ``snapshot()`` copies all of it and ``restore()``
reinstates a copy (bot.engine.snapshot), so a restart can resume from a checkpoint. The semantics
are docs/RULES-SPEC.md's, restated in docs/RULES.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date

from bot.alerts import Alert
from bot.engine.compiler import (
    NO_ALERTS,
    Export,
    Freeze,
    State,
    Step,
    compile_rules,
    fresh_state,
)
from bot.engine.rule_types import AnyRule, RuleSet
from bot.engine.snapshot import EngineSnapshot, TickerSnapshot, thaw
from bot.engine.templates import render, render_resolved
from bot.ticks import Tick

Names = Callable[[str], str]


def bare_code(ticker: str) -> str:
    """A stock's label when no directory of names is given: its code."""
    return ticker


class Firing:
    """Cooldown and the events' ``seq`` for one (rule, ticker): turns a candidate into an Alert,
    and an open alert into its resolved event."""

    __slots__ = ("last", "names", "resolved_last", "resolved_seq", "rule", "seq")

    def __init__(
        self,
        rule: AnyRule,
        last: int | None = None,
        seq: int = 0,
        resolved: tuple[int | None, int] = (None, 0),
        names: Names = bare_code,
    ) -> None:
        self.rule = rule  # replaced on reload when only the message or description changed
        self.last = last  # tick second of the last alert
        self.seq = seq
        # The same for resolved events (their own numbering: they are stored by kind too).
        self.resolved_last, self.resolved_seq = resolved
        self.names = names

    def fire(self, tick: Tick, value: int, extra: Mapping[str, float | None]) -> Alert | None:
        """An Alert, or None when the candidate falls within the cooldown (dropped)."""
        t = tick.seconds
        last = self.last
        if last is not None and t < last + self.rule.cooldown:
            return None
        self.seq = self.seq + 1 if last == t else 0
        self.last = t
        message = render(self.rule, tick, value, extra, self.names(tick.ticker))
        return Alert(self.rule.id, tick.ticker, tick, value, message, self.seq)

    def resolve(
        self, tick: Tick, value: int, fired: Alert, extra: Mapping[str, float | None]
    ) -> Alert:
        """The resolved event of ``fired`` on ``tick`` (no cooldown holds it back)."""
        t = tick.seconds
        self.resolved_seq = self.resolved_seq + 1 if self.resolved_last == t else 0
        self.resolved_last = t
        stock = self.names(tick.ticker)
        message = render_resolved(self.rule, tick, value, extra, fired, stock)
        return Alert(
            self.rule.id, tick.ticker, tick, value, message, self.resolved_seq, "resolved", fired
        )

    @property
    def counters(self) -> tuple[int | None, int, int | None, int]:
        """What a snapshot keeps of it: (last, seq) of alerts and of resolved events."""
        return (self.last, self.seq, self.resolved_last, self.resolved_seq)


def definition_key(rule: AnyRule) -> str:
    """Equal keys mean equal firing behaviour (message and description do not count)."""
    return json.dumps(rule.definition(), sort_keys=True, default=str)


def rules_key(ruleset: RuleSet) -> str:
    """A digest of what the enabled rules fire on: equal keys, equal engine behaviour (a state
    saved under one key fits a rule set of the same key)."""
    keys = sorted(definition_key(rule) for rule in ruleset.enabled)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


class _Ticker:
    """One ticker's compiled step for one trading date, and what a reload carries over."""

    __slots__ = ("day", "export", "firings", "freeze", "keys", "step")

    def __init__(
        self,
        day: date,
        keys: tuple[str, ...],
        firings: list[Firing],
        compiled: tuple[Step, Export, Freeze],
    ) -> None:
        self.day = day
        self.keys = keys  # definition keys of the step's rules, in order
        self.firings = firings
        self.step, self.export, self.freeze = compiled  # freeze: the states, copied

    def kept(self) -> dict[str, tuple[State, Firing]]:
        """Each rule's state and firing, by definition key."""
        return dict(zip(self.keys, zip(self.export(), self.firings, strict=True), strict=True))

    def snapshot(self) -> TickerSnapshot:
        """A copy of each rule's state and cooldown."""
        cooldowns = tuple([firing.counters for firing in self.firings])
        return TickerSnapshot(self.day, self.keys, self.freeze(), cooldowns)


class Engine:
    """Evaluates rules on ticks: ``on_tick(tick) -> list[Alert]``, in firing order.

    ``names`` gives a stock's label for messages (``{stock}``: 삼성전자(005930)); default: the
    code."""

    def __init__(self, ruleset: RuleSet, names: Names | None = None) -> None:
        self._tickers: dict[str, _Ticker] = {}
        self._names = names or bare_code
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

    def _build(
        self, ticker: str, day: date, kept: Mapping[str, tuple[State, Firing]] | None = None
    ) -> _Ticker:
        """The ticker's step for ``day``: ``kept`` states by definition key, fresh ones else."""
        kept = kept or {}
        applicable = self._applicable(ticker)
        states: list[State] = []
        firings: list[Firing] = []
        for key, rule in applicable:
            state, firing = kept.get(key) or (fresh_state(rule), Firing(rule, names=self._names))
            firing.rule = rule  # same behaviour; maybe a new message or description
            states.append(state)
            firings.append(firing)
        rules = [rule for _, rule in applicable]
        compiled = compile_rules(rules)(
            [f.fire for f in firings], states, [f.resolve for f in firings]
        )
        return _Ticker(day, tuple(key for key, _ in applicable), firings, compiled)

    def on_tick(self, tick: Tick) -> list[Alert]:
        return self.on_ticks((tick,))

    def on_ticks(self, ticks: Iterable[Tick]) -> list[Alert]:
        """The alerts of several ticks in order (a frame's records): one call for all of them."""
        alerts = NO_ALERTS
        tickers = self._tickers
        for tick in ticks:
            state = tickers.get(tick.ticker)
            if state is None or state.day != tick.day:
                state = tickers[tick.ticker] = self._build(tick.ticker, tick.day)
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
            self._tickers[ticker] = self._build(ticker, old.day, old.kept())

    def snapshot(self) -> EngineSnapshot:
        """A copy of everything the engine holds, for ``restore``: quick enough to take between
        two ticks, and independent of the engine afterwards (the windows are copied)."""
        return EngineSnapshot({ticker: t.snapshot() for ticker, t in self._tickers.items()})

    def restore(self, snapshot: EngineSnapshot) -> None:
        """Continue from ``snapshot`` instead of what the engine holds, under the current rules.

        As on a reload, a rule whose definition key is not in the snapshot starts fresh, and a
        snapshot's rule that is not among the current ones is dropped. Raises SnapshotError (and
        changes nothing) when a saved state does not fit its rule.
        """
        tickers: dict[str, _Ticker] = {}
        for ticker, saved in snapshot.tickers.items():
            kept: dict[str, tuple[State, Firing]] = {}
            rules = saved.rules()
            for key, rule in self._applicable(ticker):
                found = rules.get(key)
                if found is not None:
                    state = thaw(found.state, fresh_state(rule))
                    counters = (found.resolved_last, found.resolved_seq)
                    firing = Firing(rule, found.last, found.seq, counters, self._names)
                    kept[key] = (state, firing)
            tickers[ticker] = self._build(ticker, saved.day, kept)
        self._tickers = tickers
