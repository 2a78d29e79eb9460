"""What every rule type shares: the parsing of rule values (columns, amounts, durations, hours),
the options every rule has, and the registry of rule types by name.

A rule type is one class (bot/engine/types/): a pydantic model of its options, registered with
``@register``, that also gives its fresh state, its share of the compiled step function
(bot.engine.codegen), its default wording and its readable condition. The engine, the loader,
snapshots, `rules check` and the templates ask the rule; none of them switches on its type.
Semantics: docs/RULES-SPEC.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    model_validator,
)

from bot.amounts import UNIT_WORDS, NotAnAmount, format_field, parse_korean, unit_of
from bot.codes import StockCode
from bot.durations import format_duration, parse_duration
from bot.engine import codegen
from bot.engine.codegen import Part, State, within
from bot.engine.templates import COMMON, RESOLVED_EXTRAS, field_label
from bot.market.sessions import DEFAULT_SESSIONS, SESSION_NAMES, MinuteRange
from bot.ticks import FIELD_INDEX, NUMERIC_FIELDS, VALUE_FIELDS

#: Readable names accepted for the KIS columns (the KIS names always work).
FIELD_ALIASES = {
    "sell_volume": "SELN_CNQN",
    "sell_value": "SELN_TR_PBMN",
    "buy_volume": "SHNU_CNQN",
    "buy_value": "SHNU_TR_PBMN",
    "net_buy_volume": "NTBY_CNQN",
    "net_buy_value": "NTBY_TR_PBMN",
    "sell_remainder": "SELN_RSQN",
    "buy_remainder": "SHNU_RSQN",
    "net_bid_remainder": "WHOL_NTBY_QTY",
}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
AMOUNT_KEYS = ("crosses_above", "crosses_below", "above", "below", "rearm", "min_abs", "rise",
               "fall")  # fmt: skip


def parse_field(value: object) -> str:
    if isinstance(value, str):
        name = FIELD_ALIASES.get(value.strip().lower(), value.strip().upper())
        if name in NUMERIC_FIELDS:
            return name
    raise ValueError(f"{value!r} is not a numeric column; use one of {', '.join(NUMERIC_FIELDS)}")


_LARGEST = 9 * 10**18  # KIS's figures fit in a signed 64-bit integer, as do the store's columns


def unit_problem(field: str, value: object) -> str | None:
    """What is wrong with the unit of an amount written for ``field`` (``100억원`` for shares)."""
    counts = "원" if field in VALUE_FIELDS else "주"
    unit = unit_of(value) if isinstance(value, str) else None
    if unit is not None and unit != counts:
        wanted = UNIT_WORDS[counts]
        return f"{value!r} is in {UNIT_WORDS[unit]}, but {field} counts {wanted} ({counts})"
    return None


def parse_amount(value: object) -> int | float:
    """``10000000000``, ``10_000_000_000``, ``"100억"``, ``"1.5조"``, ``"1억5000만"``, ``"3천만"``
    -> a number (an int when whole, exact however large)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number a rule can compare with")
    number: int | float | None = value if isinstance(value, int | float) else None
    if isinstance(value, str):
        try:
            exact, _unit = parse_korean(value)
        except NotAnAmount:
            pass  # the message below says how to write one
        else:
            whole = exact == exact.to_integral_value()
            number = int(exact) if whole else float(exact)
    if number is None:
        raise ValueError(
            f"{value!r} is not a number (write 10000000000, 10_000_000_000, 100억 or 1억5000만)"
        )
    if abs(number) > _LARGEST:
        raise ValueError(f"{value!r} is larger than any figure KIS sends")
    return number


class KeyProblem(ValueError):
    """A problem of a whole rule that is best shown at one of its keys (or at its value).
    ``offset``: where in the value's text (an expression) the problem is, when known."""

    def __init__(
        self, message: str, key: str | None, *, at_value: bool = False, offset: int | None = None
    ) -> None:
        super().__init__(message)
        self.key = key
        self.at_value = at_value
        self.offset = offset


