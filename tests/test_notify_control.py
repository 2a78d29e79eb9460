"""Notification control end to end: the real sender, python-telegram-bot and BotService on the
loopback Bot API (tests/botapi.py) and a real SQLite store. Buttons under alert messages, mutes
that hold at send time, silent messages (quiet hours, silent rules), commands in groups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from botapi import FakeBotApi, SentMessage, parse_html

from bot.alerts import Alert
from bot.config import TelegramSettings
from bot.kis.status import FeedStats, SubState, SubStatus
from bot.notify.buttons import data_of
from bot.notify.commands import addressed_elsewhere
from bot.notify.quiet import QuietHours
from bot.notify.sender import Sender, SenderSettings
from bot.notify.telegram_bot import TelegramBot
from bot.notify.voice import Voice
from bot.service import BotService
from bot.store import Store, upgrade
from bot.store.facade import AsyncStore
from bot.ticks import Tick

CHAT, OTHER, ADMIN, STRANGER = 11, 22, 12, 77
STOCK, SECOND_STOCK = "005930", "000660"
DAY = date(2024, 6, 3)
NOW = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)  # 09:30 KST, a Monday
FAST = SenderSettings(
    group_window=0,
    poll_interval=0.05,
    chat_interval=0.01,
    global_rate=1000.0,
    backoff_min=0.05,
    backoff_max=0.2,
    close_timeout=1.0,
)


class Clock:
    """The wall clock the bot reads, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class StaticFeed:
    """The service's view of a feed (its FeedControl protocol): every code is subscribed."""

    def __init__(self) -> None:
        self.wanted: list[str] = []

    def set_wanted(self, tickers: Collection[str]) -> None:
        self.wanted = list(tickers)

    def status(self, ticker: str) -> SubStatus:
        return SubStatus(ticker, SubState.LIVE)

    async def wait_settled(
        self,
        tickers: Collection[str],
        timeout: float,  # noqa: ASYNC109
    ) -> dict[str, SubStatus]:
        return {t: self.status(t) for t in tickers}

    def stats(self) -> FeedStats:
        return FeedStats([])


@dataclass
class Rules:
    ids: set[str] = field(default_factory=lambda: {"net-buy", "surge"})
    last_error: str | None = None

    def summary_lines(self) -> list[str]:
        return ["net-buy: NTBY_TR_PBMN crosses above 100억", "surge: 급등"]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'pgmbot.db'}"
    upgrade(url)
    db = Store(url, allowed_chat_ids=[CHAT, OTHER, ADMIN])
    for chat in (CHAT, OTHER):
        db.add_watches(chat, [STOCK, SECOND_STOCK])
    yield db
    db.close()


@dataclass
class Running:
    api: FakeBotApi
    store: Store
    bot: TelegramBot
    sender: Sender


@asynccontextmanager
async def running_bot(
    api: FakeBotApi,
    store: Store,
    clock: Clock,
    allowed: list[int] | None = None,
    *,
    silent: frozenset[str] = frozenset(),
    settings_: SenderSettings = FAST,
) -> AsyncIterator[Running]:
    allowed = allowed if allowed is not None else [CHAT, OTHER]
    settings = TelegramSettings(
        token=api.token, base_url=api.base_url, allowed_chat_ids=allowed, admin_chat_ids=[ADMIN]
    )
    aio = AsyncStore(store)
    service = BotService(
        aio, StaticFeed(), Rules(), allowed_chat_ids=allowed, admin_chat_ids=[ADMIN], clock=clock
    )
    voice = Voice(clock=clock)
    bot = TelegramBot(settings, service, poll_timeout=0.2, request_timeout=2, voice=voice)
    await bot.start()
    sender = Sender(
        aio, bot.transport, settings_, clock=clock, voice=voice, silent_rules=lambda: silent
    )
    task = asyncio.create_task(sender.run())
    try:
        yield Running(api, store, bot, sender)
    finally:
        await sender.close()
        await asyncio.wait_for(task, 5)
        await bot.stop()
        aio.close()


@pytest.fixture
async def tg(api: FakeBotApi, store: Store, clock: Clock) -> AsyncIterator[Running]:
    async with running_bot(api, store, clock) as bot:
        yield bot


def alert(n: int, ticker: str = STOCK, rule: str = "net-buy") -> Alert:
    seconds = 9 * 3600 + 22 * 60 + n
    hhmmss = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    tick = Tick(ticker, DAY, hhmmss, seconds, 1, 2, 3, 4, 2, 2, 5, 6, 1)
    return Alert(rule, ticker, tick, 2, f"알림 #{n}#", seq=n)


async def arrives(api: FakeBotApi, chat: int, n: int, start: int = 0) -> SentMessage:
    return await api.wait_for_message(lambda m: m.chat_id == chat and f"#{n}#" in m.text, 5,
                                      start=start)  # fmt: skip


