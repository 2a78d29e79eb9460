"""Resolved events in the store, on SQLite and PostgreSQL: kept with a reference to their alert,
sent to the chats that have the alert, once (across restarts), listed on their alert, pruned
with it."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select, create_engine, select

from bot.alerts import Alert
from bot.rebuild import store_missing
from bot.store import AlertWriter, Store
from bot.store.models import AlertRow, DeliveryRow
from bot.store.outbox import PendingDelivery
from bot.ticks import KST, Tick

DAY = date(2024, 6, 3)
NOW = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)  # 09:30 KST
ALLOWED = (1, 2, 3, 4, 5)


def tick(second: int, ticker: str = "005930") -> Tick:
    seconds = 9 * 3600 + 22 * 60 + second
    hhmmss = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    return Tick(ticker, DAY, hhmmss, seconds, 10, 20, 30, 40, 20, 9_720_000_000, -7, 8, 15)


def fired(second: int = 0, rule: str = "net-buy", seq: int = 0, ticker: str = "005930") -> Alert:
    return Alert(rule, ticker, tick(second, ticker), 10_000_000_000, f"fired {second}", seq=seq)


def resolved(alert: Alert | None, second: int = 30, seq: int = 0) -> Alert:
    rule, ticker = (alert.rule, alert.ticker) if alert else ("net-buy", "005930")
    return Alert(
        rule,
        ticker,
        tick(second, ticker),
        9_720_000_000,
        f"해제 · 삼성전자 순매수 100억 이상 → 현재 97.2억 ({second})",
        seq=seq,
        kind="resolved",
        resolves=alert,
    )


@pytest.fixture
def url(each_backend_url: str) -> str:
    return each_backend_url


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url, allowed_chat_ids=ALLOWED)
    for chat in ALLOWED:
        store.add_watches(chat, ["005930"])
    yield store
    store.close()


def read(url: str, query: Select[Any]) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    finally:
        engine.dispose()


def rows(url: str) -> list[tuple[int, str, int | None, str]]:
    """(id, kind, resolves_id, message) of every stored alert."""
    a = AlertRow.__table__.c
    query = select(a.id, a.kind, a.resolves_id, a.message).order_by(a.id)
    return [tuple(row) for row in read(url, query)]


def chats_of(url: str, alert_id: int) -> dict[int, str]:
    """chat -> state of the alert's deliveries."""
    d = DeliveryRow.__table__.c
    query = select(d.chat_id, d.state).where(d.alert_id == alert_id)
    return {chat: state for chat, state in read(url, query)}


def pending_of(store: Store, chat: int) -> list[PendingDelivery]:
    return store.due_deliveries(chat, 50, NOW + timedelta(hours=1))


# -- storing -----------------------------------------------------------------------------------


def test_a_resolved_event_is_stored_with_a_reference_to_its_alert(url: str, store: Store) -> None:
    alert = fired()
    ((alert_id, _), (event_id, event)) = store.insert_alerts([alert, resolved(alert)], NOW)
    assert event.kind == "resolved"
    assert rows(url) == [
        (alert_id, "fired", None, "fired 0"),
        (event_id, "resolved", alert_id, event.message),
    ]
    assert chats_of(url, event_id) == chats_of(url, alert_id) == dict.fromkeys(ALLOWED, "pending")


def test_the_alert_is_found_by_its_key_when_stored_before(url: str, store: Store) -> None:
    alert = fired()
    (alert_id,) = store.add_alerts([alert], NOW)
    # The engine's copy after a restart: an equal Alert, not the same object.
    (event_id,) = store.add_alerts([resolved(fired())], NOW)
    assert rows(url)[-1][:3] == (event_id, "resolved", alert_id)


def test_events_are_stored_in_the_engines_order(url: str, store: Store) -> None:
    """Ids are a chat's order: a resolved event keeps its place between the alerts."""
    first = fired(0)
    store.add_alerts([first, resolved(first, second=5), fired(6, rule="surge")], NOW)
    assert [(kind, msg[:5]) for _, kind, _, msg in rows(url)] == [
        ("fired", "fired"),
        ("resolved", "해제 · "),
        ("fired", "fired"),
    ]
    assert [d.kind for d in pending_of(store, 1)] == ["fired", "resolved", "fired"]


def test_a_fired_alert_and_a_resolved_event_may_share_rule_ticker_second_and_seq(
    url: str, store: Store
) -> None:
    earlier = fired(0)
    later = fired(30)  # fires again on the very tick that resolves the first
    ids = store.add_alerts([earlier, later, resolved(earlier, second=30)], NOW)
    assert len(ids) == 3
    assert [kind for _, kind, _, _ in rows(url)] == ["fired", "fired", "resolved"]


