"""``type: change``: a rise or fall within a time window (a state, with ``for``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from bot.durations import format_duration
from bot.engine import codegen
from bot.engine.codegen import Part, State, const, fresh_window
from bot.engine.rule_base import Amount, Duration, KeyProblem, RuleBase, register


@register
class ChangeRule(RuleBase):
    type: Literal["change"]
    window: Duration
    rise: Amount | None = Field(None, gt=0)
    fall: Amount | None = Field(None, gt=0)
    for_: Duration = Field(0, alias="for")

    params: ClassVar[tuple[str, ...]] = ("window", "rise", "fall", "for")
    extras: ClassVar[tuple[str, ...]] = ("baseline", "change")
    spoken: ClassVar[str] = "a change rule"

    @classmethod
    def shape_problem(cls, values: Mapping[str, Any]) -> KeyProblem | None:
        rise, fall = values.get("rise") is not None, values.get("fall") is not None
        if rise == fall:
            return KeyProblem(
                "a change rule needs exactly one of rise, fall (a positive number)",
                "fall" if rise else None,
            )
        return None

    def own_problem(self) -> KeyProblem | None:
        if self.window <= 0:
            return KeyProblem("window must be longer than 0 seconds", "window")
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

    def what(self) -> str:
        word = "증가" if self.rise is not None else "감소"
        limit = "{rise}" if self.rise is not None else "{fall}"
        lasting = " {for} 지속" if self.for_ else ""
        return f"{{window}} 내 {limit} 이상 {word}{lasting}: {{change}} (기준 {{baseline}})"

    def ended(self) -> str:
        word = "증가" if self.rise is not None else "감소"
        limit = "{rise}" if self.rise is not None else "{fall}"
        return f"{{window}} 내 {limit} 이상 {word}"

    def fresh_state(self) -> State:
        return (*fresh_window(), None, False, *((None,) if self.resolve else ()))

    def part(self, n: int, share: bool = False) -> Part:
        """The window (a series other rules may share) gives the baseline; a run holds while
        the value has moved enough from it."""
        window = codegen.window(self.column, self.window, codegen.owner(n, share))
        base = window.names[3]
        v, needed = f"v{self.column}", const(self.threshold)
        moved = f"{v} - {base}"
        holds = f"{moved} >= {needed}" if self.rise is not None else f"{base} - {v} >= {needed}"
        extra = f"'threshold': {needed}, 'baseline': {base}, 'change': {moved}"
        lines, own = self.run_part(n, holds, extra)
        return Part((*window.names, *own), lines, series=(window,))
