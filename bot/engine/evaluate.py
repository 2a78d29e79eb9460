"""The engine: ticks in, alerts out. Pure and synchronous: no clock, no I/O, no asyncio.

Per ticker and trading date the engine holds the rules that apply to that ticker as compiled
parts (bot.engine.programs: compiled once per distinct part, shared by every ticker that runs
it), each bound to the ticker's own rolling state; a new date binds fresh ones (values are
day-cumulative). A new rule set is compiled off the caller's thread (``prepare``) and swapped in
between two ticks (``swap``); each ticker moves over on its next tick, unchanged rules with
their state. Cooldowns and alert numbering live here, in ``Firing``:
they run only when a rule has a candidate. ``snapshot()`` copies all of it and ``restore()``
reinstates a copy (bot.engine.snapshot), so a restart can resume from a checkpoint. The semantics
are docs/RULES-SPEC.md's, restated in docs/RULES.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from datetime import date

from bot.alerts import Alert
from bot.engine.compiler import NO_ALERTS, State, Step, fresh_state
from bot.engine.programs import (
    PART_SIZE,
    Part,
    Programs,
    definition_key,
    no_pause,
    rules_key,
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

    __call__ = fire  # the step function calls the firing itself: no bound method per rule

    @property
    def counters(self) -> tuple[int | None, int, int | None, int]:
        """What a snapshot keeps of it: (last, seq) of alerts and of resolved events."""
        return (self.last, self.seq, self.resolved_last, self.resolved_seq)


class _Bound:
    """One part bound to one ticker's state: its step function and each rule's firing."""

    __slots__ = ("export", "firings", "freeze", "part", "step")

    def __init__(
        self,
        part: Part,
        rules: list[AnyRule],
        kept: Mapping[str, tuple[State, Firing]],
        names: Names,
    ) -> None:
        """``kept``: states and firings by definition key; the others start fresh."""
        states: list[State] = []
        firings: list[Firing] = []
        for key, rule in zip(part.keys, rules, strict=True):
            found = kept.get(key)
            if found is None:
                state, firing = fresh_state(rule), Firing(rule, names=names)
            else:  # its lists copied: rules that shared a series may now be in two parts
                state = tuple(list(x) if isinstance(x, list) else x for x in found[0])
                firing = found[1]
            firing.rule = rule  # same behaviour; maybe a new message or description
            states.append(state)
            firings.append(firing)
        self.part = part
        self.firings = firings
        self.step, self.export, self.freeze = part.build.bind(firings, states)

    def renamed(self, rules: list[AnyRule]) -> _Bound:
        """The same part under a new rule set: only messages and descriptions may differ."""
        for firing, rule in zip(self.firings, rules, strict=True):
            firing.rule = rule
        return self


def _nothing(tick: Tick) -> list[Alert]:
    return NO_ALERTS


def _chained(steps: tuple[Step, ...], order: Mapping[str, int]) -> Step:
    """One step running several parts' steps; a tick's alerts in rule-set order."""
    if not steps:
        return _nothing
    if len(steps) == 1:
        return steps[0]
    if len(steps) == 2:  # the house rules and a stock's own: the common case, unrolled
        first, second = steps

        def pair(tick: Tick) -> list[Alert]:
            alerts, more = first(tick), second(tick)
            if not more:
                return alerts
            return _merged(alerts, more, order) if alerts else more

        return pair

    def step(tick: Tick) -> list[Alert]:
        alerts = NO_ALERTS
        for part in steps:
            fired = part(tick)
            if fired:
                alerts = fired if not alerts else _merged(alerts, fired, order)
        return alerts

    return step


def _merged(alerts: list[Alert], more: list[Alert], order: Mapping[str, int]) -> list[Alert]:
    """Two parts fired on one tick (rare): in the order of the rules in the rule set (a rule's
    fired and resolved events stay in the order it made them: the sort is stable)."""
    return sorted([*alerts, *more], key=lambda alert: order[alert.rule])


class _Ticker:
    """One ticker's bound parts for one trading date, run by one step function."""

    __slots__ = ("bound", "day", "programs", "step")

    def __init__(self, day: date, programs: Programs, bound: tuple[_Bound, ...]) -> None:
        self.day = day
        self.programs = programs  # the rules it was bound under
        self.bound = bound
        self.step = _chained(tuple(b.step for b in bound), programs.order)

    @classmethod
    def bind(
        cls,
        ticker: str,
        day: date,
        programs: Programs,
        names: Names,
        kept: Mapping[str, tuple[State, Firing]] | None = None,
        old: _Ticker | None = None,
    ) -> _Ticker:
        """``ticker``'s parts under ``programs``: a part ``old`` ran already is kept as it is
        (renamed), the others are bound to ``kept`` states by definition key, or fresh ones."""
        parts = programs.parts(ticker)
        reused = {id(b.part): b for b in old.bound} if old is not None else {}
        if old is not None and kept is None:  # the states of the parts that changed
            kept = old.kept(leaving={id(part) for part in parts})
        bound = []
        for part in parts:
            rules = programs.values(part.keys)
            same = reused.get(id(part))
            bound.append(same.renamed(rules) if same else _Bound(part, rules, kept or {}, names))
        return cls(day, programs, tuple(bound))

    def export(self) -> list[State]:
        """Each rule's live state, part after part."""
        return [state for b in self.bound for state in b.export()]

    def kept(self, leaving: Set[int] = frozenset()) -> dict[str, tuple[State, Firing]]:
        """Each rule's state and firing, by definition key; but those of the parts whose ids
        are in ``leaving`` (they are kept as they are)."""
        return {
            key: (state, firing)
            for b in self.bound
            if id(b.part) not in leaving
            for key, state, firing in zip(b.part.keys, b.export(), b.firings, strict=True)
        }

    def snapshot(self) -> TickerSnapshot:
        """A copy of each rule's state and cooldown."""
        keys = tuple(key for b in self.bound for key in b.part.keys)
        states = tuple(state for b in self.bound for state in b.freeze())
        cooldowns = tuple(f.counters for b in self.bound for f in b.firings)
        return TickerSnapshot(self.day, keys, states, cooldowns)


