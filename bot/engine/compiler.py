"""Rules compiled to one Python function per ticker: the engine's hot path.

A ticker's applicable rules become the source of one ``step(tick)`` function, the rules' thresholds
written in as constants and each rule's rolling state held in the function's closure. One call per
tick then evaluates every rule, which is several times faster than one call per rule; replays of a
day's recording depend on it. ``source()`` shows the code of a rule list, for debugging.

Each rule's state is a tuple of plain values (deques for windows) that ``export()`` hands back, so
a reload can carry an unchanged rule's state into a newly compiled function; ``freeze()`` hands
back a copy (the windows copied) for a snapshot, quickly enough to take between two ticks. The
semantics are docs/RULES-SPEC.md's; tests/test_engine_spec.py checks them against a naive
reading of it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.alerts import Alert
from bot.engine.rule_types import AnyRule, ChangeRule, SignFlipRule, ThresholdRule
from bot.ticks import FIELD_INDEX, Tick

State = tuple[object, ...]
Fire = Callable[[Tick, int, Mapping[str, float | None]], Alert | None]
Step = Callable[[Tick], list[Alert]]
Export = Callable[[], list[State]]
#: A rule's state as ``freeze()`` copies it: the windows are copies nothing changes afterwards.
Frozen = tuple[bool | int | deque[int] | None, ...]
Freeze = Callable[[], tuple[Frozen, ...]]
NO_ALERTS: list[Alert] = []  # returned when nothing fires; callers only read it
_SECONDS = Tick._fields.index("seconds")


@dataclass(frozen=True)
class _Part:
    """One rule's share of the step function: its state variables and its code."""

    names: tuple[str, ...]  # state variables; the code may rebind them
    lines: list[str]  # the body, indented for the step function
    windows: tuple[str, ...] = ()  # the names that hold deques, copied by freeze()


def _const(number: float) -> str:
    if not math.isfinite(number):  # the models refuse these; a literal would not compile
        raise ValueError(f"not a finite number: {number!r}")
    return repr(number)


def _fire(n: int, value: str, extra: str) -> list[str]:
    """Hand a candidate to rule ``n``'s cooldown; keep the alert if it is not dropped."""
    return [
        f"a = fire{n}(tick, {value}, {{{extra}}})",
        "if a is not None:",
        "    alerts = [*alerts, a]",
    ]


def _run(n: int, holds: str, wait: int, fire: list[str]) -> list[str]:
    """State rules: one candidate per run of ticks on which ``holds`` is true, ``wait`` s in."""
    return [
        f"if {holds}:",
        f"    if start{n} is None:",
        f"        start{n} = t",
        f"        spent{n} = False",
        f"    if not spent{n} and t - start{n} >= {wait}:",
        f"        spent{n} = True",
        *(f"        {line}" for line in fire),
        "else:",
        f"    start{n} = None",
    ]


def _crossing(n: int, rule: ThresholdRule, v: str) -> _Part:
    x = _const(rule.threshold)
    test = f"prev{n} < {x} <= {v}" if rule.kind == "crosses_above" else f"prev{n} > {x} >= {v}"
    return _Part(
        ("prev",),
        [
            f"if prev{n} is not None and {test}:",
            *(f"    {line}" for line in _fire(n, v, f"'threshold': {x}, 'prev': prev{n}")),
            f"prev{n} = {v}",
        ],
    )


def _level(n: int, rule: ThresholdRule, v: str) -> _Part:
    x = _const(rule.threshold)
    holds = f"{v} > {x}" if rule.kind == "above" else f"{v} < {x}"
    return _Part(("start", "spent"), _run(n, holds, rule.for_, _fire(n, v, f"'threshold': {x}")))


def _sign_flip(n: int, rule: SignFlipRule, v: str) -> _Part:
    """``sign`` is the sign of the last qualifying value, 0 before the first."""
    low = _const(rule.min_abs)
    big = f" and {v} >= {low}" if rule.min_abs else ""  # values are ints: != 0 means >= 1
    small = f" and -{v} >= {low}" if rule.min_abs else ""
    lines: list[str] = []
    for side, new, opposite, allowed in (
        (f"{v} > 0{big}", 1, f"sign{n} < 0", rule.direction != "to_negative"),
        (f"{v} < 0{small}", -1, f"sign{n} > 0", rule.direction != "to_positive"),
    ):
        lines.append(f"{'if' if not lines else 'elif'} {side}:")
        if allowed:
            lines.append(f"    if {opposite}:")
            lines.extend(f"        {line}" for line in _fire(n, v, f"'threshold': {low}"))
        lines.append(f"    sign{n} = {new}")
    return _Part(("sign",), lines)