async def ask(api: FakeBotApi, text: str, chat_id: int = CHAT) -> str:
    start = len(api.sent)
    api.push_command(chat_id, text)
    reply = await api.wait_for_message(lambda m: m.chat_id == chat_id, 5, start=start)
    return parse_html(reply.text)


async def press(api: FakeBotApi, chat: int, data: str, message_id: int | None = None) -> str:
    """Press a button with ``data`` in ``chat``; the text of the answer to the press."""
    query = api.push_callback(chat, data, message_id=message_id)
    await api.wait_until(lambda: api.answer_to(query) is not None, 5)
    answer = api.answer_to(query)
    assert answer is not None
    return str(answer.get("text", ""))


async def settled(api: FakeBotApi, store: Store) -> None:
    """Every delivery was sent or closed."""
    await api.wait_until(lambda: store.pending_count() == 0, 5)


# -- buttons -------------------------------------------------------------------------------------


async def test_an_alert_carries_the_buttons(tg: Running, store: Store, api: FakeBotApi) -> None:
    (alert_id,) = store.add_alerts([alert(1)], NOW)
    tg.sender.wake()
    message = await arrives(api, CHAT, 1)
    assert message.buttons == [
        ("🔕 이 종목 1시간", f"n1:s:{alert_id}"),
        ("🔕 이 규칙 오늘", f"n1:r:{alert_id}"),
        ("📈 차트", f"n1:c:{alert_id}"),
    ]
    assert all(len(data.encode()) <= 64 for _, data in message.buttons)
    assert not message.silent


async def test_mute_this_stock_stops_its_next_alerts_and_mutes_lists_it(
    tg: Running, store: Store, api: FakeBotApi, clock: Clock
) -> None:
    (alert_id,) = store.add_alerts([alert(1)], NOW)
    tg.sender.wake()
    message = await arrives(api, CHAT, 1)
    answer = await press(api, CHAT, data_of("s", alert_id), message.message_id)
    assert answer.startswith("🔕 005930:") and "10:30 KST까지" in answer
    assert [(m.kind, m.target) for m in store.mutes(CHAT, clock())] == [("ticker", STOCK)]
    listed = await ask(api, "/mutes")
    assert "종목 005930 · 10:30 KST까지" in listed
    start = len(api.sent)
    store.add_alerts([alert(2), alert(3, SECOND_STOCK)], NOW)
    tg.sender.wake()
    await arrives(api, CHAT, 3, start)  # the other stock still comes
    await arrives(api, OTHER, 2, start)  # and the other chat muted nothing
    await settled(api, store)
    assert not [m for m in api.messages_for(CHAT) if "#2#" in m.text]
    assert store.delivery_counts() == {"sent": 5}  # #2# muted when stored: none for CHAT
    assert api.sent[-1] is not message  # the alert's own message was not edited
    assert not api.calls_to("editMessageText") and not api.calls_to("editMessageReplyMarkup")


async def test_mute_this_rule_lasts_the_trading_day(
    tg: Running, store: Store, api: FakeBotApi, clock: Clock
) -> None:
    (alert_id,) = store.add_alerts([alert(1)], NOW)
    tg.sender.wake()
    await arrives(api, CHAT, 1)
    answer = await press(api, CHAT, data_of("r", alert_id))
    assert answer == "🔕 규칙 net-buy: 20:01 KST까지 알림을 끕니다."
    (mute,) = store.mutes(CHAT, clock())
    assert (mute.kind, mute.target) == ("rule", "net-buy")


async def test_a_press_from_another_chat_changes_nothing(
    api: FakeBotApi, store: Store, clock: Clock
) -> None:
    async with running_bot(api, store, clock, allowed=[CHAT]) as tg:
        (alert_id,) = store.add_alerts([alert(1)], NOW)
        tg.sender.wake()
        await arrives(api, CHAT, 1)
        # A chat that is not allowed, and an allowed one that never got that alert.
        assert await press(api, STRANGER, data_of("s", alert_id)) == (
            "이 채팅에서는 쓸 수 없는 버튼입니다."
        )
        assert await press(api, OTHER, data_of("s", alert_id)) == (
            "이 채팅에서는 쓸 수 없는 버튼입니다."
        )
    assert store.mutes(CHAT, clock()) == [] and store.mutes(STRANGER, clock()) == []


@pytest.mark.parametrize(
    "data",
    ["n1:s:999999", "n1:x:1", "n1:s:01", "n1:s:-1", "n1:s:1 ", "n0:s:1", "", "s" * 64, "n1:s:1:2"],
)
async def test_forged_or_stale_button_data_is_refused(
    tg: Running, store: Store, api: FakeBotApi, clock: Clock, data: str
) -> None:
    store.add_alerts([alert(1)], NOW)  # id 1: only "n1:s:1" would act
    tg.sender.wake()
    await arrives(api, CHAT, 1)
    assert await press(api, CHAT, data) == "더 이상 쓸 수 없는 버튼입니다. 명령으로 해 주세요."
    assert store.mutes(CHAT, clock()) == []


