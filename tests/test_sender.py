"""The sender with the real python-telegram-bot against the fake Bot API: grouping, limits, retry.

Every test ends by checking the central promise: each alert's text reached its chat exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest
from botapi import FakeBotApi, parse_html, utf16_len
from clocks import LoopWatch
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.alerts import Alert
from bot.notify.sender import Sender, SenderSettings
from bot.notify.telegram_bot import TelegramTransport
from bot.notify.transport import PLAIN_MESSAGE as PLAIN
from bot.notify.transport import Extras
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
ALERT_ID = re.compile(r"#A(\d+)#")
T0 = datetime(2024, 6, 3, 9, 0, 0, tzinfo=KST)


class DeliveryDb:
    """A real Store on a SQLite file, with helpers to add alerts for chats and read states."""

    TICKER = "005930"

    def __init__(self, path: Path, busy_timeout: float = 10.0) -> None:
        url = f"sqlite:///{path}"
        upgrade(url)
        self.path = path
        self.store = Store(url, allowed_chat_ids=range(1, 100), busy_timeout=busy_timeout)
        self.aio = AsyncStore(self.store)

    def add_alert(
        self, n: int, chats: Sequence[int], second: int, text: str = "순매수 돌파"
    ) -> None:
        """Alert number ``n`` (its text carries ``#A<n>#``), fired ``second`` s after 09:00."""
        for chat in chats:
            self.store.add_watches(chat, [self.TICKER])
        seconds = 9 * 3600 + second
        tick = Tick(self.TICKER, T0.date(), "", seconds, 1, 2, 3, 4, 2, 2, 5, 6, 1)
        tick = tick._replace(hhmmss=tick.time.strftime("%H%M%S"))
        alert = Alert("rule-1", self.TICKER, tick, n, f"{text} #A{n}#", seq=n)
        assert self.store.add_alerts([alert])

    def pending(self) -> int:
        return self.store.pending_count()

    def sent_count(self) -> int:
        return self.store.delivery_counts().get("sent", 0)

    def blocked(self, chat: int) -> bool:
        return chat in self.store.blocked_chats()

    def close(self) -> None:
        self.aio.close()
        self.store.close()


def make_db(tmp_path: Path) -> DeliveryDb:
    return DeliveryDb(tmp_path / "pgmbot.db")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    request = HTTPXRequest(connect_timeout=1.0, read_timeout=1.0, connection_pool_size=16)
    async with Bot(api.token, base_url=api.base_url, request=request) as client:
        yield client


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DeliveryDb]:
    store = make_db(tmp_path)
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


def delivered(api: FakeBotApi) -> Counter[tuple[int, int]]:
    """(chat, alert number) -> how many times its text reached the chat."""
    return Counter((m.chat_id, int(n)) for m in api.sent for n in ALERT_ID.findall(m.text))


