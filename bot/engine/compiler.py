"""Rules compiled to one Python function: the engine's hot path.

A list of rules (a part of a stock's rules, bot.engine.programs) becomes the source of one
``build(fires, states)`` function, the rules' thresholds written in as constants; each stock binds
its own rolling state to it by calling it, which starts the generator that holds that state in
its frame (``step`` is its ``send``). One call per tick then evaluates every rule of the part,
which is several times faster than one call per rule; replays of a day's recording depend on it.
``source()`` shows the code of a rule list, for debugging.

Each rule's state is a tuple of plain values (lists for windows) that ``export()`` hands back, so
a reload can carry an unchanged rule's state into a newly compiled function; ``freeze()`` hands
back a copy (the windows copied) for a snapshot, quickly enough to take between two ticks.

Rules of a part that read the same series (the previous value of a column, a column's window of
one length, a day's extreme, a sign flip's last sign) keep it once: a desk's house rules hold a
few windows per stock instead of dozens, and bring each up to date once a tick. A rule's state
still holds its series (each sharer exports the same values), and a stock whose rules do not
agree on one (a rule added by a reload next to one that ran all day) runs the part compiled with
each rule's own (``Compiled.apart``): a reload means what it meant before. The
semantics are docs/RULES-SPEC.md's; tests/test_engine_spec.py checks them against a naive
reading of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from functools import lru_cache

from bot.alerts import Alert
from bot.engine.codegen import GLOBALS, Part, Series, State, befores, guarded
from bot.engine.rule_types import AnyRule
from bot.ticks import Tick

__all__ = ["NO_ALERTS", "Build", "Compiled", "Export", "Freeze", "Frozen", "State", "Step",
           "compile_rules", "fresh_state", "source"]  # fmt: skip

Fire = Callable[[Tick, int, Mapping[str, float | None]], Alert | None]
Step = Callable[[Tick], list[Alert]]
Export = Callable[[], list[State]]
#: A rule's state as ``freeze()`` copies it: the windows are copies nothing changes afterwards
#: (an open alert is immutable).
Frozen = tuple[bool | int | list[int] | Alert | None, ...]
Freeze = Callable[[], tuple[Frozen, ...]]
NO_ALERTS: list[Alert] = []  # returned when nothing fires; callers only read it
_SECONDS = Tick._fields.index("seconds")


def fresh_state(rule: AnyRule) -> State:
    """A rule's state at the start of a trading date, in the order of its part's names."""
    return rule.fresh_state()


def _tuple(part: Part, lists: Set[str], copy: bool = False) -> str:
    """A rule's state variables as a tuple expression; ``copy``: its lists copied."""
    names = [f"{name}.copy()" if copy and name in lists else name for name in part.names]
    return f"({''.join(f'{name}, ' for name in names)})"


def source(rules: Sequence[AnyRule], share: bool = True) -> str:
    """The Python source of ``build(fires, states) -> (step, export, freeze)`` for these rules:
    each rule's type writes its share (``AnyRule.part``). ``fires`` are the rules' Firings (the
    step calls each one itself, and its ``resolve``). ``share``: the rules' equal series are
    kept once (``build`` must then be given states that agree on them: ``Compiled.agree``)."""
    parts = [rule.part(n, share) for n, rule in enumerate(rules)]
    series = {one.key: one for part in parts for one in part.series}  # once each, in order
    lists = {name for part in parts for name in (*part.windows, *(
        w for one in part.series for w in one.windows))}  # fmt: skip
    tuples = [_tuple(part, lists) for part in parts]
    copies = [_tuple(part, lists, copy=True) for part in parts]
    fields = sorted({i for rule in rules for i in rule.reads()})
    body = [
        "alerts = NO_ALERTS",
        f"t = tick[{_SECONDS}]",
        *(f"v{i} = tick[{i}]" for i in fields),
    ]
    groups = _groups(rules) if share else {}
    settled = _settled(parts, groups)
    if share:  # every series brought up to date before any rule reads it, moved on after all
        body += befores(series.values())
    order: list[int] = []  # the rules in the order the step runs them
    for n, (rule, part) in enumerate(zip(rules, parts, strict=True)):
        group = groups.get(n)
        if group is not None:  # the group's rules, at the place of its first
            lines = [line for m in group for line in [_comment(rules[m]), *parts[m].lines]]
            lines += [line for one in settled.get(n, ()) for line in one.after]
            levels = [x for m in group for x in rules[m].levels() or ()]
            waiting = [w for m in group if (w := rules[m].waiting(m)) is not None]
            body += guarded(rule.column, levels, lines, waiting)
            order += group
        elif not any(n in group for group in groups.values()):
            body.append(_comment(rule))
            body += befores(part.series) if not share else []
            body += part.lines
            body += [line for one in part.series for line in one.after] if not share else []
            order.append(n)
    if share:
        inside = {one.key for ones in settled.values() for one in ones}
        body += [line for one in series.values() if one.key not in inside for line in one.after]
    if order != sorted(order):  # a tick's alerts in the rules' order all the same
        body += ["if len(alerts) > 1:", "    alerts.sort(key=rank)"]
    guards = [f"{bound}_{rules[n].column}_g" for n in groups for bound in ("lo", "hi", "wait")]
    # A generator keeps the state in its frame's fast locals: quicker to read and write than a
    # closure's cells, and nothing to copy in at each call. ``export``/``freeze`` are thrown in.
    lines = [
        "def run(fires, states, rank):",
        *(f"    {t} = states[{n}]" for n, t in enumerate(tuples)),
        *(f"    {guard} = 0" for guard in guards),  # 0 < v < 0: the first tick runs them all
        *(f"    fire{n} = fires[{n}]" for n in range(len(rules))),
        "    alerts = None",
        "    while True:",
        "        while True:",
        "            try:",
        "                tick = yield alerts",
        "                break",
        "            except AskState:",
        f"                alerts = [{', '.join(tuples)}]",
        "            except AskCopy:",
        f"                alerts = ({''.join(f'{t}, ' for t in copies)})",
        "        try:",
        *(f"            {line}" for line in body),
        "        except Exception as exc:  # a bug: raised to the caller, the state lives on",
        "            alerts = Failed(exc)",
        "def build(fires, states, rank):",
        "    machine = run(fires, states, rank)",
        "    next(machine)",
        "    throw = machine.throw",
        "    return machine.send, lambda: throw(AskState), lambda: throw(AskCopy)",
    ]
    return "\n".join(lines) + "\n"


