"""What a person reads, end to end on the loopback Bot API: Korean by default (replies, /help,
the command menu), English with ``locale: en``, stock names in alerts, the date of an old alert,
the session of an after-hours one, and the demo's tag on every message of the simulated feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from botapi import FakeBotApi, SentMessage, parse_html

from bot.alerts import Alert
from bot.app import App
from bot.config import Settings, TelegramSettings, load_settings
from bot.market.names import Directory, Listing, Names
from bot.messages import ENGLISH
from bot.notify.sender import Sender, SenderSettings
from bot.notify.telegram_bot import TelegramBot, TelegramTransport
from bot.notify.voice import Voice
from bot.service import BotService
from bot.store import Store, upgrade
from bot.store.facade import AsyncStore
from bot.ticks import KST, Tick

CHAT, ADMIN = 11, 12
DAY = date(2026, 12, 1)  # a Tuesday
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=KST)  # the bot's wall clock: that day, 10:00 KST
DIRECTORY = Directory(
    [Listing("005930", "삼성전자", "KOSPI"), Listing("000660", "SK하이닉스", "KOSPI")]
)
FAST = SenderSettings(poll_interval=0.05, chat_interval=0.01, global_rate=1000.0)


class Idle:
    """A service no command of these tests reaches (only /help and the guard run)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the service was asked for {name}")


def voice(**more: Any) -> Voice:
    return Voice(clock=lambda: NOW.astimezone(UTC), **more)


def bot_for(api: FakeBotApi, spoken: Voice) -> TelegramBot:
    settings = TelegramSettings(
        token=api.token, base_url=api.base_url, allowed_chat_ids=[CHAT], admin_chat_ids=[ADMIN]
    )
    service = cast(BotService, Idle())
    return TelegramBot(settings, service, poll_timeout=0.2, request_timeout=2, voice=spoken)


async def ask(api: FakeBotApi, text: str, chat_id: int = CHAT) -> str:
    start = len(api.sent)
    api.push_command(chat_id, text)
    reply: SentMessage = await api.wait_for_message(lambda m: m.chat_id == chat_id, 5, start=start)
    return parse_html(reply.text)


@pytest.fixture
async def korean(api: FakeBotApi) -> AsyncIterator[TelegramBot]:
    bot = bot_for(api, voice())
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def test_help_and_the_command_menu_are_korean(korean: TelegramBot, api: FakeBotApi) -> None:
    [menu] = api.calls_to("setMyCommands")
    described = {c["command"]: c["description"] for c in menu.params["commands"]}
    assert described["watch"] == "종목 감시: 그 종목의 알림을 이 채팅에서 받습니다"
    assert described["status"] == "시세 연결, 구독, 알림 전달 상태"
    assert set(described) >= {"help", "start", "watch", "unwatch", "list", "alerts", "mute"}
    assert all(name.isascii() for name in described)  # Telegram takes Latin names only
    help_text = await ask(api, "/help")
    assert "프로그램 매매" in help_text and "한국 시간(KST)" in help_text
    assert "/watch 종목 [종목…] — 종목 감시" in help_text
    assert "/mute 규칙|종목 기간 — 규칙이나 종목의 알림을 잠시 끄기" in help_text
    assert "모르는 명령입니다" in await ask(api, "/frobnicate")
    assert "모의 데이터" not in help_text  # not the demo


async def test_locale_en_speaks_english(api: FakeBotApi) -> None:
    bot = bot_for(api, voice(say=ENGLISH))
    await bot.start()
    try:
        [menu] = api.calls_to("setMyCommands")
        described = {c["command"]: c["description"] for c in menu.params["commands"]}
        assert described["watch"] == "watch stocks: their alerts come to this chat"
        help_text = await ask(api, "/help")
        assert "/watch STOCK [STOCK…] — watch stocks" in help_text
        assert "Unknown command" in await ask(api, "/frobnicate")
    finally:
        await bot.stop()


def test_the_config_chooses_the_language(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("locale: en\n", encoding="utf-8")
    assert load_settings(config, env={}).locale == "en"
    assert Settings().locale == "ko"
    assert App(load_settings(config, env={})).voice.say("demo.tag") == "[simulated data]"


# -- alerts: names, dates, sessions --------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'pgmbot.db'}"
    upgrade(url)
    db = Store(url, allowed_chat_ids=[CHAT])
    db.add_watches(CHAT, ["005930", "000660", "373220"])
    yield db
    db.close()


def alert(ticker: str, day: date, hhmmss: str, message: str) -> Alert:
    seconds = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:])
    tick = Tick(ticker, day, hhmmss, seconds, 1, 2, 3, 4, 2, 2, 5, 6, 1)
    return Alert("net-buy", ticker, tick, 2, message)


