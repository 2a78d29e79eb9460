"""Every command, from Telegram to the service and back, with the real PTB against the fake API.

The service here is a recording stand-in with BotService's interface (this file checks parsing and
replies); tests/test_telegram_service.py runs the same commands on the real service and store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from botapi import FakeBotApi, SentMessage, parse_html
from hypothesis import given
from hypothesis import strategies as st

from bot.config import TelegramSettings
from bot.kis.status import ConnectionStatus, FeedStats, SubState, SubStatus
from bot.notify.commands import MAX_ALERTS, alerts_arguments
from bot.notify.telegram_bot import TelegramBot
from bot.ticks import KST

CHAT, ADMIN = 11, 12
T0 = datetime(2024, 6, 3, 9, 22, 37, tzinfo=KST)


@dataclass(frozen=True)
class Watch:
    ticker: str
    status: SubStatus
    added: bool = True


@dataclass(frozen=True)
class Stored:
    rule: str
    ticker: str
    time: datetime
    message: str


@dataclass(frozen=True)
class MuteInfo:
    target: str
    until: datetime


@dataclass(frozen=True)
class Report:
    feed: FeedStats
    pending: int


@dataclass
class RecordingService:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    watched: dict[int, list[str]] = field(default_factory=dict)

    async def watch(self, chat_id: int, codes: list[str]) -> list[Watch]:
        self.calls.append(("watch", chat_id, codes))
        if any(len(c) != 6 for c in codes):
            raise ValueError(f"{codes[0]!r} is not a 6-character stock code such as 005930")
        results = []
        for code in codes:
            known = code in self.watched.setdefault(chat_id, [])
            self.watched[chat_id].append(code)
            state = SubState.NO_CAPACITY if code == "999999" else SubState.LIVE
            msg = "82/82 slots in use" if code == "999999" else None
            results.append(Watch(code, SubStatus(code, state, "main", None, msg), not known))
        return results

    async def unwatch(self, chat_id: int, codes: list[str]) -> list[str]:
        self.calls.append(("unwatch", chat_id, codes))
        mine = self.watched.get(chat_id, [])
        return [c for c in codes if c in mine]

    def list(self, chat_id: int) -> list[SubStatus]:
        self.calls.append(("list", chat_id))
        return [SubStatus(c, SubState.PENDING) for c in self.watched.get(chat_id, [])]

    def alerts(self, chat_id: int, ticker: str | None, n: int) -> list[Stored]:
        self.calls.append(("alerts", chat_id, ticker, n))
        return [Stored("r<1>", "005930", T0, "순매수 <b>100억</b> & 돌파")][:n]

    def rules(self) -> tuple[list[str], str | None]:
        self.calls.append(("rules",))
        return ["net-buy: threshold NTBY_TR_PBMN crosses_above 100억"], "rules/a.yaml:3:1: <bad>"

    def mute(self, chat_id: int, target: str, duration: str) -> MuteInfo:
        self.calls.append(("mute", chat_id, target, duration))
        if duration != "30m":
            raise ValueError(f"bad duration {duration!r}: use e.g. 30m, 2h, 1h30m")
        return MuteInfo(target, T0 + timedelta(minutes=30))

    def unmute(self, chat_id: int, target: str | None) -> int:
        self.calls.append(("unmute", chat_id, target))
        return 2 if target is None else 1

    def status(self) -> Report:
        self.calls.append(("status",))
        conn = ConnectionStatus("main", True, 2, 41, last_error="PINGPONG <late>")
        return Report(FeedStats([conn], ticks=12345, bad_frames=1), pending=3)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(max_poll=0.2) as server:
        yield server


@pytest.fixture
def service() -> RecordingService:
    return RecordingService()


@pytest.fixture
async def tg(api: FakeBotApi, service: RecordingService) -> AsyncIterator[TelegramBot]:
    settings = TelegramSettings(
        token=api.token, base_url=api.base_url, allowed_chat_ids=[CHAT], admin_chat_ids=[ADMIN]
    )
    bot = TelegramBot(settings, service, poll_timeout=0.2, request_timeout=2)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def ask(api: FakeBotApi, text: str, chat_id: int = CHAT) -> str:
    """The reply's text as the user sees it (checked to be valid Telegram HTML)."""
    start = len(api.sent)
    api.push_command(chat_id, text)
    reply: SentMessage = await api.wait_for_message(lambda m: m.chat_id == chat_id, 5, start=start)
    assert reply.parse_mode == "HTML"
    return parse_html(reply.text)


