"""``type: change``: a rise or fall within a time window (a state, with ``for``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from bot.durations import format_duration
from bot.engine import codegen
from bot.engine.codegen import Part, State, const
from bot.engine.rule_base import Amount, Duration, KeyProblem, RuleBase, register


def window_lines(n: int, v: str, window: int, tag: str = "") -> list[str]:
    """Keep the window of ``v`` over the last ``window`` seconds; ``base{tag}{n}`` is its oldest
    value. The window keeps a tick only if its time is later than every time before it: one of
    the same second, or of an earlier one (a step back), leaves the window no later than the
    tick before it, so it could never be the baseline. It holds at most ``window + 1`` values.
    Lists, not deques: an empty deque takes 760 bytes, and a desk's rules hold hundreds of
    thousands of windows; the front is dropped about once a second, a short list's memmove.
    """
    times, values, last, base = (f"{name}{tag}{n}" for name in ("times", "values", "last", "base"))
    return [
        f"if t > {last}:",
        f"    {last} = t",
        f"    {times}.append(t)",
        f"    {values}.append({v})",
        f"    while {times}[0] < t - {window}:",
        f"        del {times}[0]",
        f"        del {values}[0]",
        f"    {base} = {values}[0]",
    ]


def fresh_window() -> State:
    """A window's state: times (seconds since midnight), values, the last time, the baseline."""
    return ([], [], -1, 0)


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

    def part(self, n: int) -> Part:
        v, needed = f"v{self.column}", const(self.threshold)
        moved = f"{v} - base{n}"
        holds = f"{moved} >= {needed}" if self.rise is not None else f"base{n} - {v} >= {needed}"
        extra = f"'threshold': {needed}, 'baseline': base{n}, 'change': {moved}"
        then = [f"open{n} = a"] if self.resolve else []
        resolve = codegen.resolved(n, v, extra) if self.resolve else None
        lines = [
            *window_lines(n, v, self.window),
            *codegen.run(
                n, codegen.both(holds, self.hours_test), self.for_,
                codegen.fire(n, v, extra, then), resolve,
            ),
        ]  # fmt: skip
        names = ("times", "values", "last", "base", "start", "spent")
        return Part((*names, *(("open",) if self.resolve else ())), lines, ("times", "values"))
