"""Rules compiled to one Python function: the engine's hot path.

A list of rules (a part of a stock's rules, bot.engine.programs) becomes the source of one
``build(fires, states)`` function, the rules' thresholds written in as constants; each stock binds
its own rolling state to it by calling it, which makes the ``step(tick)`` closure that holds that
state. One call per tick then evaluates every rule of the part, which is several times faster than
one call per rule; replays of a day's recording depend on it. ``source()`` shows the code of a rule
list, for debugging.

Each rule's state is a tuple of plain values (lists for windows) that ``export()`` hands back, so
a reload can carry an unchanged rule's state into a newly compiled function; ``freeze()`` hands
back a copy (the windows copied) for a snapshot, quickly enough to take between two ticks. The
semantics are docs/RULES-SPEC.md's; tests/test_engine_spec.py checks them against a naive
reading of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

from bot.alerts import Alert
from bot.engine.codegen import GLOBALS, Part, State
from bot.engine.rule_types import AnyRule
from bot.ticks import Tick

__all__ = ["NO_ALERTS", "Build", "Export", "Freeze", "Frozen", "State", "Step", "compile_rules",
           "fresh_state", "source"]  # fmt: skip

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


def _tuple(n: int, part: Part, copy: bool = False) -> str:
    """Rule ``n``'s state variables as a tuple expression; ``copy``: its windows copied."""
    names = [f"{name}{n}.copy()" if copy and name in part.windows else f"{name}{n}"
             for name in part.names]  # fmt: skip
    return f"({''.join(f'{name}, ' for name in names)})"


def source(rules: Sequence[AnyRule]) -> str:
    """The Python source of ``build(fires, states) -> (step, export, freeze)`` for these rules:
    each rule's type writes its share (``AnyRule.part``). ``fires`` are the rules' Firings (the
    step calls each one itself, and its ``resolve``)."""
    parts = [rule.part(n) for n, rule in enumerate(rules)]
    state = [f"{name}{n}" for n, part in enumerate(parts) for name in part.names]
    tuples = [_tuple(n, part) for n, part in enumerate(parts)]
    copies = [_tuple(n, part, copy=True) for n, part in enumerate(parts)]
    fields = sorted({i for rule in rules for i in rule.reads()})
    body = [
        "alerts = NO_ALERTS",
        f"t = tick[{_SECONDS}]",
        *(f"v{i} = tick[{i}]" for i in fields),
    ]
    for rule, part in zip(rules, parts, strict=True):
        body += [f"# {rule.id}: {rule.type} {_one_line(rule.headline())}", *part.lines]
    lines = [
        "def build(fires, states):",
        *(f"    {t} = states[{n}]" for n, t in enumerate(tuples)),
        *(f"    fire{n} = fires[{n}]" for n in range(len(rules))),
        "    def step(tick):",
        *([f"        nonlocal {', '.join(state)}"] if state else []),
        *(f"        {line}" for line in body),
        "        return alerts",
        "    def export():",
        f"        return [{', '.join(tuples)}]",
        "    def freeze():",
        f"        return ({''.join(f'{t}, ' for t in copies)})",
        "    return step, export, freeze",
    ]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """A comment's text: one line, whatever a rule's text holds."""
    return " ".join(text.split())


Build = Callable[..., tuple[Step, Export, Freeze]]
"""``build(fires, states)``: a rule list's step, export and freeze functions."""


@lru_cache(maxsize=256)  # a reload compiles anew; old sources age out
def _compiled(text: str) -> Build:
    namespace: dict[str, object] = {**GLOBALS, "NO_ALERTS": NO_ALERTS}
    exec(compile(text, "<rules>", "exec"), namespace)  # our own generated source, numbers only
    return namespace["build"]  # type: ignore[return-value]


def compile_rules(rules: Sequence[AnyRule]) -> Build:
    """The builder of step functions for this rule list (compiled once per distinct source)."""
    return _compiled(source(rules))