def _groups(rules: Sequence[AnyRule]) -> dict[int, list[int]]:
    """The rules that can be skipped while their column stays between the same two of their
    levels, by column, at least two a column (one rule is as quick as its guard), keyed by
    their first rule's place."""
    by_column: dict[int, list[int]] = {}
    for n, rule in enumerate(rules):
        if rule.levels() is not None:
            by_column.setdefault(rule.column, []).append(n)
    return {group[0]: group for group in by_column.values() if len(group) > 1}


def _settled(parts: Sequence[Part], groups: Mapping[int, list[int]]) -> dict[int, list[Series]]:
    """By group: the series that only the group's rules read and that settle (their ``after``
    may be skipped with the rules)."""
    readers: dict[str, set[int]] = {}
    for n, part in enumerate(parts):
        for one in part.series:
            readers.setdefault(one.key, set()).add(n)
    settled: dict[int, list[Series]] = {}
    for first, group in groups.items():
        kept = {one.key: one for m in group for one in parts[m].series if one.settles}
        settled[first] = [one for key, one in kept.items() if readers[key] <= set(group)]
    return settled


def _comment(rule: AnyRule) -> str:
    return f"# {rule.id}: {rule.type} {_one_line(rule.headline())}"


def _one_line(text: str) -> str:
    """A comment's text: one line, whatever a rule's text holds."""
    return " ".join(text.split())


Build = Callable[..., tuple[Step, Export, Freeze]]
"""``build(fires, states)``: a rule list's step, export and freeze functions."""


class AskState(Exception):
    """Thrown into a step's generator (not an error): it answers with each rule's state."""


class AskCopy(Exception):
    """Thrown into a step's generator: it answers with a copy of each rule's state."""


class Failed:
    """What a step returns when its code raised (a bug): iterating it, as its caller does with
    the alerts of a tick, raises the error there, and the step goes on with the next tick."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __iter__(self) -> Iterator[Alert]:
        raise self.error


@lru_cache(maxsize=256)  # a reload compiles anew; old sources age out
def _compiled(text: str) -> Build:
    namespace: dict[str, object] = {**GLOBALS, "NO_ALERTS": NO_ALERTS, "Failed": Failed}
    namespace.update(AskState=AskState, AskCopy=AskCopy)
    exec(compile(text, "<rules>", "exec"), namespace)  # our own generated source, numbers only
    return namespace["build"]  # type: ignore[return-value]


class Compiled:
    """A rule list compiled: ``build`` keeps each series the rules share once, which is right
    for states that agree on them (a new day's, or those of rules that have run together);
    ``apart()`` keeps every rule's own, for states that do not (a rule added by a reload next
    to one that has run all day: its crossing needs a tick first, its window fills again)."""

    __slots__ = ("_apart", "_rank", "_rules", "_shared", "build")

    def __init__(self, rules: Sequence[AnyRule], apart: bool = False) -> None:
        """``apart``: compile ``apart()`` now too (a reload's worker thread does, for parts where
        new rules join rules that ran: its stocks' first ticks need it)."""
        self._rules = tuple(rules)
        place = {rule.id: n for n, rule in enumerate(rules)}
        self._rank: Callable[[Alert], int] = lambda alert: place[alert.rule]  # sorts a tick's
        self.build = _compiled(source(rules))
        names = [rule.part(n, True).names for n, rule in enumerate(rules)]
        places: dict[str, list[tuple[int, int]]] = {}
        for k, part_names in enumerate(names):
            for j, name in enumerate(part_names):
                places.setdefault(name, []).append((k, j))
        self._shared = [where for where in places.values() if len(where) > 1]
        self._apart: Build | None = None if self._shared else self.build
        if apart:
            self.apart()

    def agree(self, states: Sequence[State]) -> bool:
        """Whether the rules that share a series have equal states of it."""
        for (k, j), *others in self._shared:
            value = states[k][j]
            if any(states[m][i] != value for m, i in others):
                return False
        return True

    def apart(self) -> Build:
        """The builder that keeps every rule's series on its own (compiled when first needed)."""
        if self._apart is None:
            self._apart = _compiled(source(self._rules, share=False))
        return self._apart

    def bind(
        self, fires: Sequence[object], states: Sequence[State]
    ) -> tuple[Step, Export, Freeze]:
        """The step, export and freeze functions of these states."""
        build = self.build if self.agree(states) else self.apart()
        return build(fires, states, self._rank)


def compile_rules(rules: Sequence[AnyRule], apart: bool = False) -> Compiled:
    """The rules compiled, their series shared (each distinct source compiled once);
    ``apart``: their series kept apart too (``Compiled.apart``)."""
    return Compiled(rules, apart)