class Engine:
    """Evaluates rules on ticks: ``on_tick(tick) -> list[Alert]``, in firing order.

    ``names`` gives a stock's label for messages (``{stock}``: 삼성전자(005930)); default: the
    code. ``shared=False`` compiles every ticker's rules on its own, as before sharing (for
    tests); ``part_size`` is bot.engine.programs.PART_SIZE unless a test wants small parts.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        names: Names | None = None,
        *,
        shared: bool = True,
        part_size: int = PART_SIZE,
    ) -> None:
        self._names = names or bare_code
        self._shared, self._part_size = shared, part_size
        self._programs = Programs(ruleset, shared=shared, part_size=part_size)
        self._tickers: dict[str, _Ticker] = {}
        self._stale: dict[str, _Ticker] = {}  # bound under earlier rules, not ticked since
        # The hot path: the step of each ticker bound under the running rules for ``_day``,
        # the trading date of the last tick (a tick of another date takes the slow path).
        self._steps: dict[str, Step] = {}
        self._day: date | None = None

    @property
    def ruleset(self) -> RuleSet:
        return self._programs.ruleset

    @property
    def rules_key(self) -> str:
        """bot.engine.programs.rules_key of the rules running (computed when compiled)."""
        return self._programs.key

    @property
    def programs(self) -> Programs:
        return self._programs

    def on_tick(self, tick: Tick) -> list[Alert]:
        return self.on_ticks((tick,))

    def on_ticks(self, ticks: Iterable[Tick]) -> list[Alert]:
        """The alerts of several ticks in order (a frame's records): one call for all of them."""
        alerts = NO_ALERTS
        steps, day = self._steps, self._day
        for tick in ticks:
            step = steps.get(tick[0])  # the ticker and the date: indices are quicker than names
            if step is None or tick[1] is not day:
                step = self._step(tick.ticker, tick.day)
                steps, day = self._steps, self._day
            fired = step(tick)
            if fired:
                alerts = [*alerts, *fired]
        return alerts

    def _step(self, ticker: str, day: date) -> Step:
        """The slow path: a ticker's first tick, first of a new date or first since the rules
        were swapped, or a tick whose date is not the last tick's."""
        if day != self._day:
            self._steps = {}  # each ticker's step comes back on its next tick
        self._day = day  # also an equal date object of a new frame: the next ones are quick
        state = self._tickers.get(ticker)
        if state is None or state.day != day:
            state = self._bind(ticker, day, state)
        self._steps[ticker] = state.step
        return state.step

    def _bind(self, ticker: str, day: date, current: _Ticker | None) -> _Ticker:
        """A ticker's first tick, first of a new date, or first since the rules were swapped."""
        if current is None:
            current = self._stale.pop(ticker, None)
        old = current if current is not None and current.day == day else None
        state = _Ticker.bind(ticker, day, self._programs, self._names, old=old)
        self._tickers[ticker] = state
        return state

    def prepare(self, ruleset: RuleSet, pause: Callable[[], None] = no_pause) -> Programs:
        """``ruleset`` compiled, sharing what it can with the rules running: for ``swap``.
        Safe in a worker thread while the engine runs (it only reads what is running);
        ``pause`` is called between two parts compiled (bot.engine.programs.Programs)."""
        return Programs(
            ruleset,
            reuse=self._programs,
            shared=self._shared,
            part_size=self._part_size,
            pause=pause,
        )

    def swap(self, programs: Programs) -> None:
        """Run ``programs`` from the next tick on; unchanged rules keep their state.

        Quick whatever the number of tickers: each ticker moves to the new rules on its next
        tick (until then it has no tick to evaluate, and its state is what it was).
        """
        self._stale.update(self._tickers)
        self._tickers, self._steps = {}, {}
        self._programs = programs

    def replace_rules(self, ruleset: RuleSet) -> None:
        """Swap in a new rule set between two ticks; unchanged rules keep their state.

        A rule whose definition changed (or a new one) starts fresh: a crossing needs a previous
        tick first, a window fills again, a cooldown starts over. ``prepare`` then ``swap`` do
        the same with the compiling off the caller's thread.
        """
        self.swap(self.prepare(ruleset))

    def _all(self) -> dict[str, _Ticker]:
        return {**self._stale, **self._tickers}

    def snapshot(self) -> EngineSnapshot:
        """A copy of everything the engine holds, for ``restore``: quick enough to take between
        two ticks, and independent of the engine afterwards (the windows are copied)."""
        return EngineSnapshot({ticker: t.snapshot() for ticker, t in self._all().items()})

    def restore(self, snapshot: EngineSnapshot) -> None:
        """Continue from ``snapshot`` instead of what the engine holds, under the current rules.

        As on a reload, a rule whose definition key is not in the snapshot starts fresh, and a
        snapshot's rule that is not among the current ones is dropped. Raises SnapshotError (and
        changes nothing) when a saved state does not fit its rule.
        """
        programs = self._programs
        tickers: dict[str, _Ticker] = {}
        for ticker, saved in snapshot.tickers.items():
            kept: dict[str, tuple[State, Firing]] = {}
            rules = saved.rules()
            for part in programs.parts(ticker):
                for key, rule in zip(part.keys, programs.values(part.keys), strict=True):
                    found = rules.get(key)
                    if found is not None:
                        state = thaw(found.state, fresh_state(rule))
                        counters = (found.resolved_last, found.resolved_seq)
                        firing = Firing(rule, found.last, found.seq, counters, self._names)
                        kept[key] = (state, firing)
            tickers[ticker] = _Ticker.bind(ticker, saved.day, programs, self._names, kept)
        self._tickers, self._stale, self._steps = tickers, {}, {}


__all__ = ["Engine", "Firing", "definition_key", "rules_key"]