async def test_watch_reports_each_code(
    tg: TelegramBot, api: FakeBotApi, service: RecordingService
) -> None:
    text = await ask(api, "/watch 005930 999999")
    assert service.calls == [("watch", CHAT, ["005930", "999999"])]
    assert "005930 🟢 live (main)" in text
    assert "999999 🚫 no free subscription slot — 82/82 slots in use" in text
    assert "already" in await ask(api, "/watch 005930")


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("/watch", "/watch CODE [CODE…]"),
        ("/unwatch", "/unwatch CODE [CODE…]"),
        ("/watch 5930x", "/watch CODE [CODE…]"),
        ("/alerts 005930 3 7", "/alerts [CODE] [N]"),
        ("/alerts abc", "/alerts [CODE] [N]"),
        ("/alerts 0", "/alerts [CODE] [N]"),
        ("/mute 005930", "/mute RULE|CODE DURATION"),
        ("/mute 005930 soon", "/mute RULE|CODE DURATION"),
        ("/unmute a b", "/unmute [RULE|CODE]"),
        ("/list everything", "/list"),
        ("/status now", "/status"),
    ],
)
async def test_bad_arguments_get_the_reason_and_usage(
    tg: TelegramBot, api: FakeBotApi, command: str, usage: str
) -> None:
    text = await ask(api, command)
    assert text.startswith("⚠️ ")
    assert text.endswith(f"Usage: {usage}")
    assert "Traceback" not in text


async def test_unwatch_list_and_alerts(
    tg: TelegramBot, api: FakeBotApi, service: RecordingService
) -> None:
    assert "watches nothing" in await ask(api, "/list")
    await ask(api, "/watch 005930")
    assert "005930 ⏳ subscribing" in await ask(api, "/list")
    text = await ask(api, "/unwatch 005930 000660")
    assert "Stopped watching 005930" in text and "Not watched here: 000660" in text
    text = await ask(api, "/alerts 005930 5")
    assert ("alerts", CHAT, "005930", 5) in service.calls
    assert "순매수 <b>100억</b> & 돌파" in text  # the rule's text, escaped on the wire
    assert "r<1>" in text and "09:22:37 KST" in text
    await ask(api, "/alerts")
    assert ("alerts", CHAT, None, 10) in service.calls


async def test_rules_mute_unmute_status(
    tg: TelegramBot, api: FakeBotApi, service: RecordingService
) -> None:
    text = await ask(api, "/rules")
    assert "1 rule(s) loaded" in text and "crosses_above 100억" in text
    assert "Last reload failed:\nrules/a.yaml:3:1: <bad>" in text
    text = await ask(api, "/mute 005930 30m")
    assert ("mute", CHAT, "005930", "30m") in service.calls
    assert "005930 muted until" in text and ":52 KST" in text
    assert "2 mute(s) ended" in await ask(api, "/unmute")
    assert "005930 unmuted" in await ask(api, "/unmute 005930")
    text = await ask(api, "/status")
    assert "main 2/41 subscribed — PINGPONG <late>" in text
    assert "Ticks: 12,345" in text and "waiting for delivery: 3" in text


async def test_a_stranger_changes_nothing(
    tg: TelegramBot, api: FakeBotApi, service: RecordingService
) -> None:
    for text in ("/watch 005930", "/mute 005930 30m", "/unwatch 005930", "/status"):
        api.push_command(77, text)
    await ask(api, "/help")
    assert service.calls == []
    assert len(api.messages_for(77)) == 1


@given(
    code=st.one_of(st.none(), st.from_regex(r"[0-9A-Z]{6}", fullmatch=True)),
    n=st.one_of(st.none(), st.integers(min_value=1, max_value=MAX_ALERTS)),
    swap=st.booleans(),
)
def test_alerts_arguments_in_any_order(code: str | None, n: int | None, swap: bool) -> None:
    args = [a for a in (code, None if n is None else str(n)) if a is not None]
    if swap:
        args.reverse()
    assert alerts_arguments(args) == (code, 10 if n is None else n)
