"""The three rule types as pydantic models (one per type, discriminated on ``type``, unknown
keys refused), the parsing of their parameters, and RuleSet. Semantics: docs/RULES-SPEC.md; loading
files with positions: bot.engine.spec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, model_validator

from bot.amounts import UNIT_WORDS, NotAnAmount, format_field, parse_korean, unit_of
from bot.codes import StockCode
from bot.durations import format_duration, parse_duration
from bot.engine.templates import COMMON
from bot.ticks import NUMERIC_FIELDS, VALUE_FIELDS

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
_AMOUNT_KEYS = ("crosses_above", "crosses_below", "above", "below", "min_abs", "rise", "fall")


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
    """A problem of a whole rule that is best shown at one of its keys (or at its value)."""

    def __init__(self, message: str, key: str | None, *, at_value: bool = False) -> None:
        super().__init__(message)
        self.key = key
        self.at_value = at_value


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


class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Text
    type: str
    field: FieldName
    description: Text | None = None
    tickers: Annotated[tuple[StockCode, ...] | None, BeforeValidator(_listed)] = None  # None: all
    cooldown: Duration = 0
    message: Text | None = None
    enabled: bool = True

    #: Parameters a message template may use, besides the common placeholders.
    params: ClassVar[tuple[str, ...]] = ()

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
        for key in _AMOUNT_KEYS:
            problem = unit_problem(field, data.get(key))
            if problem:
                raise KeyProblem(f"{key}: {problem}", key)
        return data

    @model_validator(mode="after")
    def _check_id(self) -> _RuleBase:
        if not _ID.fullmatch(self.id):
            raise KeyProblem(
                f"id {self.id!r} must start with a letter or digit and use only letters, digits, "
                "'_', '.', '-'",
                "id",
                at_value=True,
            )
        return self

    def param_values(self) -> dict[str, Any]:
        return {name: getattr(self, _attr(name)) for name in self.params}

    def placeholders(self) -> tuple[str, ...]:
        """What this rule's message may use: the common ones and those of its kind."""
        return (*COMMON, *self.own_placeholders())

    def own_placeholders(self) -> tuple[str, ...]:
        return self.params

    #: Values besides the parameters that some rules of the type have (``prev``, ``baseline``).
    extras: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def type_placeholders(cls) -> tuple[str, ...]:
        """What some rule of this type may use (for a rule whose kind is not known yet)."""
        return (*COMMON, *cls.params, *cls.extras)

    def definition(self) -> dict[str, Any]:
        """What decides firing: equal definitions keep their state across a reload."""
        return self.model_dump(exclude={"message", "description"})

    @classmethod
    def shape_problem(cls, values: Mapping[str, Any]) -> KeyProblem | None:
        """What is wrong with which keys a rule has, from its values: a validated rule's, or a
        raw one's (then it is checked even when a value is wrong)."""
        return None

    def condition(self) -> str:
        raise NotImplementedError

    def summary(self) -> str:
        """One line for `rules check` and /rules."""
        parts = [f"{self.id}  {self.type} {self.field} {self.condition()}"]
        if self.tickers:
            parts.append(f"[{' '.join(self.tickers)}]")
        if self.cooldown:
            parts.append(f"cooldown {format_duration(self.cooldown)}")
        if not self.enabled:
            parts.append("(disabled)")
        return "  ".join(parts)

    def amount(self, value: float) -> str:
        return format_field(self.field, int(value)) if float(value).is_integer() else str(value)


def _lasts(value: object) -> bool:
    """Is this ``for`` longer than 0 (its default)? A wrong value counts as given."""
    try:
        return value is not None and parse_duration(value) != 0
    except ValueError:
        return True


def _attr(name: str) -> str:
    return "for_" if name == "for" else name