async def deliver(api: FakeBotApi, store: Store, spoken: Voice, count: int) -> list[str]:
    """Run a Sender through the real Telegram transport until ``count`` messages reached CHAT."""
    bot = bot_for(api, spoken)
    await bot.start()
    sender = Sender(AsyncStore(store), TelegramTransport(bot.app.bot), FAST, voice=spoken)
    task = asyncio.create_task(sender.run())
    try:
        await api.wait_for_count(count, lambda m: m.chat_id == CHAT, 10)
    finally:
        await sender.close()
        await asyncio.wait_for(task, 5)
        await bot.stop()
    return [parse_html(m.text) for m in api.messages_for(CHAT)]


async def test_an_alert_names_its_stock_and_an_old_one_its_date(
    api: FakeBotApi, store: Store
) -> None:
    names = Names(DIRECTORY)
    store.add_alerts(
        [
            alert("005930", DAY, "092237", "순매수 100억 돌파"),
            alert("000660", DAY - timedelta(days=6), "100000", "지난주 알림"),
            alert("373220", DAY, "154000", "시간외"),  # not in the directory: its code alone
        ]
    )
    texts = await deliver(api, store, voice(names=names), 3)
    by_text = {text.split("\n")[1]: text for text in texts}
    assert (
        by_text["순매수 100억 돌파"]
        == "🔔 삼성전자(005930) 09:22:37 KST · net-buy\n순매수 100억 돌파"
    )
    last_week = "🔔 SK하이닉스(000660) 11/25(수) 10:00:00 KST · net-buy\n지난주 알림"
    assert by_text["지난주 알림"] == last_week
    assert by_text["시간외"] == "🔔 373220 [애프터] 15:40:00 KST · net-buy\n시간외"


async def test_the_demo_tags_alerts_and_replies(api: FakeBotApi, store: Store) -> None:
    store.add_alerts([alert("005930", DAY, "092237", "순매수 100억 돌파")])
    [text] = await deliver(api, store, voice(demo=True), 1)
    assert text == "[모의 데이터]\n🔔 005930 09:22:37 KST · net-buy\n순매수 100억 돌파"
    bot = bot_for(api, voice(demo=True))
    await bot.start()
    try:
        assert (await ask(api, "/help")).startswith("[모의 데이터]\n")
        assert (await ask(api, "/nothing")).startswith("[모의 데이터]\n")
        assert await bot.notify_admins("rules <fixed>") == 1
        [notice] = api.messages_for(ADMIN)
        assert parse_html(notice.text) == "[모의 데이터]\nrules <fixed>"
    finally:
        await bot.stop()


# -- the app: the simulator is the demo ----------------------------------------------------------


def app_settings(tmp_path: Path, api: FakeBotApi, *, live: bool) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {id: flip, type: sign_flip, field: WHOL_NTBY_QTY, direction: any}\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    accounts = "  accounts: [{appkey: K, appsecret: S}]\n" if live else ""
    config.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / 'bot.db'}'}}\n"
        f"rules: {{path: '{rules}'}}\n"
        f"telegram: {{token: '{api.token}', base_url: '{api.base_url}', "
        f"admin_chat_ids: [{ADMIN}]}}\n"
        "digest: {enabled: false}\n"  # after 15:45 KST its message would come first
        + (f"kis:\n{accounts}" if live else ""),
        encoding="utf-8",
    )
    return load_settings(config, env={})


def test_only_the_simulated_feed_is_the_demo(tmp_path: Path, api: FakeBotApi) -> None:
    assert App(app_settings(tmp_path, api, live=False)).voice.demo
    assert not App(app_settings(tmp_path, api, live=True)).voice.demo


async def test_the_demo_app_says_so_in_every_message_and_in_status(
    tmp_path: Path, api: FakeBotApi
) -> None:
    app = App(app_settings(tmp_path, api, live=False))
    await app.start()
    try:
        # The reply, not the admins' notice the demo sends at night (the real market closed),
        # which may come first: the app runs on the wall clock.
        start = len(api.sent)
        api.push_command(ADMIN, "/status")
        reply = await api.wait_for_message(lambda m: "pgmbot 상태" in m.text, 20, start=start)
        status = parse_html(reply.text)
        assert status.startswith("[모의 데이터]\npgmbot 상태\n⚠️ 내장 시뮬레이터의 모의 데이터")
        await api.wait_for_message(lambda m: "🔔" in m.text, 20)  # the simulator's alerts
        for message in api.messages_for(ADMIN):
            assert parse_html(message.text).startswith("[모의 데이터]\n"), message.text
    finally:
        await app.stop()
