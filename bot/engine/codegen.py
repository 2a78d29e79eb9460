"""The pieces rule types build their share of a step function from (bot.engine.compiler).

A rule type writes Python lines for one rule ``n`` of the step: its own state variables end in
``n`` (``start3``), ``t`` is the tick's second of the day, ``tick`` the tick, ``alerts`` the list
of events so far. What several rules of a part may keep once (the previous value of a column, a
column's window of some length, ...) is a ``Series``: written once per compiled part when its
rules share it, once per rule when not (bot.engine.compiler). ``fire{n}`` is the rule's Firing
(bot.engine.evaluate): called, it turns a candidate into an Alert (or None: dropped by the
cooldown); ``fire{n}.resolve`` makes the resolved event of an alert (rare, so no bound method is
kept per rule). Numbers are written in as
constants; nothing of a rule file's text ever becomes code but numbers and names checked here.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.market.sessions import MinuteRange

#: Names the generated code may use besides its own (a rule type adds what its code calls).
GLOBALS: dict[str, object] = {}

#: A rule's state: plain values (None, bools, ints, an open Alert) and lists of ints (windows).
State = tuple[object, ...]


@dataclass(frozen=True)
class Series:
    """What a rule reads that other rules of its part may read too: kept in ``names``, brought
    up to date by ``before`` (run before any rule reads it) and ``after`` (after every rule has
    read it). ``key`` says what it is: rules of a part with equal keys share one."""

    key: str
    names: tuple[str, ...]
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()  # the names that hold lists
    #: ``after`` changes nothing while the value stays between its rules' levels: a guard that
    #: skips the rules may skip it too (bot.engine.codegen ``guarded``).
    settles: bool = False
    #: A test ``before`` runs under, with ``opens`` run first when it passes: series of equal
    #: gates run under one (a column's windows of several lengths move on the same ticks).
    gate: str = ""
    opens: tuple[str, ...] = ()


def befores(series: Iterable[Series]) -> list[str]:
    """The ``before`` lines of these series, those of equal gates under one test."""
    lines: list[str] = []
    gated: dict[str, list[Series]] = {}
    for one in series:
        if one.gate:
            gated.setdefault(one.gate, []).append(one)
        else:
            lines += one.before
    for gate, ones in gated.items():
        lines += [f"if {gate}:", *indent(ones[0].opens)]
        lines += indent(line for one in ones for line in one.before)
    return lines


@dataclass(frozen=True)
class Part:
    """One rule's share of the step function: its state variables (in its ``fresh_state``
    order: its own and those of its series) and its code."""

    names: tuple[str, ...]  # state variables; the code may rebind them
    lines: list[str]  # the body, indented for the step function
    windows: tuple[str, ...] = ()  # its own names that hold lists, copied by freeze()
    series: tuple[Series, ...] = ()


def owner(n: int, shared: bool) -> str:
    """The end of a series' variable names: one per part when shared, rule ``n``'s when not."""
    return "s" if shared else str(n)


def previous(column: int, end: str) -> Series:
    """The value of ``column`` on the stock's previous tick; None before its first."""
    name = f"prev_{column}_{end}"
    return Series(f"prev {column}", (name,), after=(f"{name} = v{column}",))


def window(column: int, seconds: int, end: str) -> Series:
    """``column``'s values over the last ``seconds``; ``base_{column}_{seconds}_{end}`` is the
    oldest. A tick is kept only if its time is later than every time before it: one of the same
    second, or of an earlier one (a step back), leaves the window no later than the tick before
    it, so it could never be the baseline. It holds at most ``seconds + 1`` values. Lists, not
    deques: an empty deque takes 760 bytes, and a desk's rules hold hundreds of thousands of
    windows; the front is dropped about once a second, a short list's memmove."""
    tag = f"{column}_{seconds}_{end}"
    times, values, base = (f"{name}_{tag}" for name in ("times", "values", "base"))
    last = f"last_{column}_{end}"  # the same for every window of the column: they keep one
    return Series(
        f"window {column} {seconds}",
        (times, values, last, base),
        before=(
            f"{times}.append(t)",
            f"{values}.append(v{column})",
            f"while {times}[0] < t - {seconds}:",
            f"    del {times}[0]",
            f"    del {values}[0]",
            f"{base} = {values}[0]",
        ),
        windows=(times, values),
        gate=f"t > {last}",
        opens=(f"{last} = t",),
    )


def extreme(kind: str, column: int, end: str) -> Series:
    """The day's highest (``max``) or lowest (``min``) value of ``column`` so far, this tick's
    included; None before the first tick."""
    name, beyond = f"{kind}_{column}_{end}", ">" if kind == "max" else "<"
    return Series(
        f"{kind} {column}",
        (name,),
        before=(f"if {name} is None or v{column} {beyond} {name}:", f"    {name} = v{column}"),
    )


