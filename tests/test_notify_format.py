"""Alert HTML, escaping, packing under Telegram's limit, and the console view."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from botapi import parse_html, utf16_len
from hypothesis import given
from hypothesis import strategies as st

from bot.alerts import Alert
from bot.market.names import Directory, Listing, Names
from bot.market.sessions import MinuteRange
from bot.messages import ENGLISH
from bot.notify.console import ConsoleTransport, alert_line, print_alerts
from bot.notify.format import (
    MAX_ALERT_TEXT,
    MAX_MESSAGE,
    alert_block,
    alert_blocks,
    alert_message,
    esc,
    esc_clipped,
    hhmmss,
    join,
    length,
    pack,
    resolved_block,
    resolved_message,
    to_plain,
)
from bot.notify.transport import PLAIN_MESSAGE as PLAIN
from bot.notify.transport import Extras, Tee, TransientError
from bot.notify.voice import Voice
from bot.ticks import KST, Tick

T0 = datetime(2024, 6, 3, 9, 22, 37, tzinfo=KST)  # a Monday
NAMES = Names(Directory([Listing("005930", "삼성전자", "KOSPI"), Listing("0167A0", "<A&B>", "")]))


def on(moment: datetime, **more: object) -> Voice:
    """The voice of a bot whose wall clock says ``moment``."""
    return Voice(clock=lambda: moment.astimezone(UTC), **more)  # type: ignore[arg-type]


TODAY = on(T0 + timedelta(hours=2))


def tick(ticker: str = "005930", seconds: int = 9 * 3600 + 22 * 60 + 37) -> Tick:
    return Tick(ticker, date(2024, 6, 3), "092237", seconds, 1, 2, 3, 4, 2, 2, 5, 6, 1)


def test_alert_block_escapes_rule_text_and_shows_kst_time() -> None:
    block = alert_block("net<buy>", "005930", T0, "순매수 <b>100억</b> & more", voice=TODAY)
    assert "순매수 &lt;b&gt;100억&lt;/b&gt; &amp; more" in block
    assert "<code>net&lt;buy&gt;</code>" in block
    assert "09:22:37 KST" in block
    assert parse_html(block).endswith("순매수 <b>100억</b> & more")


def test_a_resolved_block_says_what_ended_in_korean_and_escapes() -> None:
    text = "해제 · 순매수 100억 이상 → 현재 97.2억 & <b>"
    block = resolved_block("net<buy>", "005930", T0, text, voice=TODAY)
    assert parse_html(block).splitlines() == ["✅ 005930 09:22:37 KST · net<buy> · 해제", text]
    named = resolved_block("r", "005930", T0, "x", voice=on(T0, names=NAMES))
    assert parse_html(named).startswith("✅ 삼성전자(005930) 09:22:37 KST · r · 해제\n")
    late = T0.replace(hour=15, minute=31)
    assert "✅ 005930 [애프터] 15:31:37 KST" in parse_html(
        resolved_block("r", "005930", late, "x", voice=TODAY)
    )
    demo = resolved_message(Alert("r", "005930", tick(), 1, "x"), on(T0, demo=True))
    assert parse_html(demo).startswith("[모의 데이터]\n✅ 005930 09:22:37 KST")
    english = resolved_block("r", "005930", T0, "x", voice=on(T0, say=ENGLISH))
    assert parse_html(english).startswith("✅ 005930 09:22:37 KST · r · resolved")


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
    block = alert_block(rule, ticker, T0, message, voice=TODAY)
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
    await ConsoleTransport(out).send(7, alert_block("r1", "005930", T0, "a & <b>", voice=TODAY))
    assert out.getvalue() == "── chat 7 ──\n🔔 005930 09:22:37 KST · r1\na & <b>\n"


def test_alert_line_is_one_line() -> None:
    alert = Alert("rule-1", "005930", tick(), 123, "line one\nline  two")
    assert alert_line(alert, TODAY) == "09:22:37 KST 005930 rule-1  line one line two"
    out = io.StringIO()
    print_alerts([alert, alert], out, TODAY)
    assert out.getvalue().count("\n") == 2


def test_the_console_prints_resolved_events_marked() -> None:
    alert = Alert("rule-1", "005930", tick(), 123, "돌파")
    later = tick(seconds=9 * 3600 + 25 * 60 + 2)._replace(hhmmss="092502")
    event = Alert(
        "rule-1", "005930", later, 97, "해제 · 현재\n97.2억", kind="resolved", resolves=alert
    )
    out = io.StringIO()
    print_alerts([alert, event], out, on(T0, names=NAMES))
    assert out.getvalue().splitlines() == [
        "09:22:37 KST 삼성전자(005930) rule-1  돌파",
        "09:25:02 KST 삼성전자(005930) rule-1  ✅ 해제 · 현재 97.2억",
    ]


def test_the_console_names_the_stock_and_dates_an_old_alert() -> None:
    alert = Alert("rule-1", "005930", tick(), 123, "순매수")
    voice = on(T0 + timedelta(days=1), names=NAMES)
    assert alert_line(alert, voice) == "06/03(월) 09:22:37 KST 삼성전자(005930) rule-1  순매수"


# -- names, dates, sessions, the demo: what every alert message tells ---------------------------


def test_an_alert_names_its_stock_when_the_directory_knows_it() -> None:
    voice = on(T0, names=NAMES)
    block = parse_html(alert_block("r", "005930", T0, "x", voice=voice))
    assert block.startswith("🔔 삼성전자(005930) 09:22:37 KST · r")
    assert parse_html(alert_block("r", "000660", T0, "x", voice=voice)).startswith("🔔 000660 ")
    odd = alert_block("r", "0167A0", T0, "x", voice=voice)  # a name is escaped like any text
    assert "<b>&lt;A&amp;B&gt;(0167A0)</b>" in odd
    NAMES.replace(Directory())  # the app swaps the directory: labels follow at once
    try:
        assert parse_html(alert_block("r", "005930", T0, "x", voice=voice)).startswith("🔔 005930")
    finally:
        NAMES.replace(Directory([Listing("005930", "삼성전자", "KOSPI")]))


@pytest.mark.parametrize(
    ("now", "shown"),
    [
        (T0 + timedelta(hours=14, minutes=37), "09:22:37 KST"),  # 23:59:14 the same day
        (T0 + timedelta(hours=14, minutes=38), "06/03(월) 09:22:37 KST"),  # 00:00:14 next day
        (T0 + timedelta(days=250), "2024/06/03(월) 09:22:37 KST"),  # another year
        (T0 - timedelta(hours=10), "06/03(월) 09:22:37 KST"),  # a clock behind the tick
    ],
)
def test_an_alert_carries_its_date_when_it_is_not_today_in_korea(
    now: datetime, shown: str
) -> None:
    block = parse_html(alert_block("r", "005930", T0, "x", voice=on(now)))
    assert block.startswith(f"🔔 005930 {shown} · r")


def test_english_dates() -> None:
    voice = on(T0 + timedelta(days=1), say=ENGLISH)
    assert "🔔 005930 Mon 06/03 09:22:37 KST · r" in parse_html(
        alert_block("r", "005930", T0, "x", voice=voice)
    )


@pytest.mark.parametrize(
    ("hhmm", "tag"),
    [
        ("07:59", "[장외] "),
        ("08:00", "[프리] "),
        ("08:59", "[프리] "),
        ("09:00", ""),
        ("15:30", ""),
        ("15:31", "[애프터] "),
        ("20:00", "[애프터] "),
        ("20:01", "[장외] "),
    ],
)
def test_an_alert_outside_the_regular_session_says_which(hhmm: str, tag: str) -> None:
    hour, minute = map(int, hhmm.split(":"))
    when = T0.replace(hour=hour, minute=minute, second=30)
    block = parse_html(alert_block("r", "005930", when, "x", voice=on(when)))
    assert block.startswith(f"🔔 005930 {tag}{hhmm}:30 KST · r")


def test_sessions_come_from_the_config_when_it_redefines_them() -> None:
    sessions = {
        "pre": MinuteRange.parse("07:30-08:59"),
        "regular": MinuteRange.parse("09:00-15:30"),
        "after": MinuteRange.parse("15:31-21:00"),
    }
    when = T0.replace(hour=20, minute=30)
    block = parse_html(alert_block("r", "005930", when, "x", voice=on(when, sessions=sessions)))
    assert "[애프터] 20:30:37" in block
    english = on(when, sessions=sessions, say=ENGLISH)
    assert "[after-hours] 20:30:37" in parse_html(alert_block("r", "1", when, "x", voice=english))


def test_a_message_of_several_alerts_says_kst_once() -> None:
    alerts = [Alert("r", "005930", tick(), n, f"m{n}", seq=n) for n in range(3)]
    blocks = [parse_html(b) for b in alert_blocks(alerts, on(T0))]
    assert [b.count("KST") for b in blocks] == [1, 0, 0]


@given(st.lists(st.integers(min_value=1, max_value=1500), min_size=1, max_size=12))
def test_the_demo_tags_every_alert_message_within_the_limit(sizes: list[int]) -> None:
    alerts = [Alert("r", "005930", tick(), 1, "가" * size, seq=n) for n, size in enumerate(sizes)]
    demo, real = on(T0, demo=True), on(T0)
    while alerts:
        count, html = alert_message(alerts, demo)
        assert html.startswith("[모의 데이터]\n🔔 ")
        assert utf16_len(html) <= MAX_MESSAGE and count >= 1
        assert "모의 데이터" not in alert_message(alerts, real)[1]
        alerts = alerts[count:]


class Refusing:
    async def alive(self) -> bool:
        return False

    async def send(
        self, chat_id: int, html: str, *, reply_to: int | None = None, extras: Extras = PLAIN
    ) -> None:
        raise TransientError("down")


async def test_tee_echoes_only_what_the_primary_delivered() -> None:
    out, echo = io.StringIO(), io.StringIO()
    tee = Tee(ConsoleTransport(out), ConsoleTransport(echo), Refusing())
    await tee.send(1, "<b>a</b>")  # a failing echo does not fail the delivery
    assert out.getvalue() == echo.getvalue() == "── chat 1 ──\na\n"
    with pytest.raises(TransientError):
        await Tee(Refusing(), ConsoleTransport(echo)).send(2, "b")
    assert "chat 2" not in echo.getvalue()
