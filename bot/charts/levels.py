"""What a chart needs from the rules, and what it says of a day without data: no matplotlib here
(the bot's own process never loads it; charts are drawn in a worker)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class NoData(ValueError):
    """Nothing to draw: the stock has no figure that day."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """A level a rule watches on one column: a dashed line on the chart."""

    rule: str
    field: str
    value: float


_LEVELS = ("crosses_above", "crosses_below", "above", "below")


def thresholds(rules: Iterable[object], ticker: str) -> list[Threshold]:
    """The levels of the enabled threshold rules that apply to ``ticker``, read through the
    rules' public attributes (``id``, ``field``, ``tickers``, ``enabled``, ``crosses_above``,
    ``crosses_below``, ``above``, ``below``); rules of other types have none of them."""
    found = []
    for rule in rules:
        tickers = getattr(rule, "tickers", None)
        if not getattr(rule, "enabled", True) or (tickers and ticker not in tickers):
            continue
        for level in _LEVELS:
            value = getattr(rule, level, None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                rule_id, field = getattr(rule, "id", "?"), getattr(rule, "field", "")
                found.append(Threshold(str(rule_id), str(field), value))
    return found
