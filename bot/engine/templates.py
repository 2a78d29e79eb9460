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
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from bot.amounts import format_field
from bot.durations import format_duration
from bot.ticks import COLUMNS, FIELD_INDEX, Tick

#: Placeholders every rule's message may use (besides those of its type and parameters):
#: ``stock`` is the stock's label (삼성전자(005930)), ``name`` its name (the code when unknown).
COMMON = ("rule", "ticker", "stock", "name", "time", "date", "value", "field", "description",
          "threshold", *COLUMNS)  # fmt: skip
#: What a resolve_message may use besides the alert's placeholders: the fired alert's value and
#: time (``value`` and ``time`` are those of the tick that resolved it).
RESOLVED_EXTRAS = ("fired_value", "fired_time")

#: The columns in a Korean trader's words, for default messages.
FIELD_LABELS = {
    "SELN_CNQN": "매도수량",
    "SELN_TR_PBMN": "매도금액",
    "SHNU_CNQN": "매수수량",
    "SHNU_TR_PBMN": "매수금액",
    "NTBY_CNQN": "순매수수량",
    "NTBY_TR_PBMN": "순매수",
    "SELN_RSQN": "매도잔량",
    "SHNU_RSQN": "매수잔량",
    "WHOL_NTBY_QTY": "순매수잔량",
}


def field_label(field: str) -> str:
    """``NTBY_TR_PBMN`` -> ``순매수``."""
    return FIELD_LABELS.get(field, field)


def stock_name(label: str, ticker: str) -> str:
    """The name in a label ``삼성전자(005930)``; the code when the label is the code alone."""
    return label.removesuffix(f"({ticker})") or ticker


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


def check_template(rule: Any, template: str | None = None) -> None:
    """Raise TemplateError if the rule's message (or ``template``, its resolve_message) uses a
    placeholder its rule does not have, or cannot render (a format spec that does not fit, e.g.
    ``{time:,}``)."""
    resolved = template is not None
    template = template if template is not None else rule.message
    assert template is not None
    allowed = rule.resolved_placeholders() if resolved else rule.placeholders()
    check_placeholders(template, allowed, rule.type)
    # The types an alert has: the rule's own threshold; the tick's values are whole numbers.
    extra = {"threshold": rule.threshold, "prev": 0, "baseline": 0, "change": 0}
    try:
        text = template.format_map(_sample_context(rule, _SAMPLE, 0, extra))
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
        return template.format_map(_sample_context(rule, _WIDE_SAMPLE, _WIDEST, extra, wide=True))
    except (ValueError, TypeError, OverflowError):
        return ""  # a spec that fits only some values ({value:c}): one character, or the default


#: The longest label a stock has, for the bound on a message's length (names are short).
_WIDE_LABEL = "가" * 40 + "(005930)"


def _sample_context(
    rule: Any, tick: Tick, value: float, extra: Mapping[str, float | None], wide: bool = False
) -> dict[str, object]:
    """A context with every placeholder a rule's messages may use, resolved ones included."""
    values = context(rule, tick, value, extra, _WIDE_LABEL if wide else tick.ticker).filled()
    values["fired_value"] = values["value"]
    values["fired_time"] = values["time"]
    return values


class Values(dict[str, object]):
    """Everything a template may show for an event, each value made when a template first asks
    for it (an alert's message names a few of some thirty)."""

    __slots__ = ("extra", "rule", "stock", "tick", "value")

    def __init__(
        self, rule: Any, tick: Tick, value: float, extra: Mapping[str, float | None], stock: str
    ) -> None:
        super().__init__()
        self.rule, self.tick, self.value, self.extra = rule, tick, value, extra
        self.stock = stock or tick.ticker

    def __missing__(self, name: str) -> object:
        made = _getter(self.rule, name)(self)
        self[name] = made
        return made

    def filled(self) -> Values:
        """Every value made (for a check that all of them render)."""
        for name in (*_MADE, *FIELD_INDEX, *_EXTRAS, *self.rule.params):
            self[name]
        return self


#: How an event's value of a placeholder is made from its Values.
Getter = Callable[[Values], object]


def _getter(rule: Any, name: str) -> Getter:
    """How the value of placeholder ``name`` is made for an event of ``rule``: the one place
    that says what each placeholder shows. Raises KeyError for a name the rule does not have."""
    made = _MADE.get(name)
    if made is not None:
        return made
    if name in FIELD_INDEX:
        column = FIELD_INDEX[name]
        return lambda v: Number(v.tick[column], name)  # type: ignore[arg-type]  # a number
    if name in _EXTRAS:
        kind, field = (Signed if name == "change" else Number), rule.field

        def extra(v: Values) -> object:
            number = v.extra.get(name)
            return "" if number is None else kind(number, field)

        return extra
    if name in rule.params:
        param = rule.param_values()[name]
        shown: object
        if name in ("for", "window", "cooldown"):
            shown = format_duration(param)
        elif isinstance(param, int | float):
            shown = Number(param, rule.field)
        else:
            shown = "" if param is None else param
        return lambda v: shown
    raise KeyError(name)


def _hhmmss(tick: Tick) -> str:
    return f"{tick.hhmmss[:2]}:{tick.hhmmss[2:4]}:{tick.hhmmss[4:]}"


_EXTRAS = ("threshold", "prev", "baseline", "change")
_MADE: dict[str, Callable[[Values], object]] = {
    "rule": lambda v: v.rule.id,
    "ticker": lambda v: v.tick.ticker,
    "stock": lambda v: v.stock,
    "name": lambda v: stock_name(v.stock, v.tick.ticker),
    "time": lambda v: _hhmmss(v.tick),
    "date": lambda v: v.tick.day.isoformat(),
    "value": lambda v: Number(v.value, v.rule.field),
    "field": lambda v: v.rule.field,
    "description": lambda v: v.rule.description or "",
    "MKSC_SHRN_ISCD": lambda v: v.tick.ticker,
    "STCK_CNTG_HOUR": lambda v: v.tick.hhmmss,
}


