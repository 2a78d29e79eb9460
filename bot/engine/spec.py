"""Rule files: the models of the three rule types, and loading a rules directory with positions.

Every `*.yaml` file holds ``rules:``, a list of rules (see docs/RULES.md and the contract in
rules-spec). Loading collects every problem of every file as ``file:line:column: what is wrong``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from bot import yamlpos
from bot.amounts import UNIT_WORDS, format_field, parse_korean
from bot.config import normalize_ticker
from bot.engine.durations import format_duration, parse_duration
from bot.engine.templates import COMMON, TemplateError, check_placeholders, check_template
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
    unit = value.strip()[-1:] if isinstance(value, str) else ""
    if unit in UNIT_WORDS and unit != counts:
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
        except ValueError as exc:
            if not str(exc).endswith("is not a number"):
                raise  # says what is wrong with a Korean amount (units out of order, …)
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
    """A problem of a whole rule that is best shown at one of its keys."""

    def __init__(self, message: str, key: str | None) -> None:
        super().__init__(message)
        self.key = key


def _text(value: object) -> object:
    """Numbers where text is expected are text (``id: 12345``, ``description: 2024``)."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _listed(value: object) -> object:
    """One ticker needs no brackets: ``tickers: "005930"`` is ``tickers: ["005930"]``."""
    return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value


def _duration(value: object) -> int:
    return parse_duration(value)


Duration = Annotated[int, BeforeValidator(_duration)]
Amount = Annotated[int | float, BeforeValidator(parse_amount)]
FieldName = Annotated[str, BeforeValidator(parse_field)]
Ticker = Annotated[str, BeforeValidator(normalize_ticker)]
Text = Annotated[str, BeforeValidator(_text)]


