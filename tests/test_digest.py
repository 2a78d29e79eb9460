"""The daily digest: once per trading day and slot, never on a holiday, through its outbox so a
restart neither loses nor repeats it. Real parts: SQLite, python-telegram-bot against the
loopback Bot API; the clock is the test's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from botapi import FakeBotApi, SentMessage, parse_html
from telegram import Bot
from telegram.request import HTTPXRequest
from test_series import tick
from test_telegram_charts import RULES, TODAY, today_series

from bot.alerts import Alert
from bot.charts.digest import Digests
from bot.charts.digest_store import AsyncDigests, DigestStore
from bot.charts.service import ChartService
from bot.charts.settings import DigestSettings
from bot.charts.worker import ChartWorker
from bot.notify.telegram_bot import TelegramTransport
from bot.store import Store, upgrade
from bot.store.facade import AsyncStore
from bot.ticks import KST

CHATS = (1, 2, 3)
HOLIDAY = TODAY + timedelta(days=1)  # a Wednesday the market is closed


class Wall:
    """The wall clock, moved by the test; sleeping moves it instead of waiting."""

    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def kst(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), KST).astimezone(UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'pgmbot.db'}"
    upgrade(url)
    db = Store(url, allowed_chat_ids=CHATS)
    db.add_watches(1, ["005930", "000660"])
    db.add_watches(2, ["373220"])
    db.add_watches(3, ["207940"])  # nothing today: no digest
    yield db
    db.close()


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    request = HTTPXRequest(connect_timeout=1.0, read_timeout=2.0)
    async with Bot(api.token, base_url=api.base_url, request=request) as client:
        yield client


def digests_of(store: Store, bot: Bot, wall: Wall, settings: DigestSettings) -> Digests:
    """A bot's digests, as a (re)started bot makes them: fresh objects on the same database."""
    aio = AsyncStore(store)
    series = today_series()
    for n, rule in enumerate(["up", "up", "flip"]):  # the day's alerts, as the pipeline hands them
        fired = tick("005930", 9 * 3600 + n, 1, day=TODAY)
        series.on_alerts([Alert(rule, "005930", fired, 1, "")])
    charts = ChartService(series, RULES, aio, ChartWorker(processes=False), today=lambda: TODAY)
    return Digests(
        settings,
        AsyncDigests(DigestStore(store), aio.write_thread),
        charts,
        TelegramTransport(bot),
        chats=lambda: _chats(),
        watches=aio.watches,
        is_trading_day=lambda day: day != HOLIDAY and day.weekday() < 5,
        clock=wall,
        sleep=wall.sleep,
    )


def texts(api: FakeBotApi) -> list[SentMessage]:
    return [m for m in api.sent if m.photo is None]


async def _chats() -> set[int]:
    return set(CHATS)


async def test_the_digest_goes_out_once_per_trading_day_and_slot(
    api: FakeBotApi, bot: Bot, store: Store
) -> None:
    wall = Wall(kst(TODAY, "15:44"))
    digests = digests_of(store, bot, wall, DigestSettings(after="20:05"))
    await digests.tick()
    assert api.sent == []  # not yet
    wall.now = kst(TODAY, "15:45")
    for _ in range(3):
        await digests.tick()
    assert sorted(m.chat_id for m in texts(api)) == [1, 2]  # chat 3's stock has nothing today
    [one] = [m for m in texts(api) if m.chat_id == 1]
    [picture] = [m for m in api.messages_for(1) if m.photo is not None]  # the top curves
    assert picture.photo is not None and picture.photo.startswith(b"\x89PNG")
    assert parse_html(one.text).splitlines() == [
        "📊 2026-11-24 정규장 마감 프로그램 매매 요약",
        "1. 000660 30억 (30분 +15억)",
        "2. 005930 12억 (30분 +6억)",
        "",
        "오늘의 알림 (규칙별):",
        "• up 2건",
        "• flip 1건",
    ]
    assert "오늘은 알림이 없었습니다." in api.messages_for(2)[0].text
    wall.now = kst(TODAY, "20:05")
    await digests.tick()
    await digests.tick()
    assert [m.text.splitlines()[0] for m in texts(api) if m.chat_id == 1][1] == (
        "<b>📊 2026-11-24 애프터마켓 마감 프로그램 매매 요약</b>"
    )
    assert len(texts(api)) == 4


async def test_no_digest_on_a_holiday_or_a_weekend(
    api: FakeBotApi, bot: Bot, store: Store
) -> None:
    for day in (HOLIDAY, TODAY + timedelta(days=4)):  # the holiday, then a Saturday
        wall = Wall(kst(day, "16:00"))
        digests = digests_of(store, bot, wall, DigestSettings())
        await digests.tick()
    assert api.sent == []
    assert DigestStore(store).counts() == {}


async def test_a_restart_neither_loses_nor_repeats_a_digest(
    api: FakeBotApi, bot: Bot, store: Store
) -> None:
    wall = Wall(kst(TODAY, "15:46"))
    api.set_down(True)  # Telegram is away when the digests are made: they wait, stored
    before = digests_of(store, bot, wall, DigestSettings())
    await before.tick()
    assert api.sent == [] and DigestStore(store).counts() == {"pending": 2}
    api.set_down(False)
    after = digests_of(store, bot, wall, DigestSettings())  # the bot restarted
    wall.now = kst(TODAY, "16:30")
    await after.tick()
    assert sorted(m.chat_id for m in texts(api)) == [1, 2]  # not lost
    again = digests_of(store, bot, wall, DigestSettings())  # and restarted once more
    await again.tick()
    await again.tick()
    assert len(texts(api)) == 2  # not repeated
    assert DigestStore(store).counts() == {"sent": 2}


async def test_a_chat_that_turned_the_digest_off_gets_none(
    api: FakeBotApi, bot: Bot, store: Store
) -> None:
    wall = Wall(kst(TODAY, "15:45"))
    digests = digests_of(store, bot, wall, DigestSettings())
    charts = digests.charts
    charts.digests = digests.store
    assert await charts.digest(1, "off") is False
    assert await charts.digest(1) is False
    await digests.tick()
    assert [m.chat_id for m in texts(api)] == [2]
    assert await charts.digest(1, "on") is True
