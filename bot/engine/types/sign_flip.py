"""``type: sign_flip``: the sign of a column turns (an event)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from bot.engine import codegen
from bot.engine.codegen import Part, State, const
from bot.engine.rule_base import Amount, RuleBase, register

_WORDS = {"any": "부호 전환", "to_positive": "양(+) 전환", "to_negative": "음(-) 전환"}


@register
class SignFlipRule(RuleBase):
    type: Literal["sign_flip"]
    min_abs: Amount = Field(0, ge=0)
    direction: Literal["any", "to_positive", "to_negative"] = "any"

    params: ClassVar[tuple[str, ...]] = ("min_abs", "direction")
    takes_resolve: ClassVar[bool] = False
    spoken: ClassVar[str] = "a sign flip"

    @property
    def threshold(self) -> float:
        """What ``{threshold}`` shows: the smallest size that counts."""
        return self.min_abs

    def condition(self) -> str:
        text = self.direction
        return text + (f" min_abs {self.amount(self.min_abs)}" if self.min_abs else "")

    def what(self) -> str:
        return _WORDS[self.direction] + (" (|값| ≥ {min_abs})" if self.min_abs else "")

    def fresh_state(self) -> State:
        return (0,)

    def levels(self) -> tuple[float, ...]:
        """A flip needs the value to go from one side of the qualifying range to the other."""
        return (-self.min_abs, self.min_abs) if self.min_abs else (0,)

    def part(self, n: int, share: bool = False) -> Part:
        """``sign`` is the sign of the last qualifying value, 0 before the first (a series
        other rules of the same column and ``min_abs`` may share); it follows every tick, in
        the rule's hours or not."""
        v, low = f"v{self.column}", const(self.min_abs)
        series = codegen.sign(self.column, low, codegen.owner(n, share))
        (sign,) = series.names
        big = f" and {v} >= {low}" if self.min_abs else ""  # values are ints: != 0 means >= 1
        small = f" and -{v} >= {low}" if self.min_abs else ""
        lines: list[str] = []
        for side, opposite, allowed in (
            (f"{v} > 0{big}", f"{sign} < 0", self.direction != "to_negative"),
            (f"{v} < 0{small}", f"{sign} > 0", self.direction != "to_positive"),
        ):
            if allowed:
                lines.append(f"{'if' if not lines else 'elif'} {side}:")
                lines.append(f"    if {codegen.both(opposite, self.hours_test)}:")
                lines += codegen.indent(codegen.fire(n, v, f"'threshold': {low}"), 8)
        return Part((sign,), lines, series=(series,))