def sign(column: int, low: str, end: str) -> Series:
    """The sign of ``column``'s last value of at least ``low`` either way (values are ints:
    ``> 0`` is ``>= 1``); 0 before the first."""
    spelled = low if low.isdigit() else hashlib.sha256(low.encode()).hexdigest()[:12]  # 1.5, 1e+20
    name, v = f"sign_{column}_{spelled}_{end}", f"v{column}"
    big, small = (f" and {v} >= {low}", f" and -{v} >= {low}") if low != "0" else ("", "")
    return Series(
        f"sign {column} {low}",
        (name,),
        after=(
            f"if {v} > 0{big}:",
            f"    {name} = 1",
            f"elif {v} < 0{small}:",
            f"    {name} = -1",
        ),
        settles=True,
    )


def bounds(levels: Sequence[float], value: float) -> tuple[float, float]:
    """The open interval around ``value`` that holds none of the sorted ``levels`` (empty when
    ``value`` is one of them)."""
    i = bisect.bisect_left(levels, value)
    if i < len(levels) and levels[i] == value:
        return value, value
    return (levels[i - 1] if i else -math.inf), (levels[i] if i < len(levels) else math.inf)


GLOBALS["bounds"] = bounds


def guarded(
    column: int, levels: Iterable[float], body: list[str], waiting: Sequence[str] = ()
) -> list[str]:
    """``body`` run only on a tick whose value of ``column`` has left the interval around the
    previous tick's value that holds none of ``levels``, or while one of ``waiting`` was true
    after the last run: the code of rules that can do nothing unless the value reaches or
    passes one of their levels (a crossing, its rearm level, a sign flip's ``min_abs``, a
    level held) or time passes in a run that waits out its ``for``. Most ticks of a desk move
    no figure past any of its levels."""
    lo, hi, v, wait = f"lo_{column}_g", f"hi_{column}_g", f"v{column}", f"wait_{column}_g"
    table = "".join(f"{const(x)}, " for x in sorted(set(levels)))
    test = f"not {lo} < {v} < {hi}" + (f" or {wait}" if waiting else "")
    return [
        f"if {test}:",
        *indent(body),
        *([f"    {wait} = {' or '.join(waiting)}"] if waiting else []),
        f"    {lo}, {hi} = bounds(({table}), {v})",
    ]


def fresh_window() -> State:
    """A window's state: times (seconds since midnight), values, the last time, the baseline."""
    return ([], [], -1, 0)


def const(number: float) -> str:
    """A number as a Python literal (ints stay exact)."""
    if not math.isfinite(number):  # the models refuse these; a literal would not compile
        raise ValueError(f"not a finite number: {number!r}")
    return repr(number)


def indent(lines: Iterable[str], by: int = 4) -> list[str]:
    return [" " * by + line for line in lines]


def fire(n: int, value: str, extra: str, then: Sequence[str] = ()) -> list[str]:
    """Hand a candidate to rule ``n``'s cooldown; keep the alert if it is not dropped, and run
    ``then`` (``a`` is the alert) after it."""
    return [
        f"a = fire{n}(tick, {value}, {{{extra}}})",
        "if a is not None:",
        "    alerts = [*alerts, a]",
        *indent(then),
    ]


def resolved(n: int, value: str, extra: str) -> list[str]:
    """The resolved event of rule ``n``'s open alert, at this tick; no alert is open after it."""
    return [
        f"alerts = [*alerts, fire{n}.resolve(tick, {value}, open{n}, {{{extra}}})]",
        f"open{n} = None",
    ]


def run(
    n: int, holds: str, wait: int, fire_lines: list[str], resolve: list[str] | None = None
) -> list[str]:
    """State rules: one candidate per run of ticks on which ``holds`` is true, ``wait`` s in.
    ``resolve``: the lines that resolve the run's alert, on the first tick after the run."""
    lines = [
        f"if {holds}:",
        f"    if start{n} is None:",
        f"        start{n} = t",
        f"        spent{n} = False",
        f"    if not spent{n} and t - start{n} >= {wait}:",
        f"        spent{n} = True",
        *indent(fire_lines, 8),
        "else:",
        f"    start{n} = None",
    ]
    if resolve is not None:
        lines += [f"    if open{n} is not None:", *indent(resolve, 8)]
    return lines


def within(ranges: Sequence[MinuteRange]) -> str:
    """A test of ``t`` (seconds of the day) for being in one of ``ranges``, overlaps merged."""
    spans: list[list[int]] = []
    for part in sorted(ranges, key=lambda r: r.start_seconds):
        if spans and part.start_seconds <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], part.end_seconds)
        else:
            spans.append([part.start_seconds, part.end_seconds])
    tests = [f"{int(a)} <= t < {int(b)}" for a, b in spans]
    return f"({' or '.join(tests)})"


def both(*tests: str | None) -> str:
    """The tests that are given, joined with ``and`` (each must be parenthesised if it needs)."""
    return " and ".join(test for test in tests if test)
