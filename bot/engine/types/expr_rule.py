"""``type: expr``: a state rule whose condition is an expression over the tick's columns (the
language: bot.engine.expr), with ``for``, ``hours``, ``resolve`` and cooldown as for ``above``.

The expression becomes Python code in the step function, built by bot.engine.expr from its parsed,
whitelisted tree (never ``eval`` of user text). What it reads besides the tick is state of the
rule, bounded like the other types': the previous value of each column read with ``prev``, a
window per ``delta(COL, W)`` (as a change rule's), a running ``day_max``/``day_min``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from bot.durations import format_duration
from bot.engine import codegen

# The expression language imports the column names from bot.engine.rule_types, which imports
# this module: the module, not its names, so that either may be imported first.
from bot.engine import expr as language
from bot.engine.codegen import Part, Series, State, fresh_window
from bot.engine.rule_base import Duration, KeyProblem, RuleBase, Text, register
from bot.engine.templates import field_label
from bot.ticks import FIELD_INDEX


@lru_cache(maxsize=1024)  # an Expression is immutable: rules of the same text share one
def _parsed(text: str) -> language.Expression:
    try:
        return language.parse_expression(text)
    except language.ExprError as exc:
        raise KeyProblem(exc.message, None, offset=exc.offset) from None


@lru_cache(maxsize=1024)
def _readable(text: str) -> str:
    """The normalized line of a `when`: every alert's message shows it (``{when}``), and
    writing it out walks the whole tree."""
    return _parsed(text).readable()


@register
class ExprRule(RuleBase):
    type: Literal["expr"]
    when: Text
    for_: Duration = Field(0, alias="for")

    params: ClassVar[tuple[str, ...]] = ("when", "for")
    spoken: ClassVar[str] = "an expression rule"

    @model_validator(mode="before")
    @classmethod
    def _field_from_when(cls, data: Any) -> Any:
        """No ``field``: the first column ``when`` names (a ``when`` with a mistake says so
        itself, so the field is not missing too)."""
        if not isinstance(data, dict) or data.get("field") is not None:
            return data
        try:
            first = language.parse_expression(data.get("when")).columns[0]  # type: ignore[arg-type]
        except (language.ExprError, TypeError):
            first = "NTBY_TR_PBMN"  # only a rule with an error gets here
        return {**data, "field": first}

    @field_validator("when")
    @classmethod
    def _valid_when(cls, text: str) -> str:
        _parsed(text)
        return text

    @property
    def expression(self) -> language.Expression:
        return _parsed(self.when)

    @property
    def threshold(self) -> float | None:
        return None  # an expression has no one threshold: ``{threshold}`` shows nothing

    def param_values(self) -> dict[str, Any]:
        return {"when": _readable(self.when), "for": self.for_}

    def reads(self) -> tuple[int, ...]:
        return tuple(
            dict.fromkeys([self.column, *(FIELD_INDEX[c] for c in self.expression.columns)])
        )

    def condition(self) -> str:
        return _readable(self.when) + (f" for {format_duration(self.for_)}" if self.for_ else "")

    def headline(self) -> str:
        return f"{self.condition()}  → {self.field}"

    def what(self) -> str:
        return "{when}" + (" {for} 지속" if self.for_ else "")

    def default_message(self) -> str:
        label = field_label(self.field)
        return "{stock} " + self.what() + f" → {label} " + "{value} ({time})"

    def default_resolved_message(self) -> str:
        label = field_label(self.field)
        return "해제 · {stock} {when}" + f" → 현재 {label} " + "{value} ({time})"

    # The state: prev per column, a window per delta, running extremes (series other rules of
    # the part may share), then the run's.

    def _series(self, end: str) -> list[Series]:
        """In ``fresh_state`` order: a previous value per column read with ``prev``, a window
        per ``delta``, an extreme per ``day_max``/``day_min``."""
        e = self.expression
        series = [codegen.previous(FIELD_INDEX[c], end) for c in sorted(e.prevs)]
        series += [codegen.window(FIELD_INDEX[c], seconds, end) for c, seconds in e.deltas]
        series += [codegen.extreme(kind, FIELD_INDEX[c], end) for kind, c in e.extremes]
        return series

    def fresh_state(self) -> State:
        e = self.expression
        state: list[object] = [None] * len(e.prevs)
        for _delta in e.deltas:
            state += fresh_window()
        state += [None] * len(e.extremes)
        return (*state, None, False, *((None,) if self.resolve else ()))

    def part(self, n: int, share: bool = False) -> Part:
        codegen.GLOBALS.update(language.NAMESPACE)  # what its code calls: Fraction, abs, min, max
        series = self._series(codegen.owner(n, share))
        named = {one.key: one.names for one in series}

        def leaf(one: language.Leaf) -> str:
            i = FIELD_INDEX[one.column]
            if one.kind == "value":
                return f"v{i}"
            if one.kind == "prev":
                return named[f"prev {i}"][0]
            if one.kind == "delta":
                return f"(v{i} - {named[f'window {i} {one.window}'][3]})"
            return named[f"{one.kind.removeprefix('day_')} {i}"][0]

        lines, own = self.run_part(n, self.expression.python(leaf), "")
        return Part((*(name for one in series for name in one.names), *own), lines,
                    series=tuple(series))  # fmt: skip