def as_text(value: object) -> object:
    """Numbers where text is expected are text (``id: 12345``, ``description: 2024``)."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _listed(value: object) -> object:
    """One ticker needs no brackets: ``tickers: "005930"`` is ``tickers: ["005930"]``. An empty
    list would switch the rule off without a word: it is refused."""
    if isinstance(value, list | tuple) and not value:
        raise ValueError("list at least one stock, or leave tickers out for every stock")
    return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value


def _duration(value: object) -> int:
    return parse_duration(value)


Duration = Annotated[int, BeforeValidator(_duration)]
Amount = Annotated[int | float, BeforeValidator(parse_amount)]
FieldName = Annotated[str, BeforeValidator(parse_field)]
Text = Annotated[str, BeforeValidator(as_text)]


@dataclass(frozen=True, slots=True)
class Hours:
    """One part of a rule's ``hours``: a session by name (as the config defines it) or a range."""

    name: str | None  # "regular", or None for a range written out
    range: MinuteRange

    def __str__(self) -> str:
        return self.name or str(self.range)


def parse_hours_part(value: object, sessions: Mapping[str, MinuteRange]) -> Hours:
    """``"regular"`` or ``"09:00-10:30"`` -> Hours; ValueError in plain words."""
    if isinstance(value, Hours):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a session name or a range like 09:00-15:30")
    name = value.strip().lower()
    if name in sessions:
        return Hours(name, sessions[name])
    if ":" not in name and "-" not in name:
        known = ", ".join([*SESSION_NAMES, *(s for s in sessions if s not in SESSION_NAMES)])
        raise ValueError(f"unknown session {value!r}: use {known} or a range like 09:00-15:30")
    return Hours(None, MinuteRange.parse(value))


def _sessions(info: ValidationInfo) -> Mapping[str, MinuteRange]:
    context = info.context if isinstance(info.context, Mapping) else {}
    sessions = context.get("sessions")
    return sessions if isinstance(sessions, Mapping) else DEFAULT_SESSIONS


_CHAT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