async def test_the_chart_button_says_when_charts_are_off(
    tg: Running, store: Store, api: FakeBotApi
) -> None:
    (alert_id,) = store.add_alerts([alert(1)], NOW)
    tg.sender.wake()
    await arrives(api, CHAT, 1)
    assert await press(api, CHAT, data_of("c", alert_id)) == "차트 기능이 꺼져 있습니다."


# -- mutes at send time --------------------------------------------------------------------------


async def test_a_mute_given_while_deliveries_are_pending_keeps_them_from_going_out(
    api: FakeBotApi, store: Store, clock: Clock
) -> None:
    store.add_alerts([alert(1), alert(2, SECOND_STOCK)], NOW)  # pending before the bot runs
    store.mute(CHAT, STOCK, datetime(2024, 6, 3, 3, tzinfo=UTC), kind="ticker", now=clock())
    async with running_bot(api, store, clock):
        await arrives(api, CHAT, 2)
        await arrives(api, OTHER, 1)
        await settled(api, store)
    assert [parse_html(m.text) for m in api.messages_for(CHAT) if "#1#" in m.text] == []
    assert store.delivery_counts() == {"sent": 3, "muted": 1}


# -- quiet hours ---------------------------------------------------------------------------------


async def test_quiet_hours_covering_now_make_alerts_silent(
    tg: Running, store: Store, api: FakeBotApi, clock: Clock
) -> None:
    assert "조용한 시간이 없습니다" in await ask(api, "/quiet")
    # 09:30 KST now: a range across midnight that covers it, and one that does not.
    assert "조용한 시간 22:00-09:45 (KST)" in await ask(api, "/quiet 22:00-09:45")
    assert "조용한 시간 22:00-09:45" in await ask(api, "/quiet")
    store.add_alerts([alert(1)], NOW)
    tg.sender.wake()
    assert (await arrives(api, CHAT, 1)).silent
    assert not (await arrives(api, OTHER, 1)).silent  # the other chat has no quiet hours
    await ask(api, "/quiet 22:00-07:00")
    store.add_alerts([alert(2)], NOW)
    tg.sender.wake()
    assert not (await arrives(api, CHAT, 2)).silent
    clock.now = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)  # 23:00 KST: quiet again
    store.add_alerts([alert(3)], clock.now)
    tg.sender.wake()
    assert (await arrives(api, CHAT, 3)).silent
    assert "조용한 시간을 껐습니다" in await ask(api, "/quiet off")
    assert "조용한 시간이 없습니다" in await ask(api, "/quiet")
    assert store.quiet(CHAT) is None


@pytest.mark.parametrize("word", ["22:00", "25:00-07:00", "22:00-07:60", "soon", "22-07"])
async def test_quiet_refuses_what_is_no_range(tg: Running, api: FakeBotApi, word: str) -> None:
    assert "시간 범위가 아닙니다" in await ask(api, f"/quiet {word}")


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("22:00-07:00", ["22:00", "23:59", "00:00", "07:00"], ["07:01", "12:00", "21:59"]),
        ("12:00-13:00", ["12:00", "13:00"], ["11:59", "13:01", "00:00"]),
    ],
)
def test_quiet_hours_may_cross_midnight(text: str, inside: list[str], outside: list[str]) -> None:
    hours = QuietHours.parse(text)
    assert str(hours) == text

    def at(hhmm: str) -> datetime:
        return datetime.fromisoformat(f"2024-06-03T{hhmm}:30+09:00")

    assert all(hours.holds(at(t)) for t in inside)
    assert not any(hours.holds(at(t)) for t in outside)


# -- groups --------------------------------------------------------------------------------------


async def test_a_command_for_another_bot_gets_no_reply(tg: Running, api: FakeBotApi) -> None:
    start = len(api.sent)
    api.push_command(CHAT, "/status@other_bot")
    api.push_command(CHAT, "/nosuch@other_bot")
    api.push_command(STRANGER, "/status@other_bot")  # not even the refusal
    api.push_command(CHAT, "/mutes@pgmbot_test_bot")  # ours: answered
    reply = await api.wait_for_message(None, 5, start=start)
    assert reply.chat_id == CHAT and "음소거가 없습니다" in parse_html(reply.text)
    await asyncio.sleep(0.3)
    assert len(api.sent) == start + 1


