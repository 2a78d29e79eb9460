"""/chart, /now and /top end to end: Telegram (real PTB, the loopback Bot API) -> BotService ->
ChartService -> the series, the recordings on disk, the chart worker; watches in SQLite."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest
import test_telegram_commands as commands_test
from botapi import FakeBotApi, SentMessage, parse_html
from test_series import tick, write
from test_telegram_commands import ADMIN, CHAT, Rules

from bot.charts.digest_store import AsyncDigests, DigestStore
from bot.charts.series import Series
from bot.charts.service import ChartService
from bot.charts.worker import ChartWorker
from bot.config import TelegramSettings
from bot.engine.rule_types import RULE, RuleSet
from bot.kis.feed import Feed
from bot.live_rules import LoadedRules
from bot.market.names import Directory, Listing, Names
from bot.notify.telegram_bot import TelegramBot
from bot.service import BotService
from bot.store import Store, upgrade
from bot.store.facade import AsyncStore

pytestmark = pytest.mark.filterwarnings("error:.*missing from font")

TODAY = date(2026, 11, 24)
PAST = date(2026, 11, 23)
EOK = 100_000_000
RULES = LoadedRules(
    RuleSet(
        (
            RULE.validate_python(
                {"id": "up", "type": "threshold", "field": "NTBY_TR_PBMN", "crosses_above": "5억"}
            ),
        )
    )
)


def today_series() -> Series:
    """005930 climbs to 12억, 000660 to 30억, 373220 sinks to -4억; 207940 has nothing."""
    series = Series()
    for minute in range(9 * 60, 10 * 60 + 1):
        step = minute - 9 * 60
        series.on_ticks(
            [
                tick("005930", minute * 60, step * EOK // 5, day=TODAY),
                tick("000660", minute * 60, step * EOK // 2, day=TODAY),
                tick("373220", minute * 60, -step * EOK // 15, day=TODAY),
            ]
        )
    return series


sim = commands_test.sim  # the KIS simulator and the real Feed on it, as the command tests use
feed = commands_test.feed


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'pgmbot.db'}"
    upgrade(url)
    db = Store(url, allowed_chat_ids=[CHAT, ADMIN])
    yield db
    db.close()


@pytest.fixture
async def tg(
    api: FakeBotApi, store: Store, feed: Feed, tmp_path: Path
) -> AsyncIterator[TelegramBot]:
    records = tmp_path / "recordings"
    past = records / f"{PAST}.tsv"
    write(past, [tick("005930", 9 * 3600 + i * 60, i * EOK, day=PAST) for i in range(30)])
    (records / f"{PAST}.tsv.gz").write_bytes(gzip.compress(past.read_bytes()))
    past.unlink()
    settings = TelegramSettings(
        token=api.token, base_url=api.base_url, allowed_chat_ids=[CHAT], admin_chat_ids=[ADMIN]
    )
    async_store = AsyncStore(store)
    service = BotService(
        async_store, feed, Rules(), allowed_chat_ids=[CHAT], admin_chat_ids=[ADMIN]
    )
    worker = ChartWorker(processes=False)
    service.charts = ChartService(
        today_series(),
        RULES,
        async_store,
        worker,
        record_dir=records,
        names=Names(Directory([Listing("000660", "SK하이닉스", "KOSPI")])),
        today=lambda: TODAY,
    )
    service.charts.digests = AsyncDigests(DigestStore(store), async_store.write_thread)
    bot = TelegramBot(settings, service, poll_timeout=0.2, request_timeout=5)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
        worker.close()


async def reply_to(api: FakeBotApi, text: str) -> SentMessage:
    start = len(api.sent)
    api.push_command(CHAT, text)
    return await api.wait_for_message(lambda m: m.chat_id == CHAT, 20, start=start)


async def test_chart_arrives_as_a_photo(tg: TelegramBot, api: FakeBotApi) -> None:
    reply = await reply_to(api, "/chart 005930")
    assert reply.photo is not None and reply.photo.startswith(b"\x89PNG\r\n\x1a\n")
    assert parse_html(reply.text) == "005930 프로그램 매매 · 2026-11-24"


async def test_chart_of_a_past_day_is_drawn_from_its_gzipped_recording(
    tg: TelegramBot, api: FakeBotApi
) -> None:
    reply = await reply_to(api, "/chart 005930 20261123")
    assert reply.photo is not None
    assert parse_html(reply.text) == "005930 프로그램 매매 · 2026-11-23"


async def test_chart_without_data_says_so_in_words(tg: TelegramBot, api: FakeBotApi) -> None:
    reply = await reply_to(api, "/chart 207940")
    assert reply.photo is None
    assert parse_html(reply.text) == "207940: 2026-11-24의 프로그램 매매 기록이 없습니다."
    reply = await reply_to(api, "/chart 005930 2026-11-02")
    assert reply.photo is None and "기록 파일이 없습니다" in reply.text
    reply = await reply_to(api, "/chart 005930 2027-01-01")
    assert "아직 오지 않은 날" in reply.text
    reply = await reply_to(api, "/chart 삼성")
    assert "'삼성'에 맞는 종목이 없습니다. /find 로 찾아보세요." in parse_html(reply.text)


async def test_now_shows_the_latest_figures_and_their_change(
    tg: TelegramBot, api: FakeBotApi
) -> None:
    lines = parse_html((await reply_to(api, "/now 005930")).text).splitlines()
    assert lines[0] == "005930 프로그램 매매 · 10:00"
    assert lines[1] == "순매수 대금: 12억 (5분 +1억 · 30분 +6억)"
    assert lines[2] == "순매수 수량: 5주 (5분 0주 · 30분 0주)"  # unchanged all along
    assert lines[5].startswith("전체순매수호가잔량: 0주")


async def test_top_ranks_the_chats_stocks_by_net_buying(
    tg: TelegramBot, api: FakeBotApi, store: Store
) -> None:
    store.add_watches(CHAT, ["005930", "373220", "000660", "207940"])
    lines = parse_html((await reply_to(api, "/top")).text).splitlines()
    assert lines[1:] == [
        "1. SK하이닉스(000660) 30억 (30분 +15억)",
        "2. 005930 12억 (30분 +6억)",
        "3. 373220 -4억 (30분 -2억)",
        "4. 207940 오늘 기록 없음",
    ]
    assert parse_html((await reply_to(api, "/top 2")).text).splitlines()[1:] == [
        "1. SK하이닉스(000660) 30억 (30분 +15억)",
        "2. 005930 12억 (30분 +6억)",
    ]
    assert "1에서 30 사이" in (await reply_to(api, "/top 99")).text


async def test_digest_off_and_on(tg: TelegramBot, api: FakeBotApi, store: Store) -> None:
    assert "받습니다" in (await reply_to(api, "/digest")).text
    assert "받지 않습니다" in (await reply_to(api, "/digest off")).text
    assert DigestStore(store).turned_off() == {CHAT}
    assert "받습니다" in (await reply_to(api, "/digest on")).text
    assert "/digest on 또는 /digest off" in (await reply_to(api, "/digest maybe")).text


async def test_a_stock_is_named_by_its_name_too(tg: TelegramBot, api: FakeBotApi) -> None:
    reply = await reply_to(api, "/chart SK하이닉스")
    assert reply.photo is not None
    assert parse_html(reply.text) == "SK하이닉스(000660) 프로그램 매매 · 2026-11-24"
    lines = parse_html((await reply_to(api, "/now SK하이닉스")).text).splitlines()
    assert lines[0] == "SK하이닉스(000660) 프로그램 매매 · 10:00"


async def test_the_running_app_charts_what_its_feed_brought(
    tmp_path: Path, api: FakeBotApi
) -> None:
    """The whole bot (demo feed): the pipeline feeds the series, /chart is drawn in the worker
    process and arrives as a photo under the demo's tag; /now and /top read the same series."""
    from test_telegram_korean import ADMIN as ADMIN_CHAT
    from test_telegram_korean import app_settings

    from bot.app import App

    app = App(app_settings(tmp_path, api, live=False))
    await app.start()
    try:
        await api.wait_until(lambda: app.series.figures("005930") is not None, 20)
        start = len(api.sent)
        api.push_command(ADMIN_CHAT, "/chart 005930")
        reply = await api.wait_for_message(lambda m: m.photo is not None, 60, start=start)
        assert reply.photo is not None and reply.photo.startswith(b"\x89PNG")
        assert parse_html(reply.text).startswith("[모의 데이터]\n")
        start = len(api.sent)
        api.push_command(ADMIN_CHAT, "/top")
        # (The admins' notices, the demo's "the real market is closed" at night, may come too.)
        top = await api.wait_for_message(lambda m: "순매수 순위" in m.text, 20, start=start)
        assert top.chat_id == ADMIN_CHAT and "오늘 프로그램 순매수 순위" in top.text
    finally:
        await app.stop()
