"""A naive reading of docs/RULES-SPEC.md, sentence by sentence: slow, obvious, engine-independent.

``fire(rules, ticks)`` returns ``(rule id, tick index, value)`` for every alert, in firing order.
It recomputes everything from the whole history at each tick (O(n^2)); tests compare the engine
with it.
"""

from __future__ import annotations

from typing import Any

from bot.ticks import Tick


def _history(ticks: list[Tick], i: int) -> list[int]:
    """Indices of the earlier ticks of the same ticker on the same trading date, in order."""
    me = ticks[i]
    return [j for j in range(i) if ticks[j].ticker == me.ticker and ticks[j].day == me.day]


def _event(rule: Any, ticks: list[Tick], i: int) -> bool:
    value = ticks[i].value(rule.field)
    earlier = _history(ticks, i)
    if rule.type == "threshold":
        if not earlier:
            return False
        prev = ticks[earlier[-1]].value(rule.field)
        if rule.crosses_above is not None:
            return bool(prev < rule.crosses_above <= value)
        return bool(prev > rule.crosses_below >= value)

    # sign_flip
    def qualifies(v: int) -> bool:
        return v != 0 and bool(abs(v) >= rule.min_abs)

    if not qualifies(value):
        return False
    signs = [
        ticks[j].value(rule.field) > 0 for j in earlier if qualifies(ticks[j].value(rule.field))
    ]
    if not signs or signs[-1] == (value > 0):
        return False
    return bool(rule.direction == "any" or (rule.direction == "to_positive") == (value > 0))


def _holds(rule: Any, ticks: list[Tick], i: int) -> bool:
    value = ticks[i].value(rule.field)
    if rule.type == "threshold":
        return bool(value > rule.above if rule.above is not None else value < rule.below)
    t = ticks[i].seconds
    window = [j for j in [*_history(ticks, i), i] if ticks[j].seconds >= t - rule.window]
    baseline = ticks[window[0]].value(rule.field)
    if rule.rise is not None:
        return bool(value - baseline >= rule.rise)
    return bool(baseline - value >= rule.fall)


def _is_state_rule(rule: Any) -> bool:
    return rule.type == "change" or (rule.type == "threshold" and rule.kind in ("above", "below"))


def _state_candidate(rule: Any, ticks: list[Tick], i: int) -> bool:
    """Is tick i the candidate of its run: the first tick of the run with t - t0 >= for?"""
    if not _holds(rule, ticks, i):
        return False
    run = [i]
    for j in reversed(_history(ticks, i)):
        if not _holds(rule, ticks, j):
            break
        run.insert(0, j)
    t0 = ticks[run[0]].seconds
    first = next((j for j in run if ticks[j].seconds - t0 >= rule.for_), None)
    return first == i


def fire(rules: list[Any], ticks: list[Tick]) -> list[tuple[str, int, int]]:
    """Every alert, in firing order: ticks in order, rules in their order within a tick."""
    fired: list[tuple[str, int, int]] = []
    last: dict[tuple[str, str, Any], int] = {}  # (rule, ticker, day) -> tick second of last alert
    for i, tick in enumerate(ticks):
        for rule in rules:
            if not rule.enabled or (rule.tickers is not None and tick.ticker not in rule.tickers):
                continue
            if _is_state_rule(rule):
                candidate = _state_candidate(rule, ticks, i)
            else:
                candidate = _event(rule, ticks, i)
            if not candidate:
                continue
            key = (rule.id, tick.ticker, tick.day)
            if key in last and tick.seconds < last[key] + rule.cooldown:
                continue  # dropped by the cooldown
            last[key] = tick.seconds
            fired.append((rule.id, i, tick.value(rule.field)))
    return fired
