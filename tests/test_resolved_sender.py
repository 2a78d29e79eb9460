"""Resolved events on the wire: the real sender and python-telegram-bot against the loopback Bot
API. Each resolved event arrives alone, as a reply to the message that carried its alert in that
chat, after it, once (also across a restart)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botapi import FakeBotApi, SentMessage
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.alerts import Alert
from bot.notify.sender import Sender, SenderSettings
from bot.notify.telegram_bot import TelegramTransport
from bot.rebuild import store_missing
from bot.store import Store, upgrade
from bot.store.facade import AsyncStore
from bot.ticks import KST, Tick

FAST = SenderSettings(
    group_window=2.0,
    poll_interval=0.05,
    chat_interval=0.02,
    global_rate=1000.0,
    backoff_min=0.05,
    backoff_max=0.2,
    close_timeout=1.0,
)
TICKER = "005930"
T0 = datetime(2024, 6, 3, 9, 0, 0, tzinfo=KST)
TAG = re.compile(r"#([AR]\d+)#")


def tick(second: int) -> Tick:
    seconds = 9 * 3600 + second
    raw = Tick(TICKER, T0.date(), "", seconds, 1, 2, 3, 4, 2, 9_720_000_000, 5, 6, 1)
    return raw._replace(hhmmss=raw.time.strftime("%H%M%S"))


def fired(n: int, second: int) -> Alert:
    """Alert ``A<n>``: its text carries ``#A<n>#``."""
    text = f"순매수 100억 돌파 #A{n}#"
    return Alert("net-buy", TICKER, tick(second), 10_000_000_000, text, seq=n)


def resolved(alert: Alert, second: int) -> Alert:
    """The resolved event of ``alert`` (``#R<n>#``, for alert ``A<n>``)."""
    n = alert.seq
    return Alert(
        alert.rule,
        TICKER,
        tick(second),
        9_720_000_000,
        f"해제 · 삼성전자 순매수 100억 이상 → 현재 97.2억 #R{n}#",
        seq=n,
        kind="resolved",
        resolves=alert,
    )


class Db:
    """A real Store on a SQLite file; ``reopen()`` is what a restart does."""

    def __init__(self, path: Path, chats: tuple[int, ...]) -> None:
        self.url = f"sqlite:///{path}"
        self.path = path
        upgrade(self.url)
        self.store = Store(self.url, allowed_chat_ids=range(1, 100))
        for chat in chats:
            self.store.add_watches(chat, [TICKER])
        self.aio = AsyncStore(self.store)

    def add(self, *alerts: Alert) -> None:
        assert self.store.add_alerts(list(alerts))

    def pending(self) -> int:
        return self.store.pending_count()

    def reopen(self) -> None:
        self.close()
        self.store = Store(self.url, allowed_chat_ids=range(1, 100))
        self.aio = AsyncStore(self.store)

    def close(self) -> None:
        self.aio.close()
        self.store.close()


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    request = HTTPXRequest(connect_timeout=1.0, read_timeout=1.0, connection_pool_size=16)
    async with Bot(api.token, base_url=api.base_url, request=request) as client:
        yield client


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    store = Db(tmp_path / "pgmbot.db", chats=(1, 2))
    yield store
    store.close()


@asynccontextmanager
async def running(sender: Sender) -> AsyncIterator[Sender]:
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        await sender.close()
        await asyncio.wait_for(task, 5)


def tagged(api: FakeBotApi, chat: int) -> list[tuple[list[str], int | None, int]]:
    """Per message to the chat: the tags it carries, the message it replies to, its id."""
    return [(TAG.findall(m.text), m.reply_to, m.message_id) for m in api.messages_for(chat)]


def message_with(api: FakeBotApi, chat: int, tag: str) -> SentMessage:
    (found,) = [m for m in api.messages_for(chat) if f"#{tag}#" in m.text]
    return found


async def test_a_resolved_event_replies_to_its_alerts_message_in_each_chat(
    api: FakeBotApi, bot: Bot, db: Db
) -> None:
    first, other = fired(0, 0), fired(1, 1)
    db.add(first, other, resolved(first, 1))  # one second apart: the two alerts share a message
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    for chat in (1, 2):
        (alerts, none, alerts_id), (event, reply_to, _) = tagged(api, chat)
        assert (alerts, none) == (["A0", "A1"], None)
        assert (event, reply_to) == (["R0"], alerts_id)  # alone, and the pair shows
    assert message_with(api, 1, "A0").message_id != message_with(api, 2, "A0").message_id
    text = message_with(api, 1, "R0").text
    header = text.splitlines()[0]  # (with the date: the tick is not of today)
    assert header.startswith("✅ <b>005930</b> ")
    assert header.endswith(" 09:00:01 KST · <code>net-buy</code> · 해제")
    assert "해제 · 삼성전자 순매수 100억 이상 → 현재 97.2억" in text