def _change(n: int, rule: ChangeRule, v: str) -> _Part:
    """The window keeps a tick only if its time is later than every time before it: one of the
    same second, or of an earlier one (a step back), leaves the window no later than the tick
    before it, so it could never be the baseline. ``base`` is the window's oldest value; the
    window holds at most ``window + 1`` values.
    """
    needed = _const(rule.threshold)
    moved = f"{v} - base{n}"
    holds = f"{moved} >= {needed}" if rule.rise is not None else f"base{n} - {v} >= {needed}"
    extra = f"'threshold': {needed}, 'baseline': base{n}, 'change': {moved}"
    return _Part(
        ("times", "values", "last", "base", "start", "spent"),
        [
            f"if t > last{n}:",
            f"    last{n} = t",
            f"    times{n}.append(t)",
            f"    values{n}.append({v})",
            f"    while times{n}[0] < t - {rule.window}:",
            f"        times{n}.popleft()",
            f"        values{n}.popleft()",
            f"    base{n} = values{n}[0]",
            *_run(n, holds, rule.for_, _fire(n, v, extra)),
        ],
        ("times", "values"),
    )


def fresh_state(rule: AnyRule) -> State:
    """A rule's state at the start of a trading date, in the order of its part's names."""
    if isinstance(rule, ChangeRule):
        return (deque(), deque(), -1, 0, None, False)  # times are seconds since midnight
    if isinstance(rule, SignFlipRule):
        return (0,)
    if rule.kind.startswith("crosses"):
        return (None,)
    return (None, False)


def _part(n: int, rule: AnyRule) -> _Part:
    v = f"v{FIELD_INDEX[rule.field]}"
    if isinstance(rule, ChangeRule):
        return _change(n, rule, v)
    if isinstance(rule, SignFlipRule):
        return _sign_flip(n, rule, v)
    if rule.kind.startswith("crosses"):
        return _crossing(n, rule, v)
    return _level(n, rule, v)


def _tuple(n: int, part: _Part, copy: bool = False) -> str:
    """Rule ``n``'s state variables as a tuple expression; ``copy``: its windows copied."""
    names = [f"{name}{n}.copy()" if copy and name in part.windows else f"{name}{n}"
             for name in part.names]  # fmt: skip
    return f"({''.join(f'{name}, ' for name in names)})"


def source(rules: Sequence[AnyRule]) -> str:
    """The Python source of ``build(fires, states) -> (step, export, freeze)`` for these rules."""
    parts = [_part(n, rule) for n, rule in enumerate(rules)]
    state = [f"{name}{n}" for n, part in enumerate(parts) for name in part.names]
    tuples = [_tuple(n, part) for n, part in enumerate(parts)]
    copies = [_tuple(n, part, copy=True) for n, part in enumerate(parts)]
    fields = sorted({FIELD_INDEX[rule.field] for rule in rules})
    body = [
        "alerts = NO_ALERTS",
        f"t = tick[{_SECONDS}]",
        *(f"v{i} = tick[{i}]" for i in fields),
    ]
    for rule, part in zip(rules, parts, strict=True):
        body += [f"# {rule.id}: {rule.type} {rule.field} {rule.condition()}", *part.lines]
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


Build = Callable[[Sequence[Fire], Sequence[State]], tuple[Step, Export, Freeze]]


@lru_cache(maxsize=256)  # a reload compiles anew; old sources age out
def _compiled(text: str) -> Build:
    namespace: dict[str, object] = {"NO_ALERTS": NO_ALERTS}
    exec(compile(text, "<rules>", "exec"), namespace)  # our own generated source, numbers only
    return namespace["build"]  # type: ignore[return-value]


def compile_rules(rules: Sequence[AnyRule]) -> Build:
    """The builder of step functions for this rule list (compiled once per distinct source)."""
    return _compiled(source(rules))