async def test_alerts_within_the_window_share_a_message(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    for n, second in enumerate([0, 0, 1, 2, 10, 11]):
        db.add_alert(n, chats=[1, 2], second=second)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    for chat in (1, 2):
        groups = [ALERT_ID.findall(m.text) for m in api.messages_for(chat)]
        assert groups == [["0", "1", "2", "3"], ["4", "5"]]
    assert set(delivered(api).values()) == {1}
    assert all(m.parse_mode == "HTML" for m in api.sent)


async def test_a_big_group_is_split_under_4096_at_alert_boundaries(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    for n in range(40):
        db.add_alert(n, chats=[5], second=0, text="큰 <금액> & " * 60)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    messages = api.messages_for(5)
    assert len(messages) > 1
    for message in messages:
        assert utf16_len(message.text) <= 4096
        assert "큰 <금액> & " in parse_html(message.text)  # escaped, and readable again
    order = [int(n) for m in messages for n in ALERT_ID.findall(m.text)]
    assert order == list(range(40))


async def test_flood_control_waits_as_told_and_delivers_once(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    api.fail_next(1, status=429, retry_after=0.3)
    db.add_alert(1, chats=[9], second=0)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    calls = api.calls_to("sendMessage")
    assert [c.status for c in calls] == [429, 200]
    [message] = api.sent
    refused_at = calls[0].at
    assert message.at - refused_at >= 0.3  # not before Telegram allowed it
    assert delivered(api) == {(9, 1): 1}


async def test_an_outage_delays_but_neither_drops_nor_duplicates(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    api.set_down(True)  # every call answers 502 Bad Gateway until set_down(False)
    for n in range(6):
        db.add_alert(n, chats=[1, 2, 3], second=n * 5)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)) as sender:

        def failed() -> int:
            return sum(c.status == 502 for c in api.calls_to("sendMessage"))

        await api.wait_until(lambda: failed() >= 9, timeout=5)  # each chat tried 3 times
        assert api.sent == []
        assert db.sent_count() == 0  # nothing marked sent while Telegram was away
        for n in range(6, 9):  # alerts keep coming during the outage
            db.add_alert(n, chats=[1, 2, 3], second=n * 5)
            sender.wake()
        api.set_down(False)
        await api.wait_until(lambda: db.pending() == 0, timeout=5)
    assert delivered(api) == {(chat, n): 1 for chat in (1, 2, 3) for n in range(9)}
    for chat in (1, 2, 3):  # in firing order
        order = [int(n) for m in api.messages_for(chat) for n in ALERT_ID.findall(m.text)]
        assert order == list(range(9))


async def test_connections_closed_mid_request_are_retried(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    api.outage(0.4, mode="close")
    db.add_alert(1, chats=[4], second=0)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0, timeout=5)
    assert delivered(api) == {(4, 1): 1}


async def test_a_blocked_chat_is_marked_and_skipped_while_others_receive(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    api.block_chat(13)
    for n in range(3):
        db.add_alert(n, chats=[13, 14], second=n * 10)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: len(api.messages_for(14)) == 3)
        await api.wait_until(lambda: db.blocked(13))
        await asyncio.sleep(0.2)  # several polls: the blocked chat is not tried again
    assert len([c for c in api.calls_to("sendMessage") if c.params["chat_id"] == 13]) == 1
    assert delivered(api) == {(14, n): 1 for n in range(3)}


async def test_pending_deliveries_are_sent_after_a_restart(
    api: FakeBotApi, bot: Bot, db: DeliveryDb, tmp_path: Path
) -> None:
    api.set_down(True)
    for n in range(4):
        db.add_alert(n, chats=[21], second=n * 10)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: len(api.calls_to("sendMessage")) >= 2)
    assert db.pending() == 4
    db.close()
    api.set_down(False)
    reopened = make_db(tmp_path)  # a new process: same file, new store, new sender
    try:
        async with running(Sender(reopened.aio, TelegramTransport(bot), FAST)):
            await api.wait_until(lambda: reopened.pending() == 0, timeout=5)
    finally:
        reopened.close()
    assert delivered(api) == {(21, n): 1 for n in range(4)}


class Timed:
    """Notes when each send starts (after the sender's pacing), then sends for real."""

    def __init__(self, inner: TelegramTransport) -> None:
        self.inner = inner
        self.starts: list[tuple[int, float]] = []

    async def alive(self) -> bool:
        return await self.inner.alive()

    async def send(
        self, chat_id: int, html: str, *, reply_to: int | None = None, extras: Extras = PLAIN
    ) -> int:
        self.starts.append((chat_id, time.monotonic()))
        return await self.inner.send(chat_id, html, reply_to=reply_to, extras=extras)


async def test_global_pace_and_per_chat_interval_are_kept(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    settings = SenderSettings(
        group_window=0, poll_interval=0.05, chat_interval=0.1, global_rate=3.0, backoff_min=0.05
    )
    for n in range(3):
        db.add_alert(n, chats=[1, 2, 3, 4], second=n * 10)
    timed = Timed(TelegramTransport(bot))
    async with running(Sender(db.aio, timed, settings)):
        await api.wait_until(lambda: db.pending() == 0, timeout=10)
    assert len(api.sent) == 12
    # Causal lower bounds (the sender waited), not speed targets: never more than 3 sends in
    # one second, and the first three went together (nobody waits under the limit).
    starts = [at for _, at in timed.starts]
    assert all(starts[i + 3] - starts[i] >= 1.0 - 0.002 for i in range(len(starts) - 3))
    assert starts[2] - starts[0] < 0.5
    for chat in (1, 2, 3, 4):
        # The next message to a chat leaves only after Telegram confirmed the last one + 0.1 s.
        at = [m.at for m in api.messages_for(chat)]
        assert all(b - a >= 0.1 for a, b in itertools.pairwise(at))


async def test_close_waits_for_the_send_in_flight_and_marks_it(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    class Slow:
        """Telegram answers late: close() must wait for it, then the row is marked."""

        def __init__(self) -> None:
            self.started = asyncio.Event()

        async def alive(self) -> bool:
            return True

        async def send(
            self, chat_id: int, html: str, *, reply_to: int | None = None, extras: Extras = PLAIN
        ) -> int:
            self.started.set()
            await asyncio.sleep(0.2)
            return await TelegramTransport(bot).send(
                chat_id, html, reply_to=reply_to, extras=extras
            )

    slow = Slow()
    db.add_alert(1, chats=[8], second=0)
    sender = Sender(db.aio, slow, FAST)
    task = asyncio.create_task(sender.run())
    await asyncio.wait_for(slow.started.wait(), 2)
    await sender.close()
    assert task.done()
    assert db.pending() == 0 and delivered(api) == {(8, 1): 1}


async def test_a_message_telegram_refuses_fails_alone_and_the_chat_goes_on(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    api.fail_next(1, status=400, description="Bad Request: message is too long")
    for n in range(3):
        db.add_alert(n, chats=[6], second=n * 10)
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0)
    assert delivered(api) == {(6, 1): 1, (6, 2): 1}
    assert db.store.delivery_counts() == {"failed": 1, "sent": 2}


async def test_a_locked_database_neither_resends_nor_stalls_the_loop(
    api: FakeBotApi, bot: Bot, tmp_path: Path
) -> None:
    """Another process holds the write lock while alerts are pending: each goes out once (the
    confirmation is kept until it can be recorded), and the loop never waits for the lock."""
    db = DeliveryDb(tmp_path / "locked.db", busy_timeout=0.3)
    for n in range(4):
        db.add_alert(n, chats=[31, 32], second=n * 10)
    holder = sqlite3.connect(db.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held from another connection
    try:
        with LoopWatch(0.005) as watch:
            async with running(Sender(db.aio, TelegramTransport(bot), FAST)) as sender:
                await api.wait_until(lambda: len(delivered(api)) == 8, timeout=10)
                await api.wait_until(lambda: sender.unrecorded == 8, timeout=10)
                await api.wait_until(lambda: sender.record_failures >= 6, timeout=10)
                assert all(count == 1 for count in delivered(api).values())
                assert sender.unrecorded == 8 and db.sent_count() == 0
                holder.execute("ROLLBACK")  # the lock goes: the records go in
                await api.wait_until(lambda: db.pending() == 0, timeout=5)
        assert watch.longest < 0.05, f"the loop stalled {watch.longest * 1000:.0f} ms"
    finally:
        holder.close()
        db.close()
    assert delivered(api) == {(chat, n): 1 for chat in (31, 32) for n in range(4)}


async def test_one_refused_alert_of_a_group_fails_alone(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    """Telegram refuses a grouped message because of one alert in it: the group is split and
    sent alert by alert, so only that one fails."""
    api.refuse_text("#A2#", "Bad Request: message is too long")
    for n in range(5):
        db.add_alert(n, chats=[41], second=0)  # one tick second: one grouped message
    async with running(Sender(db.aio, TelegramTransport(bot), FAST)):
        await api.wait_until(lambda: db.pending() == 0, timeout=5)
    assert delivered(api) == {(41, n): 1 for n in (0, 1, 3, 4)}
    assert db.store.delivery_counts() == {"failed": 1, "sent": 4}
    [failure] = db.store.failures()
    assert failure.error == "Message is too long"


async def test_a_message_that_always_fails_is_set_aside_and_the_chat_flows(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    """A message answered 500 every time, while others go through: after max_attempts it is
    set aside (failed, the admins told) and the alerts behind it are delivered."""
    api.refuse_text("#A0#", "Internal Server Error", status=500)
    told: list[str] = []
    settings = SenderSettings(
        group_window=0, poll_interval=0.02, chat_interval=0.01, global_rate=1000.0,
        backoff_min=0.01, backoff_max=0.02, max_attempts=3,
    )  # fmt: skip
    for n in range(3):
        db.add_alert(n, chats=[51], second=n * 10)
    async with running(Sender(db.aio, TelegramTransport(bot), settings, on_problem=told.append)):
        await api.wait_until(lambda: db.pending() == 0, timeout=5)
    assert delivered(api) == {(51, 1): 1, (51, 2): 1}
    assert db.store.delivery_counts() == {"failed": 1, "sent": 2}
    assert len(told) == 1 and "채팅 51에 알림을 전달하지 못했습니다" in told[0]


async def test_an_outage_sets_nothing_aside_however_long(
    api: FakeBotApi, bot: Bot, db: DeliveryDb
) -> None:
    """Every message fails (Telegram is down for everyone): no message is to blame, so none is
    set aside; all are delivered, in order, once it is back."""
    settings = SenderSettings(
        group_window=0, poll_interval=0.02, chat_interval=0.01, global_rate=1000.0,
        backoff_min=0.01, backoff_max=0.02, max_attempts=2,
    )  # fmt: skip
    api.set_down(True)
    for n in range(3):
        db.add_alert(n, chats=[61], second=n * 10)
    async with running(Sender(db.aio, TelegramTransport(bot), settings)):
        await api.wait_until(lambda: len(api.calls_to("sendMessage")) >= 12, timeout=5)
        assert db.store.delivery_counts() == {"pending": 3}
        api.set_down(False)
        await api.wait_until(lambda: db.pending() == 0, timeout=5)
    assert [int(n) for m in api.messages_for(61) for n in ALERT_ID.findall(m.text)] == [0, 1, 2]


async def test_a_hanging_bot_api_makes_a_bounded_number_of_copies(
    api: FakeBotApi, tmp_path: Path
) -> None:
    """The Bot API takes messages but answers none for a long while (it delivers them late):
    each send without an answer may be a copy, so after max_uncertain of them the alert is set
    aside rather than sent again and again."""
    db = make_db(tmp_path)
    request = HTTPXRequest(connect_timeout=1.0, read_timeout=0.1, connection_pool_size=4)
    async with Bot(api.token, base_url=api.base_url, request=request) as quick:
        api.hang(1.5)
        db.add_alert(1, chats=[71], second=0)
        sender = Sender(db.aio, TelegramTransport(quick), FAST)
        async with running(sender):
            await api.wait_until(lambda: db.pending() == 0, timeout=5)
            await api.wait_until(lambda: len(api.sent) >= 1, timeout=5)
    assert 1 <= delivered(api)[(71, 1)] <= FAST.max_uncertain
    [failure] = db.store.failures()
    assert failure.error is not None and "may have arrived" in failure.error
    db.close()