class ThresholdRule(_RuleBase):
    type: Literal["threshold"]
    crosses_above: Amount | None = None
    crosses_below: Amount | None = None
    above: Amount | None = None
    below: Amount | None = None
    for_: Duration = Field(0, alias="for")

    params: ClassVar[tuple[str, ...]] = ("crosses_above", "crosses_below", "above", "below", "for")
    extras: ClassVar[tuple[str, ...]] = ("prev",)
    _KINDS: ClassVar[tuple[str, ...]] = ("crosses_above", "crosses_below", "above", "below")

    @model_validator(mode="after")
    def _one_condition(self) -> ThresholdRule:
        problem = self.shape_problem(self.model_dump(by_alias=True))
        if problem:
            raise problem
        return self

    @classmethod
    def shape_problem(cls, values: Mapping[str, Any]) -> KeyProblem | None:
        kinds = [kind for kind in cls._KINDS if values.get(kind) is not None]
        if len(kinds) != 1:
            return KeyProblem(
                "a threshold rule needs exactly one of crosses_above, crosses_below, above, below"
                + (f" (it has {', '.join(kinds)})" if kinds else ""),
                kinds[1] if kinds else None,
            )
        if _lasts(values.get("for")) and kinds[0].startswith("crosses"):
            return KeyProblem(
                "'for' only works with above and below (a crossing is a moment)", "for"
            )
        return None

    @property
    def kind(self) -> str:
        return next(kind for kind in self._KINDS if getattr(self, kind) is not None)

    def own_placeholders(self) -> tuple[str, ...]:
        if self.kind.startswith("crosses"):
            return (self.kind, "prev")  # a crossing has a previous value, and no `for`
        return (self.kind, "for")

    @property
    def threshold(self) -> float:
        value: float | None = getattr(self, self.kind)
        assert value is not None
        return value

    def condition(self) -> str:
        text = f"{self.kind} {self.amount(self.threshold)}"
        return text + (f" for {format_duration(self.for_)}" if self.for_ else "")


class SignFlipRule(_RuleBase):
    type: Literal["sign_flip"]
    min_abs: Amount = Field(0, ge=0)
    direction: Literal["any", "to_positive", "to_negative"] = "any"

    params: ClassVar[tuple[str, ...]] = ("min_abs", "direction")

    @property
    def threshold(self) -> float:
        """What ``{threshold}`` shows: the smallest size that counts."""
        return self.min_abs

    def condition(self) -> str:
        text = self.direction
        return text + (f" min_abs {self.amount(self.min_abs)}" if self.min_abs else "")


class ChangeRule(_RuleBase):
    type: Literal["change"]
    window: Duration
    rise: Amount | None = Field(None, gt=0)
    fall: Amount | None = Field(None, gt=0)
    for_: Duration = Field(0, alias="for")

    params: ClassVar[tuple[str, ...]] = ("window", "rise", "fall", "for")
    extras: ClassVar[tuple[str, ...]] = ("baseline", "change")

    @model_validator(mode="after")
    def _one_direction(self) -> ChangeRule:
        problem = self.shape_problem(self.model_dump(by_alias=True))
        if problem:
            raise problem
        if self.window <= 0:
            raise KeyProblem("window must be longer than 0 seconds", "window")
        return self

    @classmethod
    def shape_problem(cls, values: Mapping[str, Any]) -> KeyProblem | None:
        rise, fall = values.get("rise") is not None, values.get("fall") is not None
        if rise == fall:
            return KeyProblem(
                "a change rule needs exactly one of rise, fall (a positive number)",
                "fall" if rise else None,
            )
        return None

    def own_placeholders(self) -> tuple[str, ...]:
        kind = "rise" if self.rise is not None else "fall"
        return ("window", kind, "for", "baseline", "change")

    @property
    def threshold(self) -> float:
        """The rise or fall needed (what ``{threshold}`` shows)."""
        value = self.rise if self.rise is not None else self.fall
        assert value is not None
        return value

    def condition(self) -> str:
        kind = "rise" if self.rise is not None else "fall"
        text = f"{kind} {self.amount(self.threshold)} within {format_duration(self.window)}"
        return text + (f" for {format_duration(self.for_)}" if self.for_ else "")


AnyRule = ThresholdRule | SignFlipRule | ChangeRule
MODELS: dict[str, type[AnyRule]] = {
    "threshold": ThresholdRule,
    "sign_flip": SignFlipRule,
    "change": ChangeRule,
}
Rule = Annotated[ThresholdRule | SignFlipRule | ChangeRule, Field(discriminator="type")]
RULE = TypeAdapter(Rule)
TYPES = ("threshold", "sign_flip", "change")


@dataclass(frozen=True)
class RuleSet:
    """Validated rules, in file then list order."""

    rules: tuple[ThresholdRule | SignFlipRule | ChangeRule, ...]
    files: tuple[Path, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [rule.id for rule in self.rules]

    @property
    def enabled(self) -> list[ThresholdRule | SignFlipRule | ChangeRule]:
        return [rule for rule in self.rules if rule.enabled]

    def summary_lines(self) -> list[str]:
        return [rule.summary() for rule in self.rules]


def rule_changes(old: RuleSet, new: RuleSet) -> dict[str, list[str]]:
    """The ids added, removed and changed (in what makes them fire) from ``old`` to ``new``."""
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    return {
        "added": [id_ for id_ in after if id_ not in before],
        "removed": [id_ for id_ in before if id_ not in after],
        "changed": [
            id_
            for id_, rule in after.items()
            if id_ in before and rule.definition() != before[id_].definition()
        ],
    }
