"""The Telegram bot: lifecycle, guard, errors, secrets; the real PTB against the fake API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from botapi import FakeBotApi, SentMessage, parse_html
from telegram.error import InvalidToken, NetworkError

from bot.config import TelegramSettings
from bot.notify.commands import Access
from bot.notify.telegram_bot import TelegramBot, file_url
from bot.notify.transport import ChatBlocked, Rejected, RetryLater, TransientError
from bot.service import BotService

ALLOWED, ADMIN, STRANGER = 11, 12, 99


class ExplodingService:
    """Only for the error path: every method raises."""

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk <full> & co")

        return fail


def exploding() -> BotService:
    return cast(BotService, ExplodingService())


def settings_for(api: FakeBotApi, token: str | None = None) -> TelegramSettings:
    return TelegramSettings(
        token=token or api.token,
        base_url=api.base_url,
        allowed_chat_ids=[ALLOWED, ADMIN],
        admin_chat_ids=[ADMIN],
    )


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(max_poll=0.2) as server:
        yield server


@pytest.fixture
async def tg(api: FakeBotApi) -> AsyncIterator[TelegramBot]:
    bot = TelegramBot(settings_for(api), exploding(), poll_timeout=0.2, request_timeout=2)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def ask(api: FakeBotApi, chat_id: int, text: str) -> SentMessage:
    start = len(api.sent)
    api.push_command(chat_id, text)
    return await api.wait_for_message(lambda m: m.chat_id == chat_id, 5, start=start)


async def test_start_publishes_the_command_menu(tg: TelegramBot, api: FakeBotApi) -> None:
    names = [c["command"] for c in api.my_commands]
    assert {"help", "start"} <= set(names)
    assert api.calls_to("getMe") and api.calls_to("deleteWebhook")


async def test_help_lists_every_command(tg: TelegramBot, api: FakeBotApi) -> None:
    reply = await ask(api, ALLOWED, "/help")
    assert reply.parse_mode == "HTML"
    text = parse_html(reply.text)
    for command in api.my_commands:
        assert f"/{command['command']}" in text
    assert (await ask(api, ALLOWED, "/start@pgmbot_test_bot")).text == reply.text


async def test_a_stranger_is_refused_once_and_shown_its_chat_id(
    tg: TelegramBot, api: FakeBotApi
) -> None:
    refusal = await ask(api, STRANGER, "/help")
    assert "private" in refusal.text and f"<code>{STRANGER}</code>" in refusal.text
    for text in ("/watch 005930", "/bogus", "/help"):
        api.push_command(STRANGER, text)
    await ask(api, ALLOWED, "/help")  # updates are handled in order: the stranger's came first
    assert len(api.messages_for(STRANGER)) == 1


async def test_unknown_command_points_to_help(tg: TelegramBot, api: FakeBotApi) -> None:
    assert "/help" in (await ask(api, ALLOWED, "/frobnicate")).text


async def test_a_failing_command_is_reported_to_admins_escaped(
    tg: TelegramBot, api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await ask(api, ALLOWED, "/status")
    assert "failed" in reply.text
    report = await api.wait_for_message(lambda m: m.chat_id == ADMIN)
    assert "disk &lt;full&gt; &amp; co" in report.text
    parse_html(report.text)
    assert any("handler failed" in r.getMessage() for r in caplog.records)


async def test_notify_admins_escapes_and_reaches_every_admin(
    tg: TelegramBot, api: FakeBotApi
) -> None:
    assert await tg.notify_admins("rules/a.yaml:3:5: bad <key> & more") == 1
    [notice] = api.messages_for(ADMIN)
    assert parse_html(notice.text) == "rules/a.yaml:3:5: bad <key> & more"


async def test_notify_admins_survives_a_blocked_admin(tg: TelegramBot, api: FakeBotApi) -> None:
    api.block_chat(ADMIN)
    assert await tg.notify_admins("x") == 0


async def test_wrong_token_fails_start_clearly(api: FakeBotApi) -> None:
    bot = TelegramBot(settings_for(api, token="1:wrong"), exploding(), poll_timeout=0.2)
    with pytest.raises(InvalidToken):
        await bot.start()
    await bot.stop()  # safe after a failed start


def test_no_token_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="token"):
        TelegramBot(TelegramSettings(), exploding())


def test_file_url_follows_the_base_url() -> None:
    assert file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url("http://127.0.0.1:81/bot/") == "http://127.0.0.1:81/file/bot"


async def test_the_token_never_reaches_the_logs(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, httpx included if it were let through
    bot = TelegramBot(settings_for(api), exploding(), poll_timeout=0.2, request_timeout=2)
    await bot.start()
    try:
        await ask(api, ALLOWED, "/help")
        await ask(api, ALLOWED, "/status")  # an error, with its traceback
        api.outage(0.3)
        with pytest.raises(TransientError):  # its error must not carry the token either
            await bot.transport.send(ALLOWED, "x")
    finally:
        await bot.stop()
    assert len(caplog.records) > 10
    secret = api.token.split(":")[1]
    assert not [r.name for r in caplog.records if secret in r.getMessage()]
    assert secret not in caplog.text  # tracebacks included


async def test_transport_maps_telegram_failures(tg: TelegramBot, api: FakeBotApi) -> None:
    api.fail_next(1, status=429, retry_after=0.5)
    with pytest.raises(RetryLater) as flood:
        await tg.transport.send(ALLOWED, "x")
    assert flood.value.seconds == 0.5 and not flood.value.everyone
    api.fail_next(1, status=400, description="Bad Request: chat not found")
    with pytest.raises(ChatBlocked, match=r"(?i)chat not found"):
        await tg.transport.send(ALLOWED, "x")
    api.fail_next(1, status=403, description="Forbidden: bot was kicked from the group chat")
    with pytest.raises(ChatBlocked):
        await tg.transport.send(ALLOWED, "x")
    api.fail_next(1, status=500)
    with pytest.raises(TransientError):
        await tg.transport.send(ALLOWED, "x")
    api.fail_next(1, status=400, description="Bad Request: message is too long")
    with pytest.raises(Rejected):
        await tg.transport.send(ALLOWED, "x")
    assert api.sent == []


async def test_html_refused_by_telegram_goes_out_as_plain_text(
    tg: TelegramBot, api: FakeBotApi
) -> None:
    await tg.transport.send(ALLOWED, "<b>unclosed & raw")
    [message] = api.sent
    assert message.parse_mode is None
    assert message.text == "unclosed & raw"


async def test_start_waits_for_an_unreachable_bot_api(api: FakeBotApi) -> None:
    api.set_down(True)
    bot = TelegramBot(settings_for(api), exploding(), poll_timeout=0.2, request_timeout=2)
    starting = asyncio.create_task(bot.start(attempts=20, retry_delay=0.05))
    try:
        await api.wait_until(lambda: len(api.calls_to("getMe")) >= 2, timeout=5)
        assert not starting.done()
        api.set_down(False)
        await asyncio.wait_for(starting, 5)
        assert await ask(api, ALLOWED, "/help")
    finally:
        await bot.stop()


async def test_start_gives_up_after_its_attempts(api: FakeBotApi) -> None:
    api.set_down(True)
    bot = TelegramBot(settings_for(api), exploding(), poll_timeout=0.2)
    with pytest.raises(NetworkError):
        await bot.start(attempts=2, retry_delay=0.01)
    await bot.stop()
    assert len(api.calls_to("getMe")) == 2


def test_access_refuses_each_stranger_once_per_ttl() -> None:
    now = [0.0]
    access = Access([1, 2], refusal_ttl=10, clock=lambda: now[0])
    assert access.allows(1) and not access.allows(3)
    assert access.tell_refusal(3) and access.tell_refusal(4)
    now[0] = 9.9
    assert not access.tell_refusal(3)
    now[0] = 10.1
    assert access.tell_refusal(3)