async def test_reload_is_for_admins_even_in_an_allowed_group(tg: Running, api: FakeBotApi) -> None:
    """Every member of an allowed group may use the chat's commands, but not an admin's."""
    reloads: list[int] = []

    async def reload() -> None:
        reloads.append(1)

    service = tg.bot.app.bot_data.service
    service.reload = reload
    group = -100
    service.allowed_chat_ids = frozenset({*service.allowed_chat_ids, group})
    tg.bot.access.allow(group)
    start = len(api.sent)
    api.push_command(group, "/reload", user_id=STRANGER, chat_type="supergroup")
    refused = await api.wait_for_message(lambda m: m.chat_id == group, 5, start=start)
    assert "관리자만" in parse_html(refused.text) and reloads == []
    start = len(api.sent)
    api.push_command(group, "/reload", user_id=ADMIN, chat_type="supergroup")
    done = parse_html(
        (await api.wait_for_message(lambda m: m.chat_id == group, 5, start=start)).text
    )
    assert "다시 읽었습니다" in done and "net-buy" in done and reloads == [1]


@pytest.mark.parametrize(
    ("text", "elsewhere"),
    [
        ("/status@other_bot", True),
        ("/status@PGMBOT_TEST_BOT now", False),
        ("/status", False),
        ("/status@", True),
        ("hello @other_bot", False),
        ("", False),
    ],
)
def test_addressed_elsewhere(text: str, elsewhere: bool) -> None:
    assert addressed_elsewhere(text, "pgmbot_test_bot") is elsewhere


# -- silent rules, routing -----------------------------------------------------------------------


async def test_a_silent_rule_arrives_without_sound_and_a_loud_one_with(
    api: FakeBotApi, store: Store, clock: Clock
) -> None:
    async with running_bot(api, store, clock, silent=frozenset({"surge"})) as tg:
        store.add_alerts([alert(1, rule="surge"), alert(2, rule="net-buy")], NOW)
        tg.sender.wake()
        assert (await arrives(api, CHAT, 1)).silent
        assert not (await arrives(api, CHAT, 2)).silent
        call = next(c for c in api.calls_to("sendMessage") if "#1#" in c.params["text"])
        assert str(call.params["disable_notification"]).lower() == "true"


async def test_a_grouped_message_is_silent_only_if_all_its_alerts_are(
    api: FakeBotApi, store: Store, clock: Clock
) -> None:
    grouping = SenderSettings(group_window=5.0, poll_interval=0.05, chat_interval=0.01)
    async with running_bot(
        api, store, clock, [CHAT], silent=frozenset({"surge"}), settings_=grouping
    ) as tg:
        store.add_alerts([alert(1, rule="surge"), alert(2, rule="surge")], NOW)
        tg.sender.wake()
        both = await arrives(api, CHAT, 2)
        assert "#1#" in both.text and both.silent
        assert both.buttons[0][1].endswith(":1")  # the buttons of its first alert
        start = len(api.sent)
        store.add_alerts([alert(10, rule="surge"), alert(11, rule="net-buy")], NOW)
        tg.sender.wake()
        mixed = await arrives(api, CHAT, 11, start)
        assert "#10#" in mixed.text and not mixed.silent


async def test_a_routed_rule_goes_to_its_chats_only(
    api: FakeBotApi, store: Store, clock: Clock
) -> None:
    store.remove_watches(OTHER, [STOCK])  # OTHER gets the routed rule without watching
    store.routes = lambda: {"surge": frozenset({OTHER, STRANGER})}  # STRANGER: not allowed
    async with running_bot(api, store, clock) as tg:
        store.add_alerts([alert(1, rule="surge"), alert(2, rule="net-buy")], NOW)
        tg.sender.wake()
        await arrives(api, OTHER, 1)
        await arrives(api, CHAT, 2)
        await settled(api, store)
    got = {(m.chat_id, n) for m in api.sent for n in (1, 2) if f"#{n}#" in m.text}
    assert got == {(OTHER, 1), (CHAT, 2)}


async def test_settings_show_the_chat_at_a_glance(
    api: FakeBotApi, store: Store, clock: Clock
) -> None:
    store.routes = lambda: {"surge": frozenset({OTHER})}
    async with running_bot(api, store, clock) as tg:
        tg.bot.app.bot_data.service.routes = store.routes
        await ask(api, "/quiet 22:00-07:00")
        await ask(api, "/mute 005930 1h")
        text = await ask(api, "/settings")
        assert text.splitlines() == [
            "⚙️ 이 채팅의 설정",
            "언어: 한국어 (ko)",
            "조용한 시간: 22:00-07:00 KST",
            "음소거: 005930 ~10:30 KST",
            "감시 종목: 000660, 005930",
            "받는 규칙: net-buy",  # surge goes to OTHER only
        ]
        assert "받는 규칙: net-buy, surge →" in await ask(api, "/settings", OTHER)