def test_a_resolved_event_is_stored_once_also_across_restarts(url: str) -> None:
    alert = fired()
    before = Store(url, allowed_chat_ids=ALLOWED)
    before.add_watches(1, ["005930"])
    assert len(before.add_alerts([alert, resolved(alert), resolved(alert)], NOW)) == 2
    before.close()
    after = Store(url, allowed_chat_ids=ALLOWED)
    assert after.add_alerts([alert, resolved(alert)], NOW) == []
    after.close()
    assert len(rows(url)) == 2


def test_recipients_are_the_chats_that_have_the_alert_and_would_get_it_now(
    url: str, store: Store
) -> None:
    alert = fired()
    (alert_id,) = store.add_alerts([alert], NOW)
    by_chat = {d.chat_id: d.id for d in store.pending_deliveries(now=NOW)}
    store.mark_sent([by_chat[1]], NOW, message_id=77)  # 1: sent
    # 2: still pending
    store.mark_failed([by_chat[3]], "Bad Request: refused")  # 3: never got it
    store.remove_watches(4, ["005930"])  # 4: stopped watching since
    store.mute(5, "net-buy", NOW + timedelta(hours=1), kind="rule", now=NOW)  # 5: muted since
    store.add_watches(6, ["005930"])  # 6: not allowed at all
    (event_id,) = store.add_alerts([resolved(alert)], NOW)
    assert chats_of(url, event_id) == {1: "pending", 2: "pending"}
    assert chats_of(url, alert_id)[3] == "failed"


def test_a_chat_that_starts_watching_later_gets_no_half_pair(url: str, store: Store) -> None:
    other = Store(url, allowed_chat_ids=[*ALLOWED, 7])
    alert = fired()
    other.add_alerts([alert], NOW)
    other.add_watches(7, ["005930"])
    (event_id,) = other.add_alerts([resolved(alert)], NOW)
    assert 7 not in chats_of(url, event_id)
    other.close()


