"""The Telegram bot: lifecycle, guard, errors, secrets; the real PTB against the fake API."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from botapi import FakeBotApi, SentMessage, parse_html
from telegram.error import InvalidToken

from bot.config import TelegramSettings
from bot.notify.commands import Access
from bot.notify.telegram_bot import TelegramBot, file_url
from bot.notify.transport import ChatBlocked, ChatMoved, Rejected, RetryLater, TransientError
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
    assert "비공개 봇" in refusal.text and f"<code>{STRANGER}</code>" in refusal.text
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
    assert "처리하지 못했습니다" in reply.text and "관리자에게 알렸습니다" in reply.text
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


FAST_RETRY: dict[str, float] = {"retry_min": 0.02, "retry_max": 0.1}


def fast_bot(api: FakeBotApi, **kwargs: Any) -> TelegramBot:
    """A bot that polls briefly and retries within a tenth of a second (the defaults: 1-60 s)."""
    options: dict[str, Any] = {"poll_timeout": 0.2, "request_timeout": 2, **FAST_RETRY}
    return TelegramBot(settings_for(api), exploding(), **(options | kwargs))


def statuses(api: FakeBotApi, method: str) -> list[int]:
    return [c.status for c in api.calls_to(method)]


async def test_start_returns_at_once_when_the_bot_api_is_unreachable(api: FakeBotApi) -> None:
    api.set_down(True)
    bot = fast_bot(api)
    try:
        await asyncio.wait_for(bot.start(), 1)
        assert not bot.ready
        with pytest.raises(TransientError, match="not connected"):  # alerts wait in the store
            await bot.transport.send(ALLOWED, "x")
        assert await bot.notify_admins("x") == 0
        await api.wait_until(lambda: len(api.calls_to("getMe")) >= 3)  # retried meanwhile
        assert api.sent == [] and api.my_commands == []
        api.set_down(False)
        await asyncio.wait_for(bot.wait_ready(), 5)
        assert {"help", "start"} <= {c["command"] for c in api.my_commands}
        assert await ask(api, ALLOWED, "/help")
        await bot.transport.send(ALLOWED, "now it goes")
    finally:
        await bot.stop()


async def test_a_token_refused_at_start_is_still_an_error(api: FakeBotApi) -> None:
    api.unauthorized(60)  # Telegram answers 401 to getMe: a config mistake, not an outage
    bot = fast_bot(api)
    with pytest.raises(InvalidToken):
        await bot.start()
    await bot.stop()
    assert not bot.ready


async def test_stop_while_still_connecting_is_clean(api: FakeBotApi) -> None:
    api.set_down(True)
    bot = fast_bot(api)
    await bot.start()
    await api.wait_until(lambda: len(api.calls_to("getMe")) >= 2)
    await asyncio.wait_for(bot.stop(), 5)
    await bot.stop()  # twice is fine too


async def test_stop_without_start_is_clean(api: FakeBotApi) -> None:
    await fast_bot(api).stop()


async def test_polling_resumes_after_a_spell_of_401(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = fast_bot(api)
    await bot.start()
    try:
        api.unauthorized(0.6)
        await api.wait_until(lambda: statuses(api, "getUpdates").count(401) >= 3)
        seen = len(api.sent)
        reply = await ask(api, ALLOWED, "/help")  # answered once Telegram takes the token again
        assert "/watch" in parse_html(reply.text)
        # The notice at the start of the spell met the same 401: the admins hear of it now, once.
        [notice] = await api.wait_for_count(1, lambda m: m.chat_id == ADMIN, start=seen)
        assert "401" in notice.text
        await asyncio.sleep(0.3)  # a few good polls later: still one notice
        assert len([m for m in api.sent[seen:] if m.chat_id == ADMIN]) == 1
    finally:
        await bot.stop()
    refused = [c for c in api.calls_to("getUpdates") if c.status == 401]
    gaps = [b.at - a.at for a, b in itertools.pairwise(refused)]
    assert max(gaps) < 0.1 * 1.25 + 0.2  # backoff bounded by retry_max (jitter and slack)
    assert any("telegram polling resumed" in r.getMessage() for r in caplog.records)
    assert api.token.split(":")[1] not in caplog.text


async def test_admins_hear_of_a_401_spell_at_once_when_sending_still_works(
    api: FakeBotApi,
) -> None:
    bot = fast_bot(api)
    await bot.start()
    try:
        api.fail_next(4, status=401, description="Unauthorized", method="getUpdates")
        [notice] = await api.wait_for_count(1, lambda m: m.chat_id == ADMIN)
        assert "401" in notice.text
        await api.wait_until(lambda: statuses(api, "getUpdates")[-1] == 200)
        assert await ask(api, ALLOWED, "/help")
        assert len(api.messages_for(ADMIN)) == 1  # told once per spell, not again at its end
    finally:
        await bot.stop()


async def test_stop_during_a_401_spell_is_clean(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    bot = fast_bot(api)
    await bot.start()
    api.unauthorized(60)
    await api.wait_until(lambda: statuses(api, "getUpdates").count(401) >= 2)
    await asyncio.wait_for(bot.stop(), 5)  # PTB's own updater re-raised InvalidToken here
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_polling_outlives_an_outage_and_flood_control(api: FakeBotApi) -> None:
    bot = fast_bot(api)
    await bot.start()
    try:
        api.outage(0.3, mode="close")
        await asyncio.sleep(0.4)
        api.fail_next(1, status=429, retry_after=0.1, method="getUpdates")
        conflict = "Conflict: terminated by other getUpdates request"
        api.fail_next(2, status=409, description=conflict, method="getUpdates")
        assert await ask(api, ALLOWED, "/help")
    finally:
        await bot.stop()


async def test_a_command_is_answered_once_across_a_restart(api: FakeBotApi) -> None:
    for text in ("/help", "/start"):
        bot = fast_bot(api)
        await bot.start()
        try:
            await ask(api, ALLOWED, text)
        finally:
            await bot.stop()
    assert len(api.messages_for(ALLOWED)) == 2
    assert api.pending_updates == 0


class Moves:
    """The (old, new) pairs the migration hook was called with."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    async def hook(self, old: int, new: int) -> None:
        self.seen.append((old, new))