def context(
    rule: Any, tick: Tick, value: float, extra: Mapping[str, float | None], stock: str = ""
) -> Values:
    """Everything a template may show for an alert of ``rule`` on ``tick``; ``stock`` is the
    stock's label (default: its code)."""
    return Values(rule, tick, value, extra, stock)


#: What a template shows that depends on the rule alone (its parameters too): written into a
#: ``Message`` once, not formatted again for every alert.
_OF_THE_RULE = ("rule", "field", "description", "threshold")


class Message:
    """A rule's message template made ready for its alerts: the rule's own values (its id,
    threshold, window, ...) written in once, so an alert formats only what its tick and stock
    give (a desk's rules fire thousands of alerts a minute). A template that cannot render a
    value of the rule falls back to the default, as one that cannot render an alert's value."""

    __slots__ = ("_default", "_parts")

    def __init__(self, rule: Any, template: str | None, default: str) -> None:
        self._parts = _ready(rule, template) if template else None
        self._default = _ready(rule, default)

    def render(
        self,
        rule: Any,
        tick: Tick,
        value: float,
        extra: Mapping[str, float | None],
        stock: str = "",
        fired: Any = None,
    ) -> str:
        """The text of the event on ``tick``; ``fired``: the alert a resolved event ends."""
        values = context(rule, tick, value, extra, stock)
        if fired is not None:
            values["fired_value"] = Number(fired.value, rule.field)
            values["fired_time"] = _hhmmss(fired.tick)
        if self._parts is not None:
            try:
                return _bounded(_joined(self._parts, values))
            except Exception:
                pass  # a format that fits only some values ({value:c}): never lose an alert to it
        if self._default is None:
            raise TemplateError("the default message cannot render")  # ours: a bug if it happens
        return _bounded(_joined(self._default, values))


#: A template ready to render: (text, how its placeholder's value is made or None, format spec)
#: as string.Formatter parses it, with the rule's own placeholders already formatted into the text.
Ready = list[tuple[str, Getter | None, str]]


def _ready(rule: Any, template: str) -> Ready | None:
    """``template`` with the rule's own values written in; None when one of them cannot render
    with its spec (the template can render no alert then)."""
    own = Values(rule, _SAMPLE, 0, {"threshold": rule.threshold}, "")
    constant = {*_OF_THE_RULE, *(name for name in rule.params if _of_the_rule(name))}
    parts: Ready = []
    text = ""
    for literal, name, spec, _conversion in string.Formatter().parse(template):
        text += literal
        if name is None:
            continue
        if name in constant:
            try:
                text += format(own[name], spec or "")
            except Exception:
                return None
            continue
        parts.append((text, _dynamic(rule, name), spec or ""))
        text = ""
    parts.append((text, None, ""))
    return parts


def _dynamic(rule: Any, name: str) -> Getter:
    """The getter of a placeholder an event gives; one the rule does not have raises KeyError
    when an event asks for it, as ``format_map`` would."""
    if name in RESOLVED_EXTRAS:
        return lambda v: v[name]  # set by Message.render for a resolved event
    try:
        return _getter(rule, name)
    except KeyError:

        def missing(v: Values) -> object:
            raise KeyError(name)

        return missing


def _of_the_rule(name: str) -> bool:
    """A parameter's placeholder shows the rule's value unless a name of the tick comes first
    (``Values._make``'s order)."""
    return name not in _MADE and name not in FIELD_INDEX and name not in _EXTRAS


def _joined(parts: Ready, values: Values) -> str:
    out = []
    for text, made, spec in parts:
        out.append(text)
        if made is not None:
            out.append(format(made(values), spec))
    return "".join(out)


#: Each rule's messages, ready, by the rule object's id (the rule is kept with them, so its id
#: cannot be another's while it is here). Emptied when full: rules of old rule sets age out.
_MESSAGES: dict[int, tuple[Any, Message, Message]] = {}
_MESSAGES_KEPT = 8192


def messages(rule: Any) -> tuple[Message, Message]:
    """The rule's alert and resolved messages, ready (made once per rule object)."""
    entry = _MESSAGES.get(id(rule))
    if entry is None or entry[0] is not rule:
        if len(_MESSAGES) >= _MESSAGES_KEPT:
            _MESSAGES.clear()
        fired = Message(rule, rule.message, rule.default_message())
        resolved = Message(rule, rule.resolve_message, rule.default_resolved_message())
        entry = _MESSAGES[id(rule)] = (rule, fired, resolved)
    return entry[1], entry[2]


def render(
    rule: Any, tick: Tick, value: float, extra: Mapping[str, float | None], stock: str = ""
) -> str:
    """The alert's text: the rule's template, or the default message."""
    return messages(rule)[0].render(rule, tick, value, extra, stock)


def render_resolved(
    rule: Any,
    tick: Tick,
    value: float,
    extra: Mapping[str, float | None],
    fired: Any,
    stock: str = "",
) -> str:
    """A resolved event's text: ``resolve_message`` or the default, with the resolving tick's
    values and the fired alert's (``fired_value``, ``fired_time``)."""
    return messages(rule)[1].render(rule, tick, value, extra, stock, fired)


def _bounded(text: str) -> str:
    """At most ``MESSAGE_LIMIT`` characters, whatever a value turned out to be (loading made sure
    that no value an alert can have gets near it)."""
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def default_template(rule: Any) -> str:
    """What fired, on which stock, with which value against which threshold (the rule's type
    words it)."""
    return str(rule.default_message())
