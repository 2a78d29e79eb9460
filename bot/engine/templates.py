"""Alert messages: ``message`` templates with ``{placeholders}``, and the default message.

A number placeholder without a format spec reads as a trader reads it (``{value}`` -> ``123.5억``
for won columns, ``1,234주`` for share columns); with a spec it is the raw number formatted
(``{value:,}`` -> ``12,350,000,000``).

A message is bounded (``MESSAGE_LIMIT`` characters, as written and as rendered; widths and
precisions up to ``MAX_SPEC_NUMBER``) and must be Unicode text: all checked when the rule is
loaded, so that no alert can fill the database or be refused by it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from bot.amounts import format_field
from bot.durations import format_duration
from bot.ticks import COLUMNS, NUMERIC_FIELDS, Tick

#: Placeholders every rule's message may use (besides those of its type and parameters).
COMMON = ("rule", "ticker", "time", "date", "value", "field", "description", "threshold", *COLUMNS)


#: The longest message an alert may have, in characters (Telegram allows 4,096 for a message that
#: may hold several alerts).
MESSAGE_LIMIT = 1000
#: The widest width, and the longest precision, a format spec may ask for (``{value:>20,}``).
MAX_SPEC_NUMBER = 100
#: Python's format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type].
_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>[0-9]*)[,_]?(?:\.(?P<precision>[0-9]*))?[a-zA-Z%]?",
    re.DOTALL,
)


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
    """The placeholder names of a template. Raises TemplateError on bad syntax, on a template
    longer than ``MESSAGE_LIMIT`` and on a format spec that could make it much longer."""
    if len(template) > MESSAGE_LIMIT:
        raise TemplateError(
            f"{len(template):,} characters: a message may have {MESSAGE_LIMIT:,} at most"
        )
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
        _check_spec(name, _spec or "")
        names.append(name)
    return names


def _check_spec(name: str, spec: str) -> None:
    """A spec that renders within bounds: no width or precision over ``MAX_SPEC_NUMBER``, and no
    placeholder inside (``{value:>{SELN_CNQN}}`` would take its width from a tick)."""
    shown = f"{{{name}:{spec}}}"
    if "{" in spec:
        raise TemplateError(f"{shown}: a format spec cannot hold a placeholder")
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise TemplateError(f"{shown}: not a format spec (e.g. {{{name}:,}} or {{{name}:>12}})")
    for part in ("width", "precision"):
        number = match.group(part)
        if number and int(number) > MAX_SPEC_NUMBER:
            raise TemplateError(
                f"{shown}: a {part} of {int(number):,} is too much: {MAX_SPEC_NUMBER} at most"
            )


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
        text = template.format_map(context(rule, _SAMPLE, 0, extra))
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"bad format in template: {exc}") from None
    if not text.isascii():
        _check_unicode(text)
    longest = len(_widest(rule, template))
    if longest > MESSAGE_LIMIT:
        raise TemplateError(
            f"renders as up to {longest:,} characters: a message may have {MESSAGE_LIMIT:,} "
            "at most"
        )


def _check_unicode(text: str) -> None:
    """Text a database and Telegram take: no lone surrogate (half of a character)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        half = f"\\u{ord(text[exc.start]):04x}"
        raise TemplateError(
            f"{half} is half of a character (a lone surrogate): write the character itself"
        ) from None


#: The widest whole number a tick can carry (KIS's figures fit in 64 bits).
_WIDEST = -(2**63)
_WIDE_SAMPLE = Tick("005930", date(2026, 1, 2), "090000", 9 * 3600, *[_WIDEST] * 9)


def _widest(rule: Any, template: str) -> str:
    """The template rendered with the widest numbers an alert can have: as long as it gets."""
    extra = {"threshold": rule.threshold, "prev": _WIDEST, "baseline": _WIDEST, "change": _WIDEST}
    try:
        return template.format_map(context(rule, _WIDE_SAMPLE, _WIDEST, extra))
    except (ValueError, TypeError, OverflowError):
        return ""  # a spec that fits only some values ({value:c}): one character, or the default


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
            return _bounded(str(rule.message.format_map(values)))
        except Exception:
            pass  # a format that fits only some values ({value:c}): never lose an alert to it
    return _bounded(default_template(rule).format_map(values))


def _bounded(text: str) -> str:
    """At most ``MESSAGE_LIMIT`` characters, whatever a value turned out to be (loading made sure
    that no value an alert can have gets near it)."""
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


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