def test_a_resolved_event_without_its_alert_is_stored_unsent(
    url: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.store.outbox")
    lost = fired(5)  # never stored: the recording's alert was pruned, say
    orphan, unknown = resolved(lost, second=40), resolved(None, second=41)
    ids = store.add_alerts([orphan, unknown], NOW)
    assert [(kind, resolves) for _, kind, resolves, _ in rows(url)] == [("resolved", None)] * 2
    assert all(chats_of(url, i) == {} for i in ids)
    logged = [r.getMessage() for r in caplog.records if "without its alert" in r.getMessage()]
    assert len(logged) == 2
    assert "rule=net-buy ticker=005930 time=2024-06-03T09:22:40+09:00" in logged[0]
    store.add_alerts([orphan], NOW)  # a duplicate: stored before, not logged again
    assert len([r for r in caplog.records if "without its alert" in r.getMessage()]) == 2


def test_an_event_that_names_no_fired_alert_is_linked_to_nothing(url: str, store: Store) -> None:
    alert = fired()
    first = resolved(alert)
    store.add_alerts([alert, first], NOW)
    (bogus,) = store.add_alerts([resolved(first, second=50)], NOW)  # "resolves" an event
    assert rows(url)[-1][:3] == (bogus, "resolved", None)
    assert chats_of(url, bogus) == {}


def test_recovered_alerts_get_recovered_resolved_events_nowhere(url: str, store: Store) -> None:
    alert = fired()
    store.recover_alerts([alert], NOW)
    (event_id,) = store.add_alerts([resolved(alert)], NOW)
    assert chats_of(url, event_id) == {}  # nobody saw the alert: nobody hears it ended


async def test_the_alert_writer_stores_an_event_batched_apart_from_its_alert(
    url: str, store: Store
) -> None:
    writer = AlertWriter(store, batch_size=500, interval=10.0)
    task = asyncio.create_task(writer.run())
    alert = fired()
    writer.submit([alert])
    await writer.flush()
    writer.submit([resolved(alert), fired(40)])
    await writer.flush()
    await writer.close()
    await task
    assert [(kind, resolves) for _, kind, resolves, _ in rows(url)] == [
        ("fired", None),
        ("resolved", rows(url)[0][0]),
        ("fired", None),
    ]
    assert writer.stored == 3


# -- the sender's view -----------------------------------------------------------------------


def test_a_pending_resolved_event_carries_its_alerts_delivery_and_message(store: Store) -> None:
    alert = fired()
    store.add_alerts([alert, resolved(alert)], NOW)
    first, event = pending_of(store, 1)
    assert (first.kind, first.resolves_delivery, first.reply_to) == ("fired", None, None)
    assert (event.kind, event.resolves_delivery, event.resolves_state) == (
        "resolved",
        first.id,
        "pending",
    )
    store.mark_sent([first.id], NOW, message_id=4321)
    (event,) = pending_of(store, 1)
    assert (event.resolves_state, event.reply_to) == ("sent", 4321)
    assert event.time == datetime(2024, 6, 3, 9, 22, 30, tzinfo=KST)


def test_mark_sent_keeps_the_first_message_id(url: str, store: Store) -> None:
    store.add_alerts([fired()], NOW)
    row = pending_of(store, 1)[0]
    store.mark_sent([row.id], NOW, message_id=10)
    store.mark_sent([row.id], NOW + timedelta(seconds=1), message_id=11)
    d = DeliveryRow.__table__.c
    assert read(url, select(d.message_id).where(d.id == row.id)) == [(10,)]


# -- /alerts ---------------------------------------------------------------------------------


def test_recent_alerts_lists_fired_alerts_with_when_they_were_resolved(store: Store) -> None:
    first, second = fired(0), fired(10, rule="surge")
    store.add_alerts([first, second, resolved(first, second=45)], NOW)
    listed = store.recent_alerts(chat_id=1, limit=5)
    assert [(a.rule, a.resolved_at) for a in listed] == [
        ("net-buy", datetime(2024, 6, 3, 9, 22, 45, tzinfo=KST)),
        ("surge", None),
    ]
    assert [a.rule for a in store.recent_alerts(limit=1)] == ["surge"]  # resolved: not a row


# -- restart ---------------------------------------------------------------------------------


def test_store_missing_after_a_restart_neither_repeats_nor_loses_a_resolved_event(
    url: str, store: Store
) -> None:
    alert = fired()
    event = resolved(alert)
    store.add_alerts([alert], NOW)  # committed before the crash; the resolved event was not
    replayed = [(fired(), NOW), (resolved(fired()), NOW)]  # the rebuild's fresh copies
    assert store_missing(store, replayed, NOW) == (1, 0)
    assert store_missing(store, replayed, NOW) == (0, 0)  # a second restart: nothing new
    kinds = [(kind, resolves) for _, kind, resolves, _ in rows(url)]
    assert kinds == [("fired", None), ("resolved", rows(url)[0][0])]
    assert [d.kind for d in pending_of(store, 1)] == ["fired", "resolved"]
    assert event.message == rows(url)[1][3]


def test_store_missing_recovers_an_old_pair_and_sends_a_fresh_one(url: str, store: Store) -> None:
    old, fresh = fired(0), fired(1, rule="surge")
    replayed = [
        (old, NOW - timedelta(minutes=5)),
        (resolved(old), NOW - timedelta(minutes=4)),
        (fresh, NOW - timedelta(seconds=5)),
        (resolved(fresh, second=31), NOW),
    ]
    assert store_missing(store, replayed, NOW) == (2, 2)
    states = {msg: set(chats_of(url, i).values()) for i, _, _, msg in rows(url)}
    assert states[resolved(old).message] == {"recovered"}  # history: the pair, both closed
    assert states[resolved(fresh, second=31).message] == {"pending"}


# -- retention -------------------------------------------------------------------------------


def _foreign_keys_hold(url: str) -> None:
    a, d = AlertRow.__table__.c, DeliveryRow.__table__.c
    ids = {i for (i,) in read(url, select(a.id))}
    assert {r for (r,) in read(url, select(a.resolves_id)) if r is not None} <= ids
    assert {r for (r,) in read(url, select(d.alert_id))} <= ids
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_prune_keeps_an_alert_while_its_resolved_event_waits(url: str, store: Store) -> None:
    alert = fired()
    store.add_alerts([alert, resolved(alert)], NOW)
    alert_rows = [d.id for chat in ALLOWED for d in pending_of(store, chat) if d.kind == "fired"]
    store.mark_sent(alert_rows, NOW)
    later = DAY + timedelta(days=1)
    assert store.prune(later) == (0, len(ALLOWED))  # the alert's deliveries went, not the alert
    assert len(rows(url)) == 2
    _foreign_keys_hold(url)
    events = [d.id for chat in ALLOWED for d in pending_of(store, chat)]
    store.mark_sent(events, NOW)
    assert store.prune(later) == (2, len(ALLOWED))  # the event, then its alert
    assert rows(url) == []
    _foreign_keys_hold(url)


def test_prune_deletes_a_recovered_pair(url: str, store: Store) -> None:
    alert = fired()
    store.recover_alerts([alert, resolved(alert)], NOW)
    assert store.prune(DAY + timedelta(days=1)) == (2, 2 * len(ALLOWED))
    assert rows(url) == []
    _foreign_keys_hold(url)
