"""``type: threshold``: a level crossed (an event) or a level held (a state, with ``for``), with
optional hysteresis (``rearm``) and resolved events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from bot.durations import format_duration
from bot.engine import codegen
from bot.engine.codegen import Part, State, const
from bot.engine.rule_base import Amount, Duration, KeyProblem, RuleBase, lasts, register

_KINDS = ("crosses_above", "crosses_below", "above", "below")
_WORDS = {
    "crosses_above": "{threshold} 상향 돌파",
    "crosses_below": "{threshold} 하향 돌파",
    "above": "{threshold} 초과",
    "below": "{threshold} 미만",
}
#: What a resolved event says has ended.
_ENDED = {
    "crosses_above": "{threshold} 이상",
    "crosses_below": "{threshold} 이하",
    "above": "{threshold} 초과",
    "below": "{threshold} 미만",
}


@register
class ThresholdRule(RuleBase):
    type: Literal["threshold"]
    crosses_above: Amount | None = None
    crosses_below: Amount | None = None
    above: Amount | None = None
    below: Amount | None = None
    for_: Duration = Field(0, alias="for")

    params: ClassVar[tuple[str, ...]] = (*_KINDS, "for", "rearm")
    extras: ClassVar[tuple[str, ...]] = ("prev",)
    spoken: ClassVar[str] = "a threshold rule"

    @classmethod
    def shape_problem(cls, values: Mapping[str, Any]) -> KeyProblem | None:
        kinds = [kind for kind in _KINDS if values.get(kind) is not None]
        if len(kinds) != 1:
            return KeyProblem(
                "a threshold rule needs exactly one of crosses_above, crosses_below, above, below"
                + (f" (it has {', '.join(kinds)})" if kinds else ""),
                kinds[1] if kinds else None,
            )
        if lasts(values.get("for")) and kinds[0].startswith("crosses"):
            return KeyProblem(
                "'for' only works with above and below (a crossing is a moment)", "for"
            )
        return None

    def rearm_problem(self, rearm: float) -> KeyProblem | None:
        """The level that arms again lies on the far side of the threshold."""
        kind, x = self.kind, self.threshold
        low = kind in ("crosses_above", "above")
        if (rearm < x) if low else (rearm > x):
            return None
        side = "below" if low else "above"
        return KeyProblem(
            f"rearm {self.amount(rearm)} must be {side} {kind} {self.amount(x)}: the value "
            f"goes back {side} it before the rule fires again",
            "rearm",
        )

    @property
    def kind(self) -> str:
        return next(kind for kind in _KINDS if getattr(self, kind) is not None)

    @property
    def crossing(self) -> bool:
        return self.kind.startswith("crosses")

    def own_placeholders(self) -> tuple[str, ...]:
        rearm = ("rearm",) if self.rearm is not None else ()
        if self.crossing:
            return (self.kind, "prev", *rearm)  # a crossing has a previous value, and no `for`
        return (self.kind, "for", *rearm)

    @property
    def threshold(self) -> float:
        value: float | None = getattr(self, self.kind)
        assert value is not None
        return value

    def condition(self) -> str:
        text = f"{self.kind} {self.amount(self.threshold)}"
        text += f" rearm {self.amount(self.rearm)}" if self.rearm is not None else ""
        return text + (f" for {format_duration(self.for_)}" if self.for_ else "")

    def what(self) -> str:
        return _WORDS[self.kind] + (" {for} 지속" if self.for_ else "")

    def ended(self) -> str:
        return _ENDED[self.kind]

    def fresh_state(self) -> State:
        opened = (None,) if self.resolve else ()
        if self.crossing:
            return (None, *((True,) if self.rearm is not None else ()), *opened)
        return (None, False, *opened)

    def levels(self) -> tuple[float, ...] | None:
        """A crossing, its rearm level and its resolved event all wait for the value to reach
        or pass the threshold or the rearm level; so does a level held (``above``), but while
        its run waits out ``for`` (``waiting``) and when its hours come and go with time."""
        if not self.crossing and self.hours is not None:
            return None
        return (self.threshold, *((self.rearm,) if self.rearm is not None else ()))

    def waiting(self, n: int) -> str | None:
        """A run that has started and not fired yet must see every tick: it fires with time."""
        return f"(start{n} is not None and not spent{n})" if self.for_ else None

    def part(self, n: int, share: bool = False) -> Part:
        return self._crossing(n, share) if self.crossing else self._level(n)

    def _crossing(self, n: int, share: bool) -> Part:
        """``prev`` is the value of the previous tick (a series other rules may share);
        ``armed`` (with rearm) says whether an event may fire; ``open`` (with resolve) the alert
        that waits for its resolved event."""
        v, x = f"v{self.column}", const(self.threshold)
        previous = codegen.previous(self.column, codegen.owner(n, share))
        (prev,) = previous.names
        up = self.kind == "crosses_above"
        test = f"{prev} < {x} <= {v}" if up else f"{prev} > {x} >= {v}"
        armed = f"armed{n}" if self.rearm is not None else None
        then = [f"{armed} = False"] if armed else []
        then += [f"open{n} = a"] if self.resolve else []
        event = codegen.both(f"{prev} is not None", test, armed, self.hours_test)
        extra = f"'threshold': {x}, 'prev': {prev}"
        lines = [f"if {event}:", *codegen.indent(codegen.fire(n, v, extra, then))]
        resolved = codegen.resolved(n, v, extra)
        if self.rearm is not None:
            r = const(self.rearm)
            lines += [f"if {v} <= {r}:" if up else f"if {v} >= {r}:", f"    {armed} = True"]
            if self.resolve:
                lines += [f"    if open{n} is not None:", *codegen.indent(resolved, 8)]
        elif self.resolve:
            back = f"{v} < {x}" if up else f"{v} > {x}"
            lines += [f"if open{n} is not None and {back}:", *codegen.indent(resolved)]
        names = (prev, *((armed,) if armed else ()), *((f"open{n}",) if self.resolve else ()))
        return Part(names, lines, series=(previous,))

    def _level(self, n: int) -> Part:
        """A run holds while the value is beyond the threshold (with rearm: it starts beyond
        the threshold and goes on while beyond the rearm level), within the rule's hours."""
        v, x = f"v{self.column}", const(self.threshold)
        op = ">" if self.kind == "above" else "<"
        holds = f"{v} {op} {x}"
        if self.rearm is not None:
            holds = f"({v} {op} {const(self.rearm)} if start{n} is not None else {holds})"
        lines, own = self.run_part(n, holds, f"'threshold': {x}")
        return Part(own, lines)