class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Text
    type: str
    field: FieldName
    description: Text | None = None
    tickers: Annotated[tuple[Ticker, ...] | None, BeforeValidator(_listed)] = None  # None: all
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
        given = [kind for kind in self._KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise KeyProblem(
                "a threshold rule needs exactly one of crosses_above, crosses_below, above, below"
                + (f" (it has {', '.join(given)})" if given else ""),
                given[1] if given else None,
            )
        if self.for_ and given[0].startswith("crosses"):
            raise KeyProblem(
                "'for' only works with above and below (a crossing is a moment)", "for"
            )
        return self

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
        if (self.rise is None) == (self.fall is None):
            raise KeyProblem(
                "a change rule needs exactly one of rise, fall (a positive number)",
                "fall" if self.rise is not None else None,
            )
        if self.window <= 0:
            raise KeyProblem("window must be longer than 0 seconds", "window")
        return self

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
_MODELS: dict[str, type[AnyRule]] = {
    "threshold": ThresholdRule,
    "sign_flip": SignFlipRule,
    "change": ChangeRule,
}
Rule = Annotated[ThresholdRule | SignFlipRule | ChangeRule, Field(discriminator="type")]
_RULE = TypeAdapter(Rule)
_TYPES = ("threshold", "sign_flip", "change")


class RulesError(ValueError):
    """Rule files that cannot be used; ``problems`` are ``file:line:column: ...`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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


_RULE_WORDS = {
    "union_tag_not_found": "every rule needs a type: threshold, sign_flip or change",
    "union_tag_invalid": "unknown rule type: use threshold, sign_flip or change",
    "model_type": "a rule is a set of keys (id: …, type: …, field: …), one per line",
    "model_attributes_type": "a rule is a set of keys (id: …, type: …, field: …), one per line",
}


def _messages(error: ValidationError, doc: yamlpos.Document, prefix: tuple[Any, ...]) -> list[str]:
    """``file:line:column: rule 'id': key: what is wrong`` for each error of one rule."""
    raw = doc.data
    for part in prefix:
        raw = raw[part]
    name = f"rule {raw['id']!r}" if isinstance(raw, dict) and "id" in raw else "rule"
    lines = []
    for item in error.errors(include_url=False):
        kind = item["type"]
        loc = {"union_tag_not_found": (), "union_tag_invalid": ("type",)}.get(kind, item["loc"])
        if loc and loc[0] in _TYPES:  # pydantic names the union member first
            loc = loc[1:]
        cause = (item.get("ctx") or {}).get("error")
        key = cause.key if isinstance(cause, KeyProblem) else None
        if key is not None:
            loc = (*loc, key)
        path = yamlpos.document_path(doc, (*prefix, *loc))
        where = "" if key else ".".join(str(p) for p in path[len(prefix) :])  # else: in words
        by_key = kind == "extra_forbidden" or key is not None
        at = doc.key_position(path) if by_key else doc.position(path)
        lines.append(
            f"{at}: {name}: {where + ': ' if where else ''}{yamlpos.wording(item, _RULE_WORDS)}"
        )
    return lines


def overlooked_files(path: Path | str) -> list[Path]:
    """Files of a rules directory that look like rules but are not read (``*.yml``)."""
    path = Path(path)
    if not path.is_dir():
        return []
    return sorted(
        p for p in path.iterdir() if p.suffix.lower() in (".yml", ".yaml") and p.suffix != ".yaml"
    )


def _rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.yaml") if p.is_file())
    return [path]


def _file_rules(file: Path, problems: list[str]) -> list[Located]:
    """Parse one file; return each valid rule with where it is, noting problems."""
    try:
        raw = file.read_bytes()
        text = raw.decode("utf-8")
        doc = yamlpos.load(text, str(file))
    except OSError as exc:
        problems.append(f"{file}: cannot read: {exc.strerror}")
        return []
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1  # of the line; what precedes is valid
        line = raw.count(b"\n", 0, exc.start) + 1
        where = f"{line}:{len(raw[start : exc.start].decode()) + 1}"
        problems.append(f"{file}:{where}: not UTF-8 text (save the file as UTF-8)")
        return []
    except yamlpos.YamlError as exc:
        problems.append(str(exc))
        return []
    if doc.data is None:
        if text.strip():
            return []  # comments only: no rules
        # Most likely a save caught half-way; a file meant to hold no rules says so.
        problems.append(f"{file}: the file is empty (write 'rules: []' for a file with no rules)")
        return []
    if not isinstance(doc.data, dict) or set(doc.data) != {"rules"}:
        extra = [key for key in doc.data if key != "rules"] if isinstance(doc.data, dict) else []
        at = doc.key_position((extra[0],)) if extra else doc.position(())
        problems.append(f"{at}: a rule file holds one key, 'rules', a list of rules")
        return []
    return document_rules(doc, problems)


Located = tuple[Any | None, yamlpos.Document, int]


def document_rules(doc: yamlpos.Document, problems: list[str]) -> list[Located]:
    """Validate the ``rules`` list of a loaded document (a rule file or a rule test file).

    A rule with errors comes back as ``(None, doc, index)``: its id still counts for duplicates.
    """
    items = doc.data.get("rules") if isinstance(doc.data, dict) else None
    if not isinstance(items, list):
        problems.append(f"{doc.position(('rules',))}: 'rules' must be a list of rules")
        return []
    found: list[Located] = []
    for index, raw in enumerate(items):
        try:
            rule = _RULE.validate_python(raw)
        except ValidationError as exc:
            problems.extend(_messages(exc, doc, ("rules", index)))
            problems.extend(_template_problems(raw, doc, index, None))
            found.append((None, doc, index))
            continue
        template = _template_problems(raw, doc, index, rule)
        problems.extend(template)
        found.append((None if template else rule, doc, index))
    return found


def _template_problems(
    raw: Any, doc: yamlpos.Document, index: int, rule: AnyRule | None
) -> list[str]:
    """The message's problem, if any. For a rule with other errors, only placeholders that no
    rule of its type has (what else it may use depends on what is wrong)."""
    message = raw.get("message") if isinstance(raw, dict) else None
    kind = raw.get("type") if isinstance(raw, dict) else None
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if not isinstance(message, str) or (rule is None and model is None):
        return []
    try:
        if rule is not None:
            check_template(rule)
        else:
            assert model is not None
            check_placeholders(message, model.type_placeholders(), raw["type"])
    except TemplateError as exc:
        name = f"rule {raw['id']!r}" if "id" in raw else "rule"
        return [f"{doc.position(('rules', index, 'message'))}: {name}: message: {exc}"]
    return []


def _raw_id(doc: yamlpos.Document, index: int) -> str | None:
    raw = doc.data["rules"][index]
    value = raw.get("id") if isinstance(raw, dict) else None
    return _text(value) if isinstance(value, str | int) else None  # type: ignore[return-value]


def build_ruleset(located: Iterable[Located], files: Iterable[Path] = ()) -> RuleSet:
    """A RuleSet from validated rules; duplicate ids are errors. Raises RulesError."""
    problems: list[str] = []
    rules: list[Any] = []
    first_seen: dict[str, str] = {}
    for rule, doc, index in located:
        id_ = rule.id if rule is not None else _raw_id(doc, index)
        if id_ is None:
            continue
        where = doc.position(("rules", index, "id"))
        if id_ in first_seen:
            problems.append(
                f"{where}: rule {id_!r}: duplicate id (first defined at {first_seen[id_]})"
            )
            continue
        first_seen[id_] = str(where)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RulesError(problems)
    return RuleSet(tuple(rules), tuple(files))


_POSITION = re.compile(r"(.*?):(\d+):(\d+): ")


def _by_position(problem: str) -> tuple[str, int, int]:
    """Sort key: file, line, column (a problem without a position first in its file)."""
    match = _POSITION.match(problem)
    if match is None:
        return problem.partition(": ")[0], 0, 0
    return match.group(1), int(match.group(2)), int(match.group(3))


def load_rules(*paths: Path | str) -> RuleSet:
    """Load every ``*.yaml`` of each directory (or each file) as one rule set: ids are unique
    across all of them. RulesError lists every problem."""
    missing = [Path(path) for path in paths if not Path(path).exists()]
    if missing:
        raise RulesError(
            [f"{path.resolve()}: no such rules file or directory" for path in missing]
        )
    once: dict[Path, Path] = {}  # a file named twice (a directory and a file in it) counts once
    for file in (file for path in paths for file in _rule_files(Path(path))):
        once.setdefault(file.resolve(), file)
    chosen = list(once.values())
    problems: list[str] = []
    located = [item for file in chosen for item in _file_rules(file, problems)]
    try:
        ruleset = build_ruleset(located, chosen)
    except RulesError as exc:
        problems.extend(exc.problems)
    if problems:
        raise RulesError(sorted(problems, key=_by_position))
    return ruleset
