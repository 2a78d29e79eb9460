"""A naive reading of docs/RULES-SPEC.md, sentence by sentence: slow, obvious, engine-independent.

``fire(rules, ticks)`` returns ``(rule id, tick index, value, kind)`` for every event (``kind``:
"fired" or "resolved"), in order. It recomputes conditions from the whole history at each tick
(O(n^2)); only what the spec says depends on earlier events (cooldowns, the arming of ``rearm``,
the alert a resolved event ends) is carried from tick to tick. Tests compare the engine with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from bot.engine import expr
from bot.ticks import Tick

Event = tuple[str, int, int, str]


def _history(ticks: list[Tick], i: int) -> list[int]:
    """Indices of the earlier ticks of the same ticker on the same trading date, in order."""
    me = ticks[i]
    return [j for j in range(i) if ticks[j].ticker == me.ticker and ticks[j].day == me.day]


def in_hours(rule: Any, tick: Tick) -> bool:
    """'A range takes in every tick whose STCK_CNTG_HOUR falls in its first minute through its
    last minute, both included'; no hours: all day."""
    if rule.hours is None:
        return True
    minute = tick.seconds // 60
    return any(part.range.first <= minute <= part.range.last for part in rule.hours)


def _crossing(rule: Any, ticks: list[Tick], i: int) -> bool:
    earlier = _history(ticks, i)
    if not earlier:
        return False
    value, prev = ticks[i].value(rule.field), ticks[earlier[-1]].value(rule.field)
    if rule.crosses_above is not None:
        return bool(prev < rule.crosses_above <= value)
    return bool(prev > rule.crosses_below >= value)


def _flip(rule: Any, ticks: list[Tick], i: int) -> bool:
    value = ticks[i].value(rule.field)

    def qualifies(v: int) -> bool:
        return v != 0 and bool(abs(v) >= rule.min_abs)

    if not qualifies(value):
        return False
    earlier = _history(ticks, i)
    signs = [
        ticks[j].value(rule.field) > 0 for j in earlier if qualifies(ticks[j].value(rule.field))
    ]
    if not signs or signs[-1] == (value > 0):
        return False
    return bool(rule.direction == "any" or (rule.direction == "to_positive") == (value > 0))


def _baseline(ticks: list[Tick], i: int, field: str, window: int) -> int:
    """The value of the earliest tick (same ticker, date) whose time is >= t - W, i included."""
    t = ticks[i].seconds
    inside = [j for j in [*_history(ticks, i), i] if ticks[j].seconds >= t - window]
    return ticks[inside[0]].value(field)


def _condition(rule: Any, ticks: list[Tick], i: int, running: bool) -> bool:
    """Whether a state rule's condition holds on tick i; ``running``: a run goes on from the
    tick before (what ``rearm`` looks at). False outside the rule's hours."""
    if not in_hours(rule, ticks[i]):
        return False
    value = ticks[i].value(rule.field)
    if rule.type == "threshold":
        if rule.above is not None:
            level = rule.rearm if running and rule.rearm is not None else rule.above
            return bool(value > level)
        level = rule.rearm if running and rule.rearm is not None else rule.below
        return bool(value < level)
    if rule.type == "change":
        baseline = _baseline(ticks, i, rule.field, rule.window)
        if rule.rise is not None:
            return bool(value - baseline >= rule.rise)
        return bool(baseline - value >= rule.fall)
    return _expr_holds(rule.expression.tree, ticks, i)


def _leaf_value(leaf: Any, ticks: list[Tick], i: int) -> int | None:
    """'prev(COL)', 'delta(COL, W)', 'day_max(COL)', 'day_min(COL)' or COL, read off the day."""
    earlier = _history(ticks, i)
    value = ticks[i].value(leaf.column)
    if leaf.kind == "value":
        return value
    if leaf.kind == "prev":
        return ticks[earlier[-1]].value(leaf.column) if earlier else None
    if leaf.kind == "delta":
        return value - _baseline(ticks, i, leaf.column, leaf.window)
    values = [ticks[j].value(leaf.column) for j in [*earlier, i]]
    return max(values) if leaf.kind == "day_max" else min(values)


class _Missing(Exception):
    """A value that does not exist, or a division by zero: the whole `when` is false."""


