"""Every command end to end: Telegram (real PTB, fake Bot API) -> BotService -> Store (SQLite),
with the real Feed against the KIS simulator on loopback.

The rules are a tiny in-test object behind the service's own interface.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest
from botapi import FakeBotApi, SentMessage, parse_html
from hypothesis import given
from hypothesis import strategies as st
from kis_helpers import Ticks, eventually, feed_on, registered, wanted

from bot.alerts import Alert
from bot.clock import utc_now
from bot.config import TelegramSettings
from bot.kis.feed import Feed
from bot.kis.simulator import Simulator
from bot.kis.status import ConnectionStatus, FeedStats, SubState, SubStatus
from bot.market.names import Directory, Listing, Names
from bot.notify import replies
from bot.notify.commands import alerts_arguments
from bot.notify.telegram_bot import TelegramBot
from bot.notify.voice import PLAIN, Voice
from bot.service import BotService, StatusReport
from bot.store import Store, upgrade
from bot.store.facade import AsyncStore
from bot.ticks import Tick

CHAT, ADMIN, STRANGER = 11, 12, 77
REFUSED_CODE = "999999"  # KIS answers its subscribe with an error ack
ACCOUNT = "main <A&B>"  # markup in the account's name: every reply must escape it


@dataclass
class Rules:
    last_error: str | None = "rules/a.yaml:3:1: unknown key <bad> & more"

    def summary_lines(self) -> list[str]:
        return ["net-buy: NTBY_TR_PBMN crosses above 100억 <all tickers>"]

    @property
    def ids(self) -> Collection[str]:
        return {"net-buy"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'pgmbot.db'}"
    upgrade(url)
    db = Store(url, allowed_chat_ids=[CHAT, ADMIN])
    yield db
    db.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(rate=20, seed=11, reject={REFUSED_CODE}) as simulator:
        yield simulator


@pytest.fixture
async def feed(sim: Simulator) -> AsyncIterator[Feed]:
    async with feed_on(sim, Ticks(), names=[ACCOUNT]) as running_feed:
        yield running_feed


@pytest.fixture
async def tg(api: FakeBotApi, store: Store, feed: Feed) -> AsyncIterator[TelegramBot]:
    settings = TelegramSettings(
        token=api.token, base_url=api.base_url, allowed_chat_ids=[CHAT], admin_chat_ids=[ADMIN]
    )
    service = BotService(
        AsyncStore(store),
        feed,
        Rules(),
        allowed_chat_ids=[CHAT],
        admin_chat_ids=[ADMIN],
        settle_timeout=3.0,  # a settled code returns at once
    )
    bot = TelegramBot(settings, service, poll_timeout=0.2, request_timeout=2)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def ask(api: FakeBotApi, text: str, chat_id: int = CHAT) -> str:
    """The reply as the user reads it (and checked to be valid Telegram HTML)."""
    start = len(api.sent)
    api.push_command(chat_id, text)
    reply: SentMessage = await api.wait_for_message(lambda m: m.chat_id == chat_id, 5, start=start)
    assert reply.parse_mode == "HTML"
    return parse_html(reply.text)


def alert(n: int, message: str, ticker: str = "005930") -> Alert:
    tick = Tick(ticker, date(2024, 6, 3), "092237", 33757, 1, 2, 3, 4, 2, 2, 5, 6, 1)
    return Alert("net-buy", ticker, tick, 2, message, seq=n)


async def test_watch_keeps_what_can_work_and_says_why_not(
    tg: TelegramBot, api: FakeBotApi, store: Store, feed: Feed
) -> None:
    text = await ask(api, f"/watch 005930 {REFUSED_CODE} 5930x")
    lines = text.splitlines()
    assert lines[0] == f"005930 🟢 실시간 구독 중 ({ACCOUNT})"
    assert lines[1].startswith(f"{REFUSED_CODE} ❌ KIS가 거부 — invalid tr_key [OPSP8992]")
    assert lines[1].endswith("이 채팅 목록에 넣지 않았습니다")  # not kept
    assert lines[2] == "❌ '5930x'은(는) 005930 같은 6자리 종목코드가 아닙니다."
    assert "목록에 있는 종목: 1개" in lines[3]
    assert store.watches(CHAT) == ["005930"]
    assert wanted(feed, "005930", REFUSED_CODE) == {"005930"}
    again = await ask(api, "/watch 005930")
    assert f"005930 🟢 실시간 구독 중 ({ACCOUNT}) (이미 감시 중)" in again


async def test_list_and_unwatch(
    tg: TelegramBot, api: FakeBotApi, store: Store, feed: Feed, sim: Simulator
) -> None:
    assert "감시하는 종목이 없습니다" in await ask(api, "/list")
    await ask(api, "/watch 005930 000660")
    text = await ask(api, "/list")
    assert "감시 종목 (2개)" in text and f"000660 🟢 실시간 구독 중 ({ACCOUNT})" in text
    text = await ask(api, "/unwatch 005930 373220")
    assert "감시 해제: 005930" in text and "감시하지 않던 종목: 373220" in text
    assert store.watches(CHAT) == ["000660"]
    assert wanted(feed, "005930", "000660") == {"000660"}
    await eventually(lambda: registered(sim) == {"000660"})  # unsubscribed on "KIS"


async def test_alerts_show_the_rule_text_escaped(
    tg: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    await ask(api, "/watch 005930 000660")
    store.add_alerts([alert(1, "순매수 <b>100억</b> & 돌파"), alert(2, "other", "000660")])
    text = await ask(api, "/alerts 005930")
    assert "005930 최근 알림 1건 (KST" in text  # the zone said once, in the header
    assert "순매수 <b>100억</b> & 돌파" in text  # shown as typed: it was escaped on the wire
    assert "2024/06/03(월) 09:22:37 · net-buy" in text  # always dated (and not this year's)
    assert "최근 알림 2건" in await ask(api, "/alerts 5")
    assert "373220 알림이 아직 없습니다" in await ask(api, "/alerts 373220")
    assert "아직 알림이 없습니다" in await ask(api, "/alerts", chat_id=ADMIN)  # not addressed


async def test_alerts_show_whether_and_when_an_alert_was_resolved(
    tg: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    await ask(api, "/watch 005930")
    first, second = alert(1, "순매수 100억 돌파"), alert(2, "다시 돌파")
    later = first.tick._replace(hhmmss="092502", seconds=first.tick.seconds + 145)
    ended = Alert("net-buy", "005930", later, 1, "해제 · 현재 97.2억", seq=1, kind="resolved")
    store.add_alerts([first, second, replace(ended, resolves=first)])
    assert (await ask(api, "/alerts")).splitlines() == [
        "최근 알림 2건 (KST, 오래된 것부터):",  # the resolved event is no row of its own
        "🔔 005930 2024/06/03(월) 09:22:37 · net-buy",
        "순매수 100억 돌파",
        "✅ 09:25:02 해제",  # the same day as its alert: the time alone
        "🔔 005930 2024/06/03(월) 09:22:37 · net-buy",
        "다시 돌파",  # not resolved: nothing added
    ]


async def test_rules_shows_lines_and_the_reload_error(tg: TelegramBot, api: FakeBotApi) -> None:
    text = await ask(api, "/rules")
    assert "불러온 규칙 1개:\n• net-buy: NTBY_TR_PBMN crosses above 100억 <all tickers>" in text
    assert "다시 읽기 실패:\nrules/a.yaml:3:1: unknown key <bad> & more" in text


async def test_mute_and_unmute(tg: TelegramBot, api: FakeBotApi, store: Store) -> None:
    dated = r"\d\d/\d\d\([월화수목금토일]\) "
    # In 30 minutes: dated only when that is tomorrow already; in a day: always dated.
    text = await ask(api, "/mute 005930 30m")
    assert re.search(rf"종목 005930의 알림을 ({dated})?\d\d:\d\d KST까지 끕니다", text)
    text = await ask(api, "/mute net-buy 1d")
    assert re.search(rf"규칙 net-buy의 알림을 {dated}\d\d:\d\d KST까지 끕니다", text)
    assert {(m.kind, m.target) for m in store.mutes(CHAT, utc_now())} == {
        ("ticker", "005930"),
        ("rule", "net-buy"),
    }
    assert "net-buy 음소거를 해제했습니다" in await ask(api, "/unmute net-buy")
    assert "음소거 1개를 해제했습니다" in await ask(api, "/unmute")
    assert "해제할 음소거가 없습니다" in await ask(api, "/unmute")
    assert store.mutes(CHAT, utc_now()) == []


async def test_status(tg: TelegramBot, api: FakeBotApi, store: Store, feed: Feed) -> None:
    await ask(api, "/watch 005930")
    await eventually(lambda: feed.stats().ticks > 0)
    store.add_alerts([alert(1, "x")])
    text = await ask(api, "/status")
    assert f"🟢 {ACCOUNT} 1/41 구독\n" in text
    assert "구독: 1/41 (요청: 1)" in text
    assert re.search(r"\n체결 데이터: [1-9][\d,]*건 \(마지막: \d+초 전\)\n", text)
    assert "건너뛴 잘못된 프레임: 0" in text
    assert "불러온 규칙: 1 — ⚠️ 마지막 다시 읽기 실패" in text
    assert "전달 대기 중인 알림: 1" in text
    assert "모의 데이터" not in text  # the real feed (here, its loopback stand-in)


def test_kis_texts_and_big_counts_are_shown_as_sent() -> None:
    """KIS's messages and connection errors may hold markup; counts get thousands separators."""
    refused = SubStatus(REFUSED_CODE, SubState.REJECTED, "main", "OPSP8992", "invalid <tr_key>")
    assert parse_html(replies.sub_line(PLAIN, refused)) == (
        f"{REFUSED_CODE} ❌ KIS가 거부 — invalid <tr_key> [OPSP8992]"
    )
    conn = ConnectionStatus("main", True, 1, 41, last_error="PINGPONG <late> & gone")
    feed = FeedStats([conn], ticks=12345, bad_frames=1)
    report = StatusReport(
        feed, pending=1, rules_loaded=1, rules_error=None, wanted=1, blocked_chats=0
    )
    text = parse_html("\n".join(replies.status(PLAIN, report)))
    assert "main 1/41 구독 — PINGPONG <late> & gone" in text
    assert "체결 데이터: 12,345건 (마지막: 없음)" in text


