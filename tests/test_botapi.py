"""The fake Bot API server, exercised with the real python-telegram-bot over loopback HTTP."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from botapi import FakeBotApi, ParseError, parse_html, utf16_len
from clocks import Clock
from hypothesis import given
from hypothesis import strategies as st
from telegram import Bot, BotCommand, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.request import HTTPXRequest


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(max_poll=0.3) as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    request = HTTPXRequest(connect_timeout=1.0, read_timeout=2.0)
    async with Bot(api.token, base_url=api.base_url, request=request) as client:
        yield client


async def test_get_me_answers_the_bot_user(bot: Bot, api: FakeBotApi) -> None:
    me = await bot.get_me()
    assert me.username == "pgmbot_test_bot"
    assert me.is_bot
    assert api.calls_to("getMe")


async def test_wrong_token_is_refused(api: FakeBotApi) -> None:
    other = Bot("999:not-the-token", base_url=api.base_url)
    with pytest.raises(InvalidToken):
        await other.initialize()
    assert not api.calls  # refused before any method ran


async def test_send_message_is_recorded_and_answered(bot: Bot, api: FakeBotApi) -> None:
    message = await bot.send_message(42, "<b>삼성전자</b> &amp; co", parse_mode=ParseMode.HTML)
    assert message.chat.id == 42
    assert message.text == "삼성전자 & co"  # Telegram answers the parsed text
    [sent] = api.sent
    assert (sent.chat_id, sent.text, sent.parse_mode) == (42, "<b>삼성전자</b> &amp; co", "HTML")
    assert sent.message_id == message.message_id
    assert api.texts_for(42) == ["<b>삼성전자</b> &amp; co"]
    assert api.messages_for(7) == []


async def test_a_reply_is_recorded_with_the_message_it_answers(bot: Bot, api: FakeBotApi) -> None:
    first = await bot.send_message(42, "alert")
    await bot.send_message(7, "elsewhere")
    reply = await bot.send_message(
        42, "resolved", reply_parameters=ReplyParameters(first.message_id)
    )
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == first.message_id
    old_style = await bot.send_message(42, "again", reply_to_message_id=first.message_id)
    assert [m.reply_to for m in api.messages_for(42)] == [None, first.message_id, first.message_id]
    assert old_style.reply_to_message is not None


async def test_a_reply_to_a_message_the_chat_lacks_is_refused_unless_allowed(
    bot: Bot, api: FakeBotApi
) -> None:
    elsewhere = await bot.send_message(7, "in another chat")
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(42, "x", reply_parameters=ReplyParameters(elsewhere.message_id))
    mine = await bot.send_message(42, "alert")
    api.delete_message(42, mine.message_id)  # the user deleted it
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(42, "x", reply_parameters=ReplyParameters(mine.message_id))
    anyway = ReplyParameters(mine.message_id, allow_sending_without_reply=True)
    sent = await bot.send_message(42, "resolved", reply_parameters=anyway)
    assert sent.reply_to_message is None
    assert api.messages_for(42)[-1].reply_to is None


@pytest.mark.parametrize("text", ["<b>&</b>", "a < b", "<script>x</script>", "<b>open", "x</i>"])
async def test_bad_html_is_refused_like_telegram(bot: Bot, api: FakeBotApi, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(1, text, parse_mode=ParseMode.HTML)
    assert api.sent == []
    # Without a parse mode the same text is plain and goes through.
    await bot.send_message(1, text)
    assert api.texts_for(1) == [text]


async def test_text_over_4096_is_refused(bot: Bot, api: FakeBotApi) -> None:
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(1, "가" * 4097)
    # Tags do not count: 4096 visible characters in bold are fine.
    await bot.send_message(1, "<b>" + "가" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    assert len(api.sent) == 1


async def test_fail_next_429_then_success(
    bot: Bot, api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # retry_after as a timedelta, no deprecation
    api.fail_next(2, status=429, retry_after=3)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(5, "hello")
        assert caught.value.retry_after == timedelta(seconds=3)
    await bot.send_message(5, "hello")
    assert api.texts_for(5) == ["hello"]
    assert [c.status for c in api.calls_to("sendMessage")] == [429, 429, 200]


async def test_fail_next_only_hits_its_method(bot: Bot, api: FakeBotApi) -> None:
    api.fail_next(1, status=500)
    await bot.get_me()  # not sendMessage: unaffected
    with pytest.raises(NetworkError):
        await bot.send_message(5, "x")
    await bot.send_message(5, "y")
    assert api.texts_for(5) == ["y"]


async def test_blocked_chat_gets_403_others_still_served(bot: Bot, api: FakeBotApi) -> None:
    api.block_chat(13)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(13, "x")
    await bot.send_message(14, "y")
    api.unblock_chat(13)
    await bot.send_message(13, "z")
    assert [(m.chat_id, m.text) for m in api.sent] == [(14, "y"), (13, "z")]


async def test_chat_not_found_is_a_bad_request(bot: Bot, api: FakeBotApi) -> None:
    api.fail_next(1, status=400)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(99, "x")


@pytest.mark.parametrize("mode", ["502", "close"])
async def test_outage_fails_every_call_until_it_ends(bot: Bot, api: FakeBotApi, mode: str) -> None:
    api.set_down(True, mode=mode)  # type: ignore[arg-type]
    assert api.down
    with pytest.raises(NetworkError):
        await bot.send_message(1, "during")
    with pytest.raises(NetworkError):
        await bot.get_me()
    api.set_down(False)
    await bot.send_message(1, "after")
    assert api.texts_for(1) == ["after"]


async def test_timed_outage_ends_by_itself(bot: Bot, api: FakeBotApi) -> None:
    api.outage(0.2)
    with pytest.raises(NetworkError):
        await bot.send_message(1, "during")
    await asyncio.sleep(0.25)
    assert not api.down
    await bot.send_message(1, "after")
    assert api.texts_for(1) == ["after"]


async def test_refused_text_gets_400_other_texts_pass(bot: Bot, api: FakeBotApi) -> None:
    api.refuse_text("000660", "Bad Request: text is odd")
    with pytest.raises(BadRequest, match=r"(?i)text is odd"):
        await bot.send_message(5, "005930 up\n000660 down")
    await bot.send_message(5, "005930 up")
    api.accept_text("000660")
    await bot.send_message(5, "000660 down")
    assert api.texts_for(5) == ["005930 up", "000660 down"]
    assert [c.status for c in api.calls_to("sendMessage")] == [400, 200, 200]


async def test_a_failing_chat_gets_500_until_healed(bot: Bot, api: FakeBotApi) -> None:
    api.fail_chat(-5)
    for _ in range(3):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(-5, "x")
    await bot.send_message(6, "other chats are served")
    api.heal_chat(-5)
    await bot.send_message(-5, "y")
    assert [(m.chat_id, m.text) for m in api.sent] == [(6, "other chats are served"), (-5, "y")]


async def test_unauthorized_spell_refuses_every_call_then_ends() -> None:
    clock = Clock()
    async with FakeBotApi(clock=clock) as api, Bot(api.token, base_url=api.base_url) as bot:
        before = len(api.calls)
        api.unauthorized(30)
        for call in (bot.get_me(), bot.get_updates(timeout=0), bot.send_message(1, "x")):
            with pytest.raises(InvalidToken):
                await call
        statuses = [c.status for c in api.calls[before:]]
        assert statuses == [401, 401, 401]  # recorded, unlike a wrong token
        clock.now += 30
        await bot.send_message(1, "after")
        assert api.texts_for(1) == ["after"]


async def test_a_hang_answers_late_and_still_delivers() -> None:
    clock = Clock()
    async with FakeBotApi(clock=clock) as api:
        request = HTTPXRequest(connect_timeout=1.0, read_timeout=0.2)
        async with Bot(api.token, base_url=api.base_url, request=request) as bot:
            api.hang(60)
            await bot.get_me()  # other methods are not held
            with pytest.raises(TimedOut):
                await bot.send_message(1, "held")  # the client gives up after 0.2 s
            assert api.hanging == 1 and api.sent == []
            clock.now += 60
            await api.wait_for_message(lambda m: m.text == "held", 2)  # carried out anyway
            await bot.send_message(1, "after")  # answered at once again
            assert api.texts_for(1) == ["held", "after"]
            await api.wait_until(lambda: api.hanging == 0, 2)


async def test_a_hang_of_every_method_holds_get_me_too(api: FakeBotApi) -> None:
    request = HTTPXRequest(connect_timeout=1.0, read_timeout=0.2)
    async with Bot(api.token, base_url=api.base_url, request=request) as bot:
        api.hang(0.5, method=None)
        with pytest.raises(TimedOut):
            await bot.get_me()


async def test_a_timed_block_ends_by_itself() -> None:
    clock = Clock()
    async with FakeBotApi(clock=clock) as api, Bot(api.token, base_url=api.base_url) as bot:
        api.block_chat(13, seconds=5)
        with pytest.raises(Forbidden):
            await bot.send_message(13, "x")
        assert api.blocked(13)
        clock.now += 5
        assert not api.blocked(13)
        await bot.send_message(13, "y")
        assert api.texts_for(13) == ["y"]


async def test_unblocking_with_a_command_makes_the_user_write_it(
    bot: Bot, api: FakeBotApi
) -> None:
    api.block_chat(13)
    with pytest.raises(Forbidden):
        await bot.send_message(13, "x")
    api.unblock_chat(13, command="/start")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.chat.id == 13
    assert update.message.text == "/start" and update.message.entities[0].type == "bot_command"
    await bot.send_message(13, "welcome back")


async def test_a_migrated_group_answers_400_with_the_new_id(bot: Bot, api: FakeBotApi) -> None:
    api.migrate_chat(-5, -1005)
    with pytest.raises(ChatMigrated) as moved:
        await bot.send_message(-5, "x")
    assert moved.value.new_chat_id == -1005
    assert api.calls_to("sendMessage")[-1].status == 400
    await bot.send_message(-1005, "y")
    assert [(m.chat_id, m.text) for m in api.sent] == [(-1005, "y")]
    old, new = [u.message for u in await bot.get_updates(timeout=0)]
    assert old is not None and (old.chat.id, old.migrate_to_chat_id) == (-5, -1005)
    assert new is not None and (new.chat.id, new.migrate_from_chat_id) == (-1005, -5)
    assert new.chat.type == "supergroup"


async def test_a_quiet_migration_queues_no_updates(api: FakeBotApi) -> None:
    api.migrate_chat(-5, -1005, announce=False)
    assert api.pending_updates == 0


async def test_get_updates_serves_commands_and_honours_offset(bot: Bot, api: FakeBotApi) -> None:
    first = api.push_command(7, "/watch 005930")
    api.push_command(8, "hello")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [first, first + 1]
    command = updates[0].message
    assert command is not None and command.chat.id == 7 and command.text == "/watch 005930"
    assert command.chat.type == "private"
    assert [(e.type, e.offset, e.length) for e in command.entities] == [("bot_command", 0, 6)]
    assert updates[1].message is not None and updates[1].message.entities == ()
    # Confirming with offset forgets them.
    assert await bot.get_updates(offset=first + 2, timeout=0) == ()
    assert api.pending_updates == 0


async def test_long_poll_returns_an_update_pushed_while_waiting(bot: Bot, api: FakeBotApi) -> None:
    api.max_poll = 5.0
    poll = asyncio.create_task(bot.get_updates(timeout=4))
    await api.wait_until(lambda: api.polls_waiting == 1, timeout=2)
    api.push_command(3, "/status")
    updates = await asyncio.wait_for(poll, 2)
    assert [u.message.text for u in updates if u.message] == ["/status"]


async def test_empty_long_poll_answers_empty_after_the_cap(bot: Bot, api: FakeBotApi) -> None:
    assert await bot.get_updates(timeout=30) == ()  # capped by max_poll, not 30 s


async def test_commands_round_trip(bot: Bot, api: FakeBotApi) -> None:
    await bot.set_my_commands([BotCommand("watch", "watch a stock"), BotCommand("list", "list")])
    assert [c["command"] for c in api.my_commands] == ["watch", "list"]
    commands = await bot.get_my_commands()
    assert [(c.command, c.description) for c in commands] == [
        ("watch", "watch a stock"),
        ("list", "list"),
    ]


async def test_wait_for_message_sees_past_and_future_messages(bot: Bot, api: FakeBotApi) -> None:
    await bot.send_message(1, "one")
    assert (await api.wait_for_message(lambda m: m.text == "one", 1)).chat_id == 1
    later = asyncio.create_task(api.wait_for_message(lambda m: m.chat_id == 2, 2))
    await asyncio.sleep(0)
    await bot.send_message(2, "two")
    assert (await later).text == "two"
    with pytest.raises(TimeoutError, match="0/1 matching"):
        await api.wait_for_message(lambda m: m.chat_id == 3, 0.1)
    with pytest.raises(TimeoutError):
        await api.wait_for_message(lambda m: m.text == "one", 0.1, start=1)


@given(st.text())
def test_escaped_text_always_parses_back(text: str) -> None:
    assert parse_html(html.escape(text)) == text
    assert parse_html(f"<b>{html.escape(text)}</b>") == text


@given(st.text(alphabet="<>&ab", min_size=1))
def test_raw_markup_characters_are_refused_or_valid(text: str) -> None:
    try:
        plain = parse_html(text)
    except ParseError:
        return
    assert "<" not in text and ">" not in text and "&" not in text
    assert plain == text


def test_utf16_length_counts_astral_characters_twice() -> None:
    assert utf16_len("가나") == 2
    assert utf16_len("📈") == 2


async def test_a_photo_upload_is_recorded_with_its_caption(api: FakeBotApi, bot: Bot) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    await bot.send_photo(7, png, caption="<b>삼성전자</b> 차트", parse_mode=ParseMode.HTML)
    [sent] = api.messages_for(7)
    assert sent.photo == png and sent.text == "<b>삼성전자</b> 차트"
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(7, b"not a picture")
    with pytest.raises(BadRequest, match="caption is too long"):
        await bot.send_photo(7, png, caption="x" * 1025)