def _expr_holds(tree: Any, ticks: list[Tick], i: int) -> bool:
    """The parsed `when` evaluated on its own terms: exact fractions, every part evaluated."""

    def number(node: Any) -> Fraction:
        if isinstance(node, expr.Num):
            return Fraction(node.value)
        if isinstance(node, expr.Ref):
            value = _leaf_value(node.leaf, ticks, i)
            if value is None:
                raise _Missing
            return Fraction(value)
        if isinstance(node, expr.Neg):
            return -number(node.operand)
        if isinstance(node, expr.Call):
            args = [number(arg) for arg in node.args]
            return {"abs": lambda: abs(args[0]), "min": lambda: min(args),
                    "max": lambda: max(args)}[node.name]()  # fmt: skip
        total = number(node.first)
        for op, operand in node.rest:
            right = number(operand)
            if op == "/" and right == 0:
                raise _Missing
            total = {"+": total + right, "-": total - right, "*": total * right}.get(
                op, total / right if right else total
            )
        return total

    def truth(node: Any) -> bool:
        if isinstance(node, expr.Compare):
            left, right = number(node.left), number(node.right)
            compared = {"<": left < right, "<=": left <= right, ">": left > right,
                        ">=": left >= right, "==": left == right, "!=": left != right}  # fmt: skip
            return compared[node.op]
        if isinstance(node, expr.Not):
            return not truth(node.operand)
        truths = [truth(item) for item in node.items]  # all of them: a zero divisor anywhere
        return all(truths) if node.op == "and" else any(truths)

    try:
        return truth(tree)
    except _Missing:
        return False


_RUNS: dict[tuple[int, str, int], list[int]] = {}  # (id of ticks, rule id, i): one fire() call's


def runs(rule: Any, ticks: list[Tick], i: int) -> list[int]:
    """The run tick i belongs to (its ticks so far), or [] when the condition fails at i: the
    run of the tick before, and i, if the condition holds at i."""
    key = (id(ticks), rule.id, i)
    if key not in _RUNS:
        earlier = _history(ticks, i)
        before = runs(rule, ticks, earlier[-1]) if earlier else []
        _RUNS[key] = [*before, i] if _condition(rule, ticks, i, bool(before)) else []
    return _RUNS[key]


def _is_state_rule(rule: Any) -> bool:
    if rule.type == "threshold":
        return rule.kind in ("above", "below")
    return rule.type in ("change", "expr")


def _state_candidate(rule: Any, ticks: list[Tick], i: int) -> bool:
    """Is tick i the candidate of its run: the first tick of the run with t - t0 >= for?"""
    run = runs(rule, ticks, i)
    if not run:
        return False
    t0 = ticks[run[0]].seconds
    first = next((j for j in run if ticks[j].seconds - t0 >= rule.for_), None)
    return first == i


@dataclass
class _Kept:
    """What the spec carries from event to event for one (rule, ticker, date)."""

    last: int | None = None  # tick second of the last alert (cooldown)
    armed: bool = True  # rearm: armed at the start of each trading date
    open: bool = False  # resolve: an alert waits for its resolved event


def _resolves(rule: Any, ticks: list[Tick], i: int) -> bool:
    """Does tick i end what an open alert of ``rule`` said?"""
    if _is_state_rule(rule):
        return not runs(rule, ticks, i)
    value = ticks[i].value(rule.field)
    if rule.crosses_above is not None:
        return bool(value <= rule.rearm if rule.rearm is not None else value < rule.crosses_above)
    return bool(value >= rule.rearm if rule.rearm is not None else value > rule.crosses_below)


def _arms(rule: Any, value: int) -> bool:
    if rule.crosses_above is not None:
        return bool(value <= rule.rearm)
    return bool(value >= rule.rearm)


def fire(rules: list[Any], ticks: list[Tick]) -> list[Event]:
    """Every event, in order: ticks in order, rules in their order within a tick."""
    _RUNS.clear()
    events: list[Event] = []
    kept: dict[tuple[str, str, Any], _Kept] = {}
    for i, tick in enumerate(ticks):
        for rule in rules:
            if not rule.enabled or (rule.tickers is not None and tick.ticker not in rule.tickers):
                continue
            state = kept.setdefault((rule.id, tick.ticker, tick.day), _Kept())
            value = tick.value(rule.field)
            crossing = rule.type == "threshold" and not _is_state_rule(rule)
            if state.open and _resolves(rule, ticks, i):
                state.open = False
                events.append((rule.id, i, value, "resolved"))
            if _is_state_rule(rule):
                candidate = _state_candidate(rule, ticks, i)
            elif crossing:
                candidate = _crossing(rule, ticks, i) and state.armed
            else:
                candidate = _flip(rule, ticks, i)
            candidate = candidate and in_hours(rule, tick)
            if crossing and rule.rearm is not None and _arms(rule, value):
                state.armed = True
            if not candidate:
                continue
            if state.last is not None and tick.seconds < state.last + rule.cooldown:
                continue  # dropped by the cooldown (a crossing stays armed)
            state.last = tick.seconds
            state.armed = False if rule.rearm is not None else state.armed
            state.open = bool(rule.resolve)
            events.append((rule.id, i, value, "fired"))
    _RUNS.clear()
    return events