@pytest.mark.parametrize(
    ("command", "problem", "usage"),
    [
        ("/watch", "종목을 하나 이상 주세요", "/watch 종목 [종목…]"),
        ("/unwatch", "종목을 하나 이상 주세요", "/unwatch 종목 [종목…]"),
        ("/alerts a b c d e 7", "종목 하나와 개수 하나까지만", "/alerts [종목] [개수]"),
        (
            "/alerts abc",
            "'abc'은(는) 005930 같은 6자리 종목코드가 아닙니다",
            "/alerts [종목] [개수]",
        ),
        ("/alerts 0", "개수는 1부터 50까지", "/alerts [종목] [개수]"),
        ("/alerts 51", "개수는 1부터 50까지", "/alerts [종목] [개수]"),
        ("/mute 005930", "무엇을 얼마 동안 끌지", "/mute 규칙|종목 기간"),
        ("/mute 005930 30", "단위를 붙이세요: 30m(분)", "/mute 규칙|종목 기간"),
        ("/mute 005930 1h1h", "단위는 한 번씩", "/mute 규칙|종목 기간"),
        ("/mute nothing 30m", "규칙도 종목도 아닙니다", "/mute 규칙|종목 기간"),
        ("/unmute a b c d e", "하나만 주세요", "/unmute [규칙|종목]"),
        ("/list everything", "인자를 받지 않습니다", "/list"),
        ("/status now", "인자를 받지 않습니다", "/status"),
    ],
)
async def test_bad_arguments_get_the_reason_and_usage(
    tg: TelegramBot, api: FakeBotApi, store: Store, command: str, problem: str, usage: str
) -> None:
    text = await ask(api, command)
    assert text.startswith("⚠️ ") and problem in text
    assert text.endswith(f"사용법: {usage}")
    assert store.watches(CHAT) == [] and store.mutes(CHAT, utc_now()) == []


