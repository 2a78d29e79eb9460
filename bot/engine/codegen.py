"""The pieces rule types build their share of a step function from (bot.engine.compiler).

A rule type writes Python lines for one rule ``n`` of the step: its state variables end in ``n``
(``prev3``, ``start3``), ``t`` is the tick's second of the day, ``tick`` the tick, ``alerts`` the
list of events so far. ``fire{n}`` is the rule's Firing (bot.engine.evaluate): called, it turns a
candidate into an Alert (or None: dropped by the cooldown); ``fire{n}.resolve`` makes the resolved
event of an alert (rare, so no bound method is kept per rule). Numbers are written in as
constants; nothing of a rule file's text ever becomes code but numbers and names checked here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.market.sessions import MinuteRange

#: Names the generated code may use besides its own (a rule type adds what its code calls).
GLOBALS: dict[str, object] = {}

#: A rule's state: plain values (None, bools, ints, an open Alert) and lists of ints (windows).
State = tuple[object, ...]


@dataclass(frozen=True)
class Part:
    """One rule's share of the step function: its state variables and its code."""

    names: tuple[str, ...]  # state variables; the code may rebind them
    lines: list[str]  # the body, indented for the step function
    windows: tuple[str, ...] = ()  # the names that hold lists, copied by freeze()


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
