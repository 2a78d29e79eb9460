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
from bot.notify import replies
from bot.notify.commands import alerts_arguments
from bot.notify.telegram_bot import TelegramBot
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
    assert lines[0] == f"005930 🟢 live ({ACCOUNT})"
    assert lines[1].startswith(f"{REFUSED_CODE} ❌ refused by KIS — invalid tr_key")
    assert "not kept" in lines[1] and "[OPSP8992]" in lines[1]
    assert lines[2].startswith("❌ '5930x' is not a 6-character stock code")
    assert "1 of them in this chat's list" in lines[3]
    assert store.watches(CHAT) == ["005930"]
    assert wanted(feed, "005930", REFUSED_CODE) == {"005930"}
    assert f"005930 🟢 live ({ACCOUNT}) (already watched)" in await ask(api, "/watch 005930")


async def test_list_and_unwatch(
    tg: TelegramBot, api: FakeBotApi, store: Store, feed: Feed, sim: Simulator
) -> None:
    assert "watches nothing" in await ask(api, "/list")
    await ask(api, "/watch 005930 000660")
    text = await ask(api, "/list")
    assert "Watched here (2)" in text and f"000660 🟢 live ({ACCOUNT})" in text
    text = await ask(api, "/unwatch 005930 373220")
    assert "Stopped watching 005930" in text and "Not watched here: 373220" in text
    assert store.watches(CHAT) == ["000660"]
    assert wanted(feed, "005930", "000660") == {"000660"}
    await eventually(lambda: registered(sim) == {"000660"})  # unsubscribed on "KIS"


async def test_alerts_show_the_rule_text_escaped(
    tg: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    await ask(api, "/watch 005930 000660")
    store.add_alerts([alert(1, "순매수 <b>100억</b> & 돌파"), alert(2, "other", "000660")])
    text = await ask(api, "/alerts 005930")
    assert "Last 1 alert(s) for 005930" in text
    assert "순매수 <b>100억</b> & 돌파" in text  # shown as typed: it was escaped on the wire
    assert "09:22:37 KST" in text and "net-buy" in text
    assert "Last 2 alert(s)" in await ask(api, "/alerts 5")
    assert "No alerts for 373220" in await ask(api, "/alerts 373220")
    assert "No alerts yet" in await ask(api, "/alerts", chat_id=ADMIN)  # not addressed to it


async def test_alerts_show_whether_and_when_an_alert_was_resolved(
    tg: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    await ask(api, "/watch 005930")
    first, second = alert(1, "순매수 100억 돌파"), alert(2, "다시 돌파")
    later = first.tick._replace(hhmmss="092502", seconds=first.tick.seconds + 145)
    ended = Alert("net-buy", "005930", later, 1, "해제 · 현재 97.2억", seq=1, kind="resolved")
    store.add_alerts([first, second, replace(ended, resolves=first)])
    assert (await ask(api, "/alerts")).splitlines() == [
        "Last 2 alert(s), newest last:",  # the resolved event is no row of its own
        "🔔 005930 09:22:37 KST · net-buy",
        "순매수 100억 돌파",
        "✅ 09:25:02 KST 해제",
        "🔔 005930 09:22:37 KST · net-buy",
        "다시 돌파",  # not resolved: nothing added
    ]


async def test_rules_shows_lines_and_the_reload_error(tg: TelegramBot, api: FakeBotApi) -> None:
    text = await ask(api, "/rules")
    assert "1 rule(s) loaded:\n• net-buy: NTBY_TR_PBMN crosses above 100억 <all tickers>" in text
    assert "Last reload failed:\nrules/a.yaml:3:1: unknown key <bad> & more" in text


async def test_mute_and_unmute(tg: TelegramBot, api: FakeBotApi, store: Store) -> None:
    assert "Stock 005930 muted here until" in await ask(api, "/mute 005930 30m")
    assert "Rule net-buy muted here until" in await ask(api, "/mute net-buy 1d")
    assert {(m.kind, m.target) for m in store.mutes(CHAT, utc_now())} == {
        ("ticker", "005930"),
        ("rule", "net-buy"),
    }
    assert "net-buy unmuted" in await ask(api, "/unmute net-buy")
    assert "1 mute(s) ended" in await ask(api, "/unmute")
    assert "No mutes to end" in await ask(api, "/unmute")
    assert store.mutes(CHAT, utc_now()) == []


async def test_status(tg: TelegramBot, api: FakeBotApi, store: Store, feed: Feed) -> None:
    await ask(api, "/watch 005930")
    await eventually(lambda: feed.stats().ticks > 0)
    store.add_alerts([alert(1, "x")])
    text = await ask(api, "/status")
    assert f"🟢 {ACCOUNT} 1/41 subscribed\n" in text
    assert "Subscriptions: 1/41 (wanted: 1)" in text
    assert re.search(r"\nTicks: [1-9][\d,]* \(last \d+s ago\)\n", text)
    assert "Malformed frames skipped: 0" in text
    assert "Rules loaded: 1 — ⚠️ last reload failed" in text
    assert "Alerts waiting for delivery: 1" in text


def test_kis_texts_and_big_counts_are_shown_as_sent() -> None:
    """KIS's messages and connection errors may hold markup; counts get thousands separators."""
    refused = SubStatus(REFUSED_CODE, SubState.REJECTED, "main", "OPSP8992", "invalid <tr_key>")
    assert parse_html(replies.sub_line(refused)) == (
        f"{REFUSED_CODE} ❌ refused by KIS — invalid <tr_key> [OPSP8992]"
    )
    conn = ConnectionStatus("main", True, 1, 41, last_error="PINGPONG <late> & gone")
    feed = FeedStats([conn], ticks=12345, bad_frames=1)
    report = StatusReport(
        feed, pending=1, rules_loaded=1, rules_error=None, wanted=1, blocked_chats=0
    )
    text = parse_html("\n".join(replies.status(report)))
    assert "main 1/41 subscribed — PINGPONG <late> & gone" in text
    assert "Ticks: 12,345 (last never)" in text


@pytest.mark.parametrize(
    ("command", "problem", "usage"),
    [
        ("/watch", "Give one or more stock codes", "/watch CODE [CODE…]"),
        ("/unwatch", "Give one or more stock codes", "/unwatch CODE [CODE…]"),
        ("/alerts 005930 3 7", "at most a code and a count", "/alerts [CODE] [N]"),
        ("/alerts abc", "neither a stock code nor a count", "/alerts [CODE] [N]"),
        ("/alerts 0", "between 1 and 50", "/alerts [CODE] [N]"),
        ("/alerts 51", "between 1 and 50", "/alerts [CODE] [N]"),
        ("/mute 005930", "what to mute and for how long", "/mute RULE|CODE DURATION"),
        ("/mute 005930 30", "a unit", "/mute RULE|CODE DURATION"),
        (
            "/mute nothing 30m",
            "neither a loaded rule nor a stock code",
            "/mute RULE|CODE DURATION",
        ),
        ("/unmute a b", "at most one", "/unmute [RULE|CODE]"),
        ("/list everything", "no arguments", "/list"),
        ("/status now", "no arguments", "/status"),
    ],
)
async def test_bad_arguments_get_the_reason_and_usage(
    tg: TelegramBot, api: FakeBotApi, store: Store, command: str, problem: str, usage: str
) -> None:
    text = await ask(api, command)
    assert text.startswith("⚠️ ") and problem in text
    assert text.endswith(f"Usage: {usage}")
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