async def test_a_stranger_gets_one_refusal_and_changes_nothing(
    tg: TelegramBot, api: FakeBotApi, store: Store, feed: Feed, sim: Simulator
) -> None:
    for text in ("/watch 005930", "/mute 005930 30m", "/unwatch 005930", "/status", "/x"):
        api.push_command(STRANGER, text)
    await ask(api, "/help")  # handled after the stranger's updates
    [refusal] = api.texts_for(STRANGER)
    assert f"<code>{STRANGER}</code>" in refusal
    assert store.watches(STRANGER) == [] and store.mutes(STRANGER, utc_now()) == []
    assert store.all_watched() == set()
    assert wanted(feed, "005930") == set() and sim.connections_accepted == 0


async def test_an_admin_may_use_commands(tg: TelegramBot, api: FakeBotApi, store: Store) -> None:
    await ask(api, "/watch 005930", chat_id=ADMIN)
    assert store.watches(ADMIN) == ["005930"]


@given(
    code=st.one_of(st.none(), st.from_regex(r"[0-9A-Z]{6}", fullmatch=True)),
    n=st.one_of(st.none(), st.integers(min_value=0, max_value=99_999)),
    swap=st.booleans(),
)
def test_alerts_arguments_in_any_order(code: str | None, n: int | None, swap: bool) -> None:
    args = [a for a in (code, None if n is None else str(n)) if a is not None]
    if swap:
        args.reverse()
    assert alerts_arguments(args) == (code, 10 if n is None else n)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["삼성전자"], ("삼성전자", 10)),
        (["KODEX", "200", "5"], ("KODEX 200", 5)),  # a name with spaces, the count last
        (["٣"], ("٣", 10)),  # an Arabic-Indic digit is no count
    ],
)
def test_alerts_arguments_take_names(args: list[str], expected: tuple[str, int]) -> None:
    assert alerts_arguments(args) == expected


