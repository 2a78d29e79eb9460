"""BotService and the market: /watch and /unwatch by name, /find, /list's listing, /status's line.

A real Store (SQLite file) and the real Feed against the KIS simulator, as in test_service.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from kis_helpers import Ticks, feed_on, registered

from bot.alerts import Alert
from bot.kis.feed import Feed
from bot.kis.simulator import Simulator
from bot.kis.status import SubState
from bot.market.calendar import MarketCalendar
from bot.market.names import Directory, Listing
from bot.market.texts import market_line
from bot.messages import KOREAN, Catalogue
from bot.service import BotService, CommandError
from bot.store import Store
from bot.store.facade import AsyncStore
from bot.ticks import Tick

CHAT = 11
SAMSUNG = Listing("005930", "삼성전자", "KOSPI", market_cap=4_000_000)
SAMSUNG_PREF = Listing("005935", "삼성전자우", "KOSPI", market_cap=400_000)
SAMSUNG_BIO = Listing("207940", "삼성바이오로직스", "KOSPI", market_cap=700_000)
HYNIX = Listing("000660", "SK하이닉스", "KOSPI", market_cap=1_500_000)
HALTED = Listing("123450", "거래정지기업", "KOSDAQ", halted=True, warning="투자경고")
DIRECTORY = Directory([SAMSUNG, SAMSUNG_PREF, SAMSUNG_BIO, HYNIX, HALTED])
NIGHT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # 21:00 KST, a Wednesday


class Rules:
    ids: frozenset[str] = frozenset()
    last_error: str | None = None

    def summary_lines(self) -> list[str]:
        return []


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url, allowed_chat_ids=[CHAT])
    yield store
    store.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(rate=20, seed=5) as simulator:
        yield simulator


@pytest.fixture
async def feed(sim: Simulator) -> AsyncIterator[Feed]:
    async with feed_on(sim, Ticks()) as running_feed:
        yield running_feed


def make(
    store: Store,
    feed: Feed,
    directory: Directory = DIRECTORY,
    *,
    market: MarketCalendar | None = None,
) -> BotService:
    return BotService(
        AsyncStore(store),
        feed,
        Rules(),
        allowed_chat_ids=[CHAT],
        settle_timeout=3.0,
        clock=lambda: NIGHT,
        directory=lambda: directory,
        market=market.state if market is not None else None,
    )


def said(error: CommandError | None, say: Catalogue = KOREAN) -> str:
    assert error is not None
    return say(error.key, **error.values)


async def test_watch_by_exact_name_or_unique_prefix_subscribes_the_code(
    store: Store, feed: Feed, sim: Simulator
) -> None:
    service = make(store, feed)
    results = await service.watch(CHAT, ["삼성전자", "sk하이", "005930"])
    assert [(r.ticker, r.kept, r.listing) for r in results] == [
        ("005930", True, SAMSUNG),  # exact, though 삼성전자우 starts so too
        ("000660", True, HYNIX),
    ]  # 005930 is 삼성전자 again: one result
    assert results[0].status.state is SubState.LIVE
    assert store.watches(CHAT) == ["000660", "005930"]
    assert {"005930", "000660"} <= registered(sim)


async def test_an_ambiguous_name_lists_candidates_and_unknown_words_are_refused(
    store: Store, feed: Feed
) -> None:
    service = make(store, feed)
    ambiguous, unknown, unlisted = await service.watch(CHAT, ["삼성", "없는회사", "999999"])
    assert not ambiguous.kept and ambiguous.candidates == (SAMSUNG, SAMSUNG_BIO, SAMSUNG_PREF)
    assert ambiguous.error is not None and ambiguous.error.key == "market.ambiguous"
    assert "삼성전자(005930)" in said(ambiguous.error)
    assert said(unknown.error) == "'없는회사'에 맞는 종목이 없습니다. /find 로 찾아보세요."
    assert said(unlisted.error) == "999999은(는) 상장 종목이 아닙니다."
    assert said(unlisted.error, Catalogue("en")) == "999999 is not a listed stock."
    assert store.watches(CHAT) == []


async def test_without_a_master_file_codes_alone_still_work(store: Store, feed: Feed) -> None:
    service = make(store, feed, Directory())
    code, name = await service.watch(CHAT, ["999999", "삼성전자"])
    assert code.kept and code.listing is None
    assert said(name.error) == "'삼성전자'은(는) 005930 같은 6자리 종목코드가 아닙니다."


async def test_unwatch_by_name_means_the_stock_this_chat_watches(store: Store, feed: Feed) -> None:
    service = make(store, feed)
    await service.watch(CHAT, ["207940", "000660"])
    assert await service.unwatch(CHAT, ["삼성"]) == ["207940"]  # the one 삼성 watched here
    assert await service.unwatch(CHAT, ["SK하이닉스"]) == ["000660"]
    assert service.code_of("sk하이닉스") == "000660"


async def test_alerts_mute_and_unmute_take_a_name_as_watch_does(store: Store, feed: Feed) -> None:
    service = make(store, feed)
    await service.watch(CHAT, ["005930", "000660"])
    tick = Tick("005930", NIGHT.date(), "090000", 32400, 1, 2, 3, 4, 2, 2, 5, 6, 1)
    store.add_alerts([Alert("net-buy", "005930", tick, 1, "삼성 알림", seq=1)], NIGHT)
    store.add_alerts(
        [Alert("net-buy", "000660", tick._replace(ticker="000660"), 1, "x", seq=2)], NIGHT
    )
    assert [a.message for a in await service.alerts(CHAT, "삼성전자", 10)] == ["삼성 알림"]
    assert await service.alerts(CHAT, "999999", 10) == []  # an unlisted code: its past alerts
    with pytest.raises(CommandError) as ambiguous:
        await service.alerts(CHAT, "삼성", 10)
    assert "삼성전자(005930)" in said(ambiguous.value)  # says which ones it could be
    mute = await service.mute(CHAT, "sk하이닉스", "1h")
    assert (mute.kind, mute.target) == ("ticker", "000660")
    with pytest.raises(CommandError) as again:
        await service.mute(CHAT, "삼성", "1h")
    assert again.value.key == "market.ambiguous"
    assert await service.unmute(CHAT, "SK하이닉스") == 1
    assert await service.mutes(CHAT) == []


async def test_find_and_list_show_the_listing(store: Store, feed: Feed) -> None:
    service = make(store, feed)
    found = await service.find(CHAT, "삼성")
    assert found.names_known and found.listings == [SAMSUNG, SAMSUNG_BIO, SAMSUNG_PREF]
    assert (await make(store, feed, Directory()).find(CHAT, "삼성")).names_known is False
    await service.watch(CHAT, ["123450"])
    (listed,) = await service.watch_list(CHAT)
    assert listed.listing == HALTED and listed.listing.halted


async def test_status_says_where_the_market_stands(store: Store, feed: Feed) -> None:
    calendar = MarketCalendar()
    service = make(store, feed, market=calendar)
    state = (await service.status(CHAT)).market
    assert state is not None and not state.is_open
    assert market_line(state, KOREAN) == "장 마감 · 다음 개장 12/03(목) 08:00"
    real = market_line(state, KOREAN, simulated=True)
    assert real == "실제 시장: 장 마감 · 다음 개장 12/03(목) 08:00"
    assert (await make(store, feed).status(CHAT)).market is None
