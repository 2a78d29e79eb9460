"""Mutes and watches hold at send time: a delivery still pending when its chat mutes the rule or
the stock, or unwatches the stock, is closed as muted (kept, not deleted), never sent; one of a
chat that changed nothing still goes. A resolved event follows its alert."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from bot.alerts import Alert
from bot.store import Store, upgrade
from bot.store.facade import AsyncStore
from bot.store.models import DeliveryRow
from bot.ticks import Tick

DAY = date(2024, 6, 3)
NOW = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)  # 09:30 KST
HOUR = timedelta(hours=1)


def alert(rule: str = "net-buy", ticker: str = "005930", second: int = 0) -> Alert:
    seconds = 9 * 3600 + 22 * 60 + second
    hhmmss = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    tick = Tick(ticker, DAY, hhmmss, seconds, 10, 20, 30, 40, 20, 5, -7, 8, 15)
    return Alert(rule, ticker, tick, 1, f"{rule} {ticker} {second}", seq=second)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'pgmbot.db'}"
    upgrade(url)
    return url


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url, allowed_chat_ids=(1, 2))
    for chat in (1, 2):
        store.add_watches(chat, ["005930", "000660"])
    yield store
    store.close()


def states(url: str) -> list[tuple[int, str]]:
    d = DeliveryRow.__table__.c
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = select(d.chat_id, d.state).order_by(d.alert_id, d.chat_id)
            return [(chat, state) for chat, state in conn.execute(query)]
    finally:
        engine.dispose()


def test_a_stock_muted_after_the_alert_was_stored_is_not_sent(store: Store, url: str) -> None:
    store.add_alerts([alert()], NOW)
    store.mute(1, "005930", NOW + HOUR, kind="ticker", now=NOW)
    assert store.due_deliveries(1, 10, NOW) == []
    assert [d.chat_id for d in store.due_deliveries(2, 10, NOW)] == [2]  # chat 2 muted nothing
    assert states(url) == [(1, "muted"), (2, "pending")]
    assert store.delivery_counts() == {"muted": 1, "pending": 1}


def test_a_rule_muted_after_the_alert_was_stored_is_not_sent(store: Store, url: str) -> None:
    store.add_alerts([alert("net-buy"), alert("surge", second=1)], NOW)
    store.mute(1, "net-buy", NOW + HOUR, kind="rule", now=NOW)
    assert [d.rule for d in store.due_deliveries(1, 10, NOW)] == ["surge"]
    assert states(url) == [(1, "muted"), (2, "pending"), (1, "pending"), (2, "pending")]


def test_an_unwatched_stock_is_not_sent(store: Store, url: str) -> None:
    store.add_alerts([alert("net-buy", "005930"), alert("net-buy", "000660", 1)], NOW)
    store.remove_watches(1, ["005930"])
    assert [d.ticker for d in store.due_deliveries(1, 10, NOW)] == ["000660"]
    assert states(url)[:2] == [(1, "muted"), (2, "pending")]


def test_a_mute_that_ended_lets_the_alert_go(store: Store) -> None:
    store.add_alerts([alert()], NOW)
    store.mute(1, "005930", NOW + HOUR, kind="ticker", now=NOW)
    later = NOW + 2 * HOUR
    assert [d.chat_id for d in store.due_deliveries(1, 10, later)] == [1]


def test_a_resolved_event_of_a_muted_alert_is_not_sent(store: Store, url: str) -> None:
    fired = alert()
    end = Alert(
        fired.rule, fired.ticker, fired.tick, 0, "해제", seq=0, kind="resolved", resolves=fired
    )
    store.add_alerts([fired, end], NOW)  # both pending for chats 1 and 2
    store.mute(1, "005930", NOW + HOUR, kind="ticker", now=NOW)
    assert store.due_deliveries(1, 1, NOW) == []  # looks at the alert only: muted
    store.unmute(1, now=NOW)
    # The mute is over, but the chat never saw the alert: its end is not news to it either.
    assert store.due_deliveries(1, 10, NOW) == []
    assert [d.kind for d in store.due_deliveries(2, 10, NOW)] == ["fired", "resolved"]
    assert states(url) == [(1, "muted"), (2, "pending"), (1, "muted"), (2, "pending")]


def test_a_resolved_event_stored_after_its_alert_was_muted_goes_nowhere(
    store: Store, url: str
) -> None:
    fired = alert()
    store.add_alerts([fired], NOW)
    store.mute(1, "005930", NOW + HOUR, kind="ticker", now=NOW)
    assert store.due_deliveries(1, 10, NOW) == []
    store.unmute(1, now=NOW)
    end = Alert(
        fired.rule, fired.ticker, fired.tick, 0, "해제", seq=0, kind="resolved", resolves=fired
    )
    store.add_alerts([end], NOW)
    assert store.due_deliveries(1, 10, NOW) == []
    assert states(url) == [(1, "muted"), (2, "pending"), (2, "pending")]


async def test_the_async_store_closes_held_rows_on_its_write_thread(
    store: Store, url: str
) -> None:
    store.add_alerts([alert(), alert("net-buy", "000660", 1)], NOW)
    store.mute(1, "000660", NOW + HOUR, kind="ticker", now=NOW)
    aio = AsyncStore(store)
    try:
        due = await aio.due_deliveries(1, 10, NOW)
    finally:
        aio.close()
    assert [d.ticker for d in due] == ["005930"]
    assert (1, "muted") in states(url)