@pytest.mark.parametrize("text", ["/start", "/help", "/status", "/rules", "hello"])
async def test_any_message_from_a_chat_that_blocked_the_bot_unblocks_it(
    tg: TelegramBot, api: FakeBotApi, store: Store, text: str
) -> None:
    """Unblocking the bot in Telegram's app and writing anything brings the alerts back (before,
    only /list and /watch did)."""
    store.mark_blocked(CHAT, "Forbidden: bot was blocked by the user")
    api.push_command(CHAT, text)
    await api.wait_until(lambda: CHAT not in store.blocked_chats(), timeout=5)
    store.add_watches(CHAT, ["005930"])
    assert store.add_alerts([alert(0, "순매수 돌파")])
    assert store.pending_count() == 1  # new alerts are addressed to the chat again


async def test_a_stranger_writing_changes_no_block(
    tg: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    store.mark_blocked(CHAT, "Forbidden: bot was blocked by the user")
    api.push_command(STRANGER, "hello")
    api.push_command(STRANGER, "/start")
    await api.wait_for_message(lambda m: m.chat_id == STRANGER, 5)
    assert store.blocked_chats() == {CHAT}


# -- names: every reply that shows a stock shows its name when the directory knows it ----------


@dataclass
class RulesOfTwo(Rules):
    last_error: str | None = None

    def summary_lines(self) -> list[str]:
        return ["net-buy  threshold NTBY_TR_PBMN crosses above 100억  [005930 000660 373220]"]


@pytest.fixture
async def named(api: FakeBotApi, store: Store, feed: Feed) -> AsyncIterator[TelegramBot]:
    names = Names(
        Directory(
            [Listing("005930", "삼성전자", "KOSPI"), Listing("000660", "SK하이닉스", "KOSPI")]
        )
    )
    settings = TelegramSettings(
        token=api.token, base_url=api.base_url, allowed_chat_ids=[CHAT], admin_chat_ids=[ADMIN]
    )
    service = BotService(
        AsyncStore(store), feed, RulesOfTwo(), allowed_chat_ids=[CHAT], settle_timeout=3.0
    )
    bot = TelegramBot(
        settings, service, poll_timeout=0.2, request_timeout=2, voice=Voice(names=names)
    )
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def test_replies_name_the_stocks_the_directory_knows(
    named: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    text = await ask(api, "/watch 005930 373220")
    assert text.startswith(f"삼성전자(005930) 🟢 실시간 구독 중 ({ACCOUNT})\n373220 🟢")
    text = await ask(api, "/list")
    assert f"\n삼성전자(005930) 🟢 실시간 구독 중 ({ACCOUNT})" in text and "\n373220 🟢" in text
    store.add_alerts([alert(1, "순매수 돌파")])
    text = await ask(api, "/alerts 005930")
    assert "삼성전자(005930) 최근 알림 1건" in text and "🔔 삼성전자(005930) " in text
    text = await ask(api, "/rules")
    assert "[삼성전자(005930) SK하이닉스(000660) 373220]" in text
    assert "종목 삼성전자(005930)의 알림을" in await ask(api, "/mute 005930 30m")
    assert "삼성전자(005930) 음소거를 해제했습니다" in await ask(api, "/unmute 005930")
    text = await ask(api, "/unwatch 005930 000660")
    assert "감시 해제: 삼성전자(005930)" in text and "않던 종목: SK하이닉스(000660)" in text


async def test_mutes_lists_what_is_muted_and_until_when(
    tg: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    assert "켜진 음소거가 없습니다" in await ask(api, "/mutes")
    await ask(api, "/mute 005930 2시간")
    await ask(api, "/mute net-buy 오늘")
    text = await ask(api, "/mutes")
    lines = text.splitlines()
    assert lines[0].startswith("🔕 음소거 2개")
    assert any(re.search(r"종목 005930 · .*\d\d:\d\d KST까지", line) for line in lines)
    assert any(re.search(r"규칙 net-buy · .*\d\d:\d\d KST까지", line) for line in lines)
    assert "최대 30일" in await ask(api, "/mute 005930 31d")
    assert "음소거 2개를 해제했습니다" in await ask(api, "/unmute")
    assert "켜진 음소거가 없습니다" in await ask(api, "/mutes")