def _chat_ref(value: object, info: ValidationInfo) -> int | str:
    """One entry of ``to``: a chat id (a whole number) or a name of the config's ``chats``.
    With the config's names in the context (the bot, ``config check``), an unknown name is an
    error here, at its place in the file."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not _CHAT_NAME.fullmatch(value):
        raise ValueError("give a chat id (a number) or a name from the config's chats")
    context = info.context if isinstance(info.context, Mapping) else {}
    chats = context.get("chats")
    if isinstance(chats, Mapping) and value not in chats:
        known = ", ".join(sorted(chats)) or "none defined"
        raise ValueError(f"{value!r} is no chat of the config's chats ({known})")
    return value


def _chat_list(value: object) -> object:
    """``to: desk`` is ``to: [desk]``; an empty list would send the rule nowhere."""
    if isinstance(value, list | tuple) and not value:
        raise ValueError("list at least one chat, or leave to out for every watching chat")
    return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value


ChatRef = Annotated[int | str, BeforeValidator(_chat_ref)]
ChatList = Annotated[tuple[ChatRef, ...], BeforeValidator(_chat_list)]


def _hours_item(value: object, info: ValidationInfo) -> Hours:
    return parse_hours_part(value, _sessions(info))


def _hours_list(value: object, info: ValidationInfo) -> object:
    """One range or name needs no brackets; an empty list would mean never: refused."""
    if isinstance(value, list | tuple) and not value:
        raise ValueError("list at least one range or session, or leave hours out for all day")
    return [parse_hours_part(value, _sessions(info))] if isinstance(value, str) else value


HoursList = Annotated[
    tuple[Annotated[Hours, BeforeValidator(_hours_item)], ...], BeforeValidator(_hours_list)
]


def _attr(name: str) -> str:
    return "for_" if name == "for" else name


def lasts(value: object) -> bool:
    """Is this ``for`` longer than 0 (its default)? A wrong value counts as given."""
    try:
        return value is not None and parse_duration(value) != 0
    except ValueError:
        return True


class RuleBase(BaseModel):
    """The options of every rule, and what every rule type provides (overridden per type)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Text
    type: str
    field: FieldName
    description: Text | None = None
    tickers: Annotated[tuple[StockCode, ...] | None, BeforeValidator(_listed)] = None  # None: all
    cooldown: Duration = 0
    message: Text | None = None
    enabled: bool = True
    hours: HoursList | None = None  # None: all day
    rearm: Amount | None = None  # only where the type takes it (takes_rearm)
    resolve: bool = False
    resolve_message: Text | None = None
    notify: Literal["loud", "silent"] = "loud"  # silent: sent without sound
    to: ChatList | None = None  # None: every allowed chat watching the stock

    #: Parameters a message template may use, besides the common placeholders.
    params: ClassVar[tuple[str, ...]] = ()
    #: Values besides the parameters that some rules of the type have (``prev``, ``baseline``).
    extras: ClassVar[tuple[str, ...]] = ()
    #: Whether a rule of the type may have ``resolve: true`` (a moment has nothing to end).
    takes_resolve: ClassVar[bool] = True
    #: What the type is, in a trader's words, for errors (``a sign flip``).
    spoken: ClassVar[str] = "a rule"

    @model_validator(mode="before")
    @classmethod
    def _units_fit_the_field(cls, data: Any) -> Any:
        """``100억원`` on a share column (or ``5000주`` on a won column) is a mistake."""
        try:
            field = parse_field(data.get("field")) if isinstance(data, dict) else None
        except ValueError:
            return data  # the field's own error says it
        if field is None:
            return data
        for key in AMOUNT_KEYS:
            problem = unit_problem(field, data.get(key))
            if problem:
                raise KeyProblem(f"{key}: {problem}", key)
        return data

    @model_validator(mode="after")
    def _check_common(self) -> RuleBase:
        if not _ID.fullmatch(self.id):
            raise KeyProblem(
                f"id {self.id!r} must start with a letter or digit and use only letters, digits, "
                "'_', '.', '-'",
                "id",
                at_value=True,
            )
        problem = (
            self.shape_problem(self.model_dump(by_alias=True))
            or self.own_problem()
            or self.option_problem()
        )
        if problem:
            raise problem
        return self

    def own_problem(self) -> KeyProblem | None:
        """What else is wrong with a rule of the type whose keys are right."""
        return None

    def option_problem(self) -> KeyProblem | None:
        """What is wrong with ``rearm``, ``resolve`` and ``resolve_message`` for this rule."""
        if self.rearm is not None:
            problem = self.rearm_problem(self.rearm)
            if problem:
                return problem
        if self.resolve and not self.takes_resolve:
            return KeyProblem(
                f"resolve: {self.spoken} is a moment, with nothing that ends later; "
                "resolve works on threshold, change and expr rules",
                "resolve",
            )
        if self.resolve_message is not None and not self.resolve:
            return KeyProblem(
                "resolve_message is the message of a resolved event: add 'resolve: true'",
                "resolve_message",
            )
        return None

    def rearm_problem(self, rearm: float) -> KeyProblem | None:
        """``rearm`` on a type without it; types that take it override this."""
        return KeyProblem(
            f"rearm works only with crosses_above, crosses_below, above and below, not with "
            f"{self.spoken}",
            "rearm",
        )

    # What a template may use.

    def param_values(self) -> dict[str, Any]:
        return {name: getattr(self, _attr(name)) for name in self.params}

    def placeholders(self) -> tuple[str, ...]:
        """What this rule's message may use: the common ones and those of its kind."""
        return (*COMMON, *self.own_placeholders())

    def resolved_placeholders(self) -> tuple[str, ...]:
        """What this rule's resolve_message may use: the alert's and when it fired."""
        return (*self.placeholders(), *RESOLVED_EXTRAS)

    def own_placeholders(self) -> tuple[str, ...]:
        return self.params

    @classmethod
    def type_placeholders(cls) -> tuple[str, ...]:
        """What some rule of this type may use (for a rule whose kind is not known yet)."""
        return (*COMMON, *cls.params, *cls.extras)

    # What decides firing, and what a type must provide.

    def definition(self) -> dict[str, Any]:
        """What decides firing: equal definitions keep their state across a reload. How an
        alert is delivered (``notify``, ``to``) decides nothing of it."""
        return self.model_dump(
            exclude={"message", "description", "resolve_message", "notify", "to"}
        )

    @classmethod
    def shape_problem(cls, values: Mapping[str, Any]) -> KeyProblem | None:
        """What is wrong with which keys a rule has, from its values: a validated rule's, or a
        raw one's (then it is checked even when a value is wrong)."""
        return None

    @property
    def threshold(self) -> float | None:
        """What ``{threshold}`` shows (None: nothing)."""
        raise NotImplementedError

    def fresh_state(self) -> State:
        """The rule's state at the start of a trading date, in the order of its part's names."""
        raise NotImplementedError

    def part(self, n: int, share: bool = False) -> Part:
        """The rule's share of the step function, as rule ``n`` of it; ``share``: its series
        named so that rules of the part with equal series keep them once."""
        raise NotImplementedError

    def condition(self) -> str:
        """The condition in one readable line (`rules check`, /rules)."""
        raise NotImplementedError

    def levels(self) -> tuple[float, ...] | None:
        """The levels of ``field`` without which the rule does nothing on a tick: its code may
        be skipped while the value stays between the same two of them (bot.engine.codegen
        ``guarded``). None: the rule must see every tick (hours, a window)."""
        return None

    def waiting(self, n: int) -> str | None:
        """An expression of rule ``n``'s state, true while it must see the next tick whatever
        its value (a run waiting out its ``for``); None: never."""
        return None

    def what(self) -> str:
        """The default message's words for what fired (a template: ``{threshold} 상향 돌파``)."""
        raise NotImplementedError

    def ended(self) -> str:
        """The default resolved message's words for what ended (``{threshold} 이상``)."""
        return self.what()

    def default_message(self) -> str:
        """What fired, on which stock, with which value against which threshold."""
        return (
            "{stock} " + field_label(self.field) + " " + self.what() + " → 현재 {value} ({time})"
        )

    def default_resolved_message(self) -> str:
        """What ended, on which stock, and the value now."""
        return (
            "해제 · {stock} " + field_label(self.field) + " " + self.ended()
            + " → 현재 {value} ({time})"
        )  # fmt: skip

    # Helpers of the types.

    @property
    def hours_test(self) -> str | None:
        """The step function's test of ``t`` for the rule's hours; None: all day."""
        if self.hours is None:
            return None
        return within([part.range for part in self.hours])

    def run_part(self, n: int, holds: str, extra: str) -> tuple[list[str], tuple[str, ...]]:
        """A state rule's run (``holds`` within its hours, ``for``, resolve): its lines and its
        own state variables (``start``, ``spent``, ``open`` with resolve)."""
        v = f"v{self.column}"
        then = [f"open{n} = a"] if self.resolve else []
        resolve = codegen.resolved(n, v, extra) if self.resolve else None
        for_: int = getattr(self, "for_", 0)
        fire = codegen.fire(n, v, extra, then)
        lines = codegen.run(n, codegen.both(holds, self.hours_test), for_, fire, resolve)
        return lines, (f"start{n}", f"spent{n}", *((f"open{n}",) if self.resolve else ()))

    def summary(self) -> str:
        """One line for `rules check` and /rules."""
        parts = [f"{self.id}  {self.type} {self.headline()}"]
        if self.hours:
            parts.append(f"hours {','.join(str(part) for part in self.hours)}")
        if self.tickers:
            parts.append(f"[{' '.join(self.tickers)}]")
        if self.cooldown:
            parts.append(f"cooldown {format_duration(self.cooldown)}")
        if self.resolve:
            parts.append("resolve")
        if self.notify == "silent":
            parts.append("silent")
        if self.to:
            parts.append(f"to {','.join(map(str, self.to))}")
        if not self.enabled:
            parts.append("(disabled)")
        return "  ".join(parts)

    def headline(self) -> str:
        """The field and the condition (an expression rule shows its expression instead)."""
        return f"{self.field} {self.condition()}"

    @property
    def column(self) -> int:
        """The index of ``field`` in a Tick: the step function's ``v{column}`` is its value."""
        return FIELD_INDEX[self.field]

    def reads(self) -> tuple[int, ...]:
        """The tick indices of the columns the rule's step reads (``v{i}``)."""
        return (self.column,)

    def amount(self, value: float) -> str:
        return format_field(self.field, int(value)) if float(value).is_integer() else str(value)


#: Every rule type, by the name its rules give in ``type``, in the order they were registered.
RULE_TYPES: dict[str, type[RuleBase]] = {}
R = TypeVar("R", bound=RuleBase)


def register(cls: type[R]) -> type[R]:
    """Make a rule type known by the name in its ``type: Literal[...]``."""
    (name,) = get_args(cls.model_fields["type"].annotation)
    if name in RULE_TYPES:
        raise ValueError(f"rule type {name!r} is registered twice")
    RULE_TYPES[name] = cls
    return cls
