"""Messages made ready once per rule (bot.engine.templates.Message) render exactly what
``str.format_map`` renders over an event's values, falling back to the default message as it
would, whatever the template, the format specs and the tick."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_spec import rules

from bot.alerts import Alert
from bot.engine.rule_types import RULE
from bot.engine.templates import MESSAGE_LIMIT, Values, messages, render, render_resolved
from bot.ticks import Tick

DAY = date(2026, 11, 23)
SPECS = ("", ",", ">14", "<3", ".2f", "+,", "x", "c", "_", "^9,", "e")
INT64 = st.integers(-(2**63), 2**63 - 1)


def reference(template: str | None, default: str, values: Values) -> str:
    """The message as format_map makes it, bounded as the engine bounds it."""
    text = None
    if template:
        try:
            text = template.format_map(values)
        except Exception:
            text = None
    text = default.format_map(values) if text is None else text
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


@st.composite
def templates(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        literal = draw(st.text(alphabet="가 {}x:,.→", max_size=6))
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        name = draw(st.sampled_from(names))
        spec = draw(st.sampled_from(SPECS))
        parts.append(f"{{{name}:{spec}}}" if spec else f"{{{name}}}")
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(st.data(), rules(), st.lists(INT64, min_size=13, max_size=13), st.booleans())
def test_a_ready_message_renders_what_format_map_renders(
    data: st.DataObject, ruleset: list[Any], numbers: list[int], resolved: bool
) -> None:
    rule = ruleset[0]
    names = rule.resolved_placeholders() if resolved else rule.placeholders()
    template = data.draw(templates(names))
    rule = rule.model_copy(update={"resolve_message" if resolved else "message": template})
    tick = Tick("005930", DAY, "091502", 33302, *numbers[:9])
    value = numbers[9]
    # What the step function passes: the rule's threshold when it has one (bot.engine.types).
    threshold = {} if rule.threshold is None else {"threshold": st.just(rule.threshold)}
    extra = data.draw(
        st.fixed_dictionaries(
            threshold,
            optional={
                "prev": INT64,
                "baseline": INT64,
                "change": INT64 | st.floats(-1e12, 1e12),
            },
        )
    )
    stock = data.draw(st.sampled_from(("", "삼성전자(005930)")))
    values = Values(rule, tick, value, extra, stock)
    if resolved:
        earlier = Tick("005930", DAY, "091001", 33001, *numbers[4:13])
        fired = Alert(rule.id, "005930", earlier, numbers[10], "", 0)
        values["fired_value"] = Values(rule, earlier, fired.value, {}, "")["value"]
        values["fired_time"] = "09:10:01"
        expected = reference(template, rule.default_resolved_message(), values)
        assert render_resolved(rule, tick, value, extra, fired, stock) == expected
    else:
        expected = reference(template, rule.default_message(), values)
        assert render(rule, tick, value, extra, stock) == expected


def test_a_rule_object_gets_its_messages_made_once() -> None:
    rule = RULE.validate_python(
        {"id": "r", "type": "threshold", "field": "NTBY_TR_PBMN", "crosses_above": "100억"}
    )
    assert messages(rule) is not messages(rule.model_copy())  # another object, made anew
    first = messages(rule)
    assert all(a is b for a, b in zip(first, messages(rule), strict=True))
    changed = rule.model_copy(update={"message": "{rule} fired at {time}"})
    tick = Tick("005930", DAY, "091502", 33302, *[0] * 9)
    assert render(changed, tick, 0, {}) == f"{rule.id} fired at 09:15:02"