async def test_a_resolved_event_waits_for_its_alert_and_order_holds(
    api: FakeBotApi, bot: Bot, db: Db
) -> None:
    """The chat fails for a while with the alert, its resolved event and a newer alert pending:
    once it heals they arrive in that order, the event replying to the alert."""
    first = fired(0, 0)
    db.add(first, resolved(first, 5), fired(1, 6))
    api.fail_chat(1)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: len(api.messages_for(2)) == 3)
        assert api.messages_for(1) == []
        await api.wait_until(lambda: len(api.calls_to("sendMessage")) >= 6)
        api.heal_chat(1)
        await api.wait_until(lambda: db.pending() == 0)
    for chat in (1, 2):
        (a0, _, a0_id), (r0, reply_to, _), (a1, later_reply, _) = tagged(api, chat)
        assert (a0, r0, a1) == (["A0"], ["R0"], ["A1"])
        assert reply_to == a0_id and later_reply is None


async def test_an_alert_set_aside_leaves_its_resolved_event_a_plain_message(
    api: FakeBotApi, bot: Bot, db: Db
) -> None:
    api.refuse_text("#A0#", "Bad Request: message is too long")
    first = fired(0, 0)
    db.add(first, resolved(first, 5))
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    assert [(tags, reply_to) for tags, reply_to, _ in tagged(api, 1)] == [(["R0"], None)]
    assert db.store.delivery_counts() == {"failed": 2, "sent": 2}


async def test_a_deleted_alert_message_does_not_hold_its_resolved_event_back(
    api: FakeBotApi, bot: Bot, db: Db
) -> None:
    first = fired(0, 0)
    db.add(first)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
        api.delete_message(1, message_with(api, 1, "A0").message_id)  # the user deleted it
        db.add(resolved(first, 5))
        await api.wait_until(lambda: db.pending() == 0)
    assert [(tags, reply_to) for tags, reply_to, _ in tagged(api, 1)][1] == (["R0"], None)
    assert tagged(api, 2)[1][1] == message_with(api, 2, "A0").message_id


async def test_the_alerts_message_id_survives_a_restart(api: FakeBotApi, bot: Bot, db: Db) -> None:
    """The alert went out, then the bot died before its resolved event was stored: after the
    restart the rebuild stores the event, and it replies to the message sent before; a second
    restart sends nothing again."""
    first = fired(0, 0)
    db.add(first)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    for _ in range(2):
        db.reopen()
        now = datetime.now(UTC)
        replayed = [(fired(0, 0), now - timedelta(seconds=2)), (resolved(fired(0, 0), 5), now)]
        store_missing(db.store, replayed, now)
        async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
            await api.wait_until(lambda: db.pending() == 0)
            await asyncio.sleep(0.1)  # a look or two more: nothing is sent again
    for chat in (1, 2):
        (a0, _, a0_id), (r0, reply_to, _) = tagged(api, chat)
        assert (a0, r0, reply_to) == (["A0"], ["R0"], a0_id)


async def test_a_confirmation_not_recorded_yet_still_gives_the_reply(
    api: FakeBotApi, bot: Bot, tmp_path: Path
) -> None:
    """Another process holds the write lock: the alert's confirmation (and message id) waits
    in memory, and its resolved event replies to it all the same, each sent once."""
    db = Db(tmp_path / "locked.db", chats=(1,))
    db.store.close()
    db.aio.close()
    db.store = Store(db.url, allowed_chat_ids=[1], busy_timeout=0.3)
    db.aio = AsyncStore(db.store)
    first = fired(0, 0)
    db.add(first, resolved(first, 5))
    holder = sqlite3.connect(db.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        async with running(Sender(db.aio, TelegramTransport(bot), FAST)) as sender:
            await api.wait_until(lambda: sender.unrecorded == 2, timeout=10)
            assert len(api.messages_for(1)) == 2 and db.pending() == 2
            holder.execute("ROLLBACK")
            await api.wait_until(lambda: db.pending() == 0, timeout=5)
    finally:
        holder.close()
        db.close()
    (a0, _, a0_id), (r0, reply_to, _) = tagged(api, 1)
    assert (a0, r0, reply_to) == (["A0"], ["R0"], a0_id)


async def test_a_refused_resolved_event_fails_alone_and_the_chat_goes_on(
    api: FakeBotApi, bot: Bot, db: Db
) -> None:
    api.refuse_text("#R0#", "Bad Request: message is too long")
    first = fired(0, 0)
    db.add(first, resolved(first, 5), fired(1, 9))
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    assert [tags for tags, _, _ in tagged(api, 1)] == [["A0"], ["A1"]]
    assert db.store.delivery_counts() == {"failed": 2, "sent": 4}