async def test_a_send_to_a_migrated_group_raises_chat_moved_and_calls_the_hook(
    api: FakeBotApi,
) -> None:
    moves = Moves()

    bot = fast_bot(api, on_migrate=moves.hook)
    await bot.start()
    try:
        api.migrate_chat(-5, -1005, announce=False)
        for _ in range(2):
            with pytest.raises(ChatMoved) as moved:
                await bot.transport.send(-5, "<b>alert</b>")
            assert moved.value.new_chat_id == -1005
            assert isinstance(moved.value, ChatBlocked)  # a sender unaware of it stops sending
        assert moves.seen == [(-5, -1005)]  # once per move
        await bot.transport.send(moved.value.new_chat_id, "<b>alert</b>")
        assert api.texts_for(-1005) == ["<b>alert</b>"]
    finally:
        await bot.stop()


async def test_the_service_messages_of_a_migration_call_the_hook_once(api: FakeBotApi) -> None:
    moves = Moves()

    bot = fast_bot(api, on_migrate=moves.hook)
    await bot.start()
    try:
        api.migrate_chat(-6, -1006)  # two updates: migrate_to in -6, migrate_from in -1006
        await api.wait_until(lambda: api.pending_updates == 0 and bool(moves.seen))
        assert await ask(api, ALLOWED, "/help")  # handled in order: both came before
        assert moves.seen == [(-6, -1006)]
    finally:
        await bot.stop()


async def test_a_failing_migration_hook_is_logged_and_called_again(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[int, int]] = []

    async def on_migrate(old: int, new: int) -> None:
        calls.append((old, new))
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    bot = fast_bot(api, on_migrate=on_migrate)
    await bot.start()
    try:
        api.migrate_chat(-5, -1005, announce=False)
        for _ in range(3):
            with pytest.raises(ChatMoved):
                await bot.transport.send(-5, "x")
        assert calls == [(-5, -1005), (-5, -1005)]  # failed, then done; not a third time
        assert any("chat migration hook failed" in r.getMessage() for r in caplog.records)
    finally:
        await bot.stop()


async def test_an_admin_group_that_migrated_still_gets_notices(api: FakeBotApi) -> None:
    moves = Moves()

    settings = TelegramSettings(token=api.token, base_url=api.base_url, admin_chat_ids=[-7])
    bot = TelegramBot(settings, exploding(), on_migrate=moves.hook, poll_timeout=0.2)
    await bot.start()
    try:
        api.migrate_chat(-7, -1007, announce=False)
        assert await bot.notify_admins("rules reloaded") == 1
        assert api.texts_for(-1007) == ["rules reloaded"]
        assert moves.seen == [(-7, -1007)]
    finally:
        await bot.stop()


def test_access_refuses_each_stranger_once_per_ttl() -> None:
    now = [0.0]
    access = Access([1, 2], refusal_ttl=10, clock=lambda: now[0])
    assert access.allows(1) and not access.allows(3)
    assert access.tell_refusal(3) and access.tell_refusal(4)
    now[0] = 9.9
    assert not access.tell_refusal(3)
    now[0] = 10.1
    assert access.tell_refusal(3)
