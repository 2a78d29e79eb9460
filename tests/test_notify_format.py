"""Alert HTML, escaping, packing under Telegram's limit, and the console view."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from botapi import parse_html, utf16_len
from hypothesis import given
from hypothesis import strategies as st

from bot.alerts import Alert
from bot.notify.console import ConsoleTransport, alert_line, print_alerts
from bot.notify.format import (
    MAX_ALERT_TEXT,
    MAX_MESSAGE,
    alert_block,
    esc,
    esc_clipped,
    hhmmss,
    join,
    length,
    pack,
    resolved_block,
    to_plain,
)
from bot.notify.transport import Tee, TransientError
from bot.ticks import KST, Tick

T0 = datetime(2024, 6, 3, 9, 22, 37, tzinfo=KST)


def tick(ticker: str = "005930", seconds: int = 9 * 3600 + 22 * 60 + 37) -> Tick:
    return Tick(ticker, date(2024, 6, 3), "092237", seconds, 1, 2, 3, 4, 2, 2, 5, 6, 1)


def test_alert_block_escapes_rule_text_and_shows_kst_time() -> None:
    block = alert_block("net<buy>", "005930", T0, "순매수 <b>100억</b> & more")
    assert "순매수 &lt;b&gt;100억&lt;/b&gt; &amp; more" in block
    assert "<code>net&lt;buy&gt;</code>" in block
    assert "09:22:37 KST" in block
    assert parse_html(block).endswith("순매수 <b>100억</b> & more")


def test_a_resolved_block_says_what_ended_in_korean_and_escapes() -> None:
    block = resolved_block(
        "net<buy>", "005930", T0, "해제 · 순매수 100억 이상 → 현재 97.2억 & <b>"
    )
    assert parse_html(block).splitlines() == [
        "✅ 005930 09:22:37 KST · net<buy> · 해제",
        "해제 · 순매수 100억 이상 → 현재 97.2억 & <b>",
    ]


@given(rule=st.text(min_size=1), ticker=st.text(min_size=1), message=st.text())
def test_any_resolved_event_is_valid_telegram_html(rule: str, ticker: str, message: str) -> None:
    plain = parse_html(resolved_block(rule, ticker, T0, message))
    assert message in plain or "…" in plain


def test_time_is_shown_in_korea_whatever_the_input_zone() -> None:
    utc = T0.astimezone(UTC)
    assert hhmmss(utc) == "09:22:37"
    assert hhmmss(T0 + timedelta(hours=15)) == "00:22:37"


@given(rule=st.text(min_size=1), ticker=st.text(min_size=1), message=st.text())
def test_any_alert_is_valid_telegram_html_within_bounds(
    rule: str, ticker: str, message: str
) -> None:
    block = alert_block(rule, ticker, T0, message)
    plain = parse_html(block)  # raises if Telegram would refuse it
    assert message in plain or "…" in plain
    assert length(block) <= MAX_ALERT_TEXT + 200 + 6 * (len(rule) + len(ticker))


@given(st.text(), st.integers(min_value=1, max_value=200))
def test_clipping_keeps_the_budget_and_the_escaping(text: str, budget: int) -> None:
    clipped = esc_clipped(text, budget)
    if length(esc(text)) <= budget:
        assert clipped == esc(text)
    else:
        assert length(clipped) <= budget
        assert clipped.endswith("…")
        assert text.startswith(parse_html(clipped)[:-1])


@given(st.lists(st.integers(min_value=1, max_value=1500), max_size=40))
def test_pack_keeps_order_and_every_message_under_the_limit(sizes: list[int]) -> None:
    blocks = ["가" * size for size in sizes]
    counts = pack(blocks)
    assert sum(counts) == len(blocks)
    start = 0
    for count in counts:
        assert count >= 1
        text = join(blocks[start : start + count])
        assert utf16_len(text) <= MAX_MESSAGE
        # Greedy: the next block would not have fitted.
        if start + count < len(blocks):
            assert utf16_len(join(blocks[start : start + count + 1])) > MAX_MESSAGE
        start += count


def test_pack_counts_emoji_as_two() -> None:
    assert pack(["📈" * 2048]) == [1]
    # 2 x 1023 emoji = 2 x 2046 units, plus the 2-unit separator: 4096 exactly.
    assert pack(["📈" * 1023, "📈" * 1023]) == [2]
    assert pack(["📈" * 1023, "📈" * 1024]) == [2]
    assert pack(["📈" * 1023, "📈" * 1025]) == [1, 1]


def test_to_plain_strips_tags_and_unescapes() -> None:
    assert to_plain("<b>a &lt;b&gt; &amp;</b>\n<code>x</code>") == "a <b> &\nx"


async def test_console_transport_prints_readable_text() -> None:
    out = io.StringIO()
    await ConsoleTransport(out).send(7, alert_block("r1", "005930", T0, "a & <b>"))
    assert out.getvalue() == "── chat 7 ──\n🔔 005930 09:22:37 KST · r1\na & <b>\n"


def test_alert_line_is_one_line() -> None:
    alert = Alert("rule-1", "005930", tick(), 123, "line one\nline  two")
    assert alert_line(alert) == "09:22:37 005930 rule-1  line one line two"
    out = io.StringIO()
    print_alerts([alert, alert], out)
    assert out.getvalue().count("\n") == 2


def test_the_console_prints_resolved_events_marked() -> None:
    alert = Alert("rule-1", "005930", tick(), 123, "돌파")
    later = tick(seconds=9 * 3600 + 25 * 60 + 2)._replace(hhmmss="092502")
    event = Alert(
        "rule-1", "005930", later, 97, "해제 · 현재\n97.2억", kind="resolved", resolves=alert
    )
    out = io.StringIO()
    print_alerts([alert, event], out)
    assert out.getvalue().splitlines() == [
        "09:22:37 005930 rule-1  돌파",
        "09:25:02 005930 rule-1  ✅ 해제 · 현재 97.2억",
    ]


class Refusing:
    async def alive(self) -> bool:
        return False

    async def send(self, chat_id: int, html: str, *, reply_to: int | None = None) -> None:
        raise TransientError("down")


async def test_tee_echoes_only_what_the_primary_delivered() -> None:
    out, echo = io.StringIO(), io.StringIO()
    tee = Tee(ConsoleTransport(out), ConsoleTransport(echo), Refusing())
    await tee.send(1, "<b>a</b>")  # a failing echo does not fail the delivery
    assert out.getvalue() == echo.getvalue() == "── chat 1 ──\na\n"
    with pytest.raises(TransientError):
        await Tee(Refusing(), ConsoleTransport(echo)).send(2, "b")
    assert "chat 2" not in echo.getvalue()
