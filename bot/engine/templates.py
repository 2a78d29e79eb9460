"""Alert messages: ``message`` templates with ``{placeholders}``, and the default message.

A number placeholder without a format spec reads as a trader reads it (``{value}`` -> ``123.5억``
for won columns, ``1,234주`` for share columns); with a spec it is the raw number formatted
(``{value:,}`` -> ``12,350,000,000``).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from bot.amounts import format_field
from bot.engine.durations import format_duration
from bot.ticks import COLUMNS, NUMERIC_FIELDS, Tick

#: Placeholders every rule's message may use (besides those of its type and parameters).
COMMON = ("rule", "ticker", "time", "date", "value", "field", "description", "threshold", *COLUMNS)


class TemplateError(ValueError):
    """A message template that cannot be used."""


class Number:
    """A number that formats readably by default and raw with a format spec."""

    __slots__ = ("field", "raw")

    def __init__(self, raw: float, field: str) -> None:
        self.raw = raw
        self.field = field

    def __format__(self, spec: str) -> str:
        if spec:
            return format(self.raw, spec)
        if isinstance(self.raw, float) and not self.raw.is_integer():
            return f"{self.raw:,}"
        return format_field(self.field, int(self.raw))

    def __str__(self) -> str:
        return format(self, "")


class Signed(Number):
    """A change: always with its sign (``+52.1억``)."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        text = super().__format__(spec)
        return text if spec or text.startswith("-") else f"+{text}"


def placeholders(template: str) -> list[str]:
    """The placeholder names of a template. Raises TemplateError on bad syntax."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(
            f"bad template: {exc} (write {{{{ and }}}} for literal braces)"
        ) from None
    names = []
    for _text, name, _spec, conversion in parsed:
        if name is None:
            continue
        if not name or not name.replace("_", "").isalnum():
            raise TemplateError(f"placeholder {{{name}}} is not a name; use e.g. {{value}}")
        if conversion is not None:
            raise TemplateError(f"{{{name}!{conversion}}}: write {{{name}}} (no !{conversion})")
        names.append(name)
    return names


_SAMPLE = Tick("005930", date(2026, 1, 2), "090000", 9 * 3600, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def check_placeholders(template: str, allowed: Iterable[str], rule_type: str) -> None:
    """Raise TemplateError if the template uses a placeholder not in ``allowed``."""
    known = set(allowed)
    unknown = [name for name in placeholders(template) if name not in known]
    if unknown:
        raise TemplateError(
            f"unknown placeholder {{{unknown[0]}}} for a {rule_type} rule; available: "
            + ", ".join(sorted(known))
        )


def check_template(rule: Any) -> None:
    """Raise TemplateError if the rule's message uses a placeholder its rule does not have, or
    cannot render (a format spec that does not fit, e.g. ``{time:,}``)."""
    template: str = rule.message
    check_placeholders(template, rule.placeholders(), rule.type)
    # The types an alert has: the rule's own threshold; the tick's values are whole numbers.
    extra = {"threshold": rule.threshold, "prev": 0, "baseline": 0, "change": 0}
    try:
        template.format_map(context(rule, _SAMPLE, 0, extra))
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"bad format in template: {exc}") from None


def context(
    rule: Any, tick: Tick, value: float, extra: Mapping[str, float | None]
) -> dict[str, object]:
    """Everything a template may show for an alert of ``rule`` on ``tick``."""
    field = rule.field
    values: dict[str, object] = {
        "rule": rule.id,
        "ticker": tick.ticker,
        "time": f"{tick.hhmmss[:2]}:{tick.hhmmss[2:4]}:{tick.hhmmss[4:]}",
        "date": tick.day.isoformat(),
        "value": Number(value, field),
        "field": field,
        "description": rule.description or "",
        "MKSC_SHRN_ISCD": tick.ticker,
        "STCK_CNTG_HOUR": tick.hhmmss,
    }
    for name in NUMERIC_FIELDS:
        values[name] = Number(tick.value(name), name)
    for name, param in rule.param_values().items():
        if name in ("for", "window", "cooldown"):
            values[name] = format_duration(param)
        elif isinstance(param, int | float):
            values[name] = Number(param, field)
        else:
            values[name] = "" if param is None else param
    for name in ("threshold", "prev", "baseline", "change"):
        number = extra.get(name)
        kind = Signed if name == "change" else Number
        values[name] = "" if number is None else kind(number, field)
    return values


def render(rule: Any, tick: Tick, value: float, extra: Mapping[str, float | None]) -> str:
    """The alert's text: the rule's template, or the default message."""
    values = context(rule, tick, value, extra)
    if rule.message:
        try:
            return str(rule.message.format_map(values))
        except Exception:
            pass  # a format that fits only some values ({value:c}): never lose an alert to it
    return default_template(rule).format_map(values)


_THRESHOLD_WORDS = {
    "crosses_above": "{threshold} 상향 돌파",
    "crosses_below": "{threshold} 하향 돌파",
    "above": "{threshold} 초과",
    "below": "{threshold} 미만",
}


def default_template(rule: Any) -> str:
    """What fired, on which ticker, with which value against which threshold."""
    lasting = " {for} 지속" if getattr(rule, "for_", 0) else ""
    if rule.type == "threshold":
        what = _THRESHOLD_WORDS[rule.kind] + lasting
    elif rule.type == "sign_flip":
        what = {
            "any": "부호 전환",
            "to_positive": "양(+) 전환",
            "to_negative": "음(-) 전환",
        }[rule.direction]
        what += " (|값| ≥ {min_abs})" if rule.min_abs else ""
    else:
        word = "증가" if rule.rise is not None else "감소"
        limit = "{rise}" if rule.rise is not None else "{fall}"
        what = f"{{window}} 내 {limit} 이상 {word}{lasting}: {{change}} (기준 {{baseline}})"
    return "{ticker} {field} " + what + " → 현재 {value} ({time})"
