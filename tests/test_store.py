"""The Store on a real SQLite file and a real PostgreSQL server: alerts stored once, deliveries per
recipient, the outbox states, watches and mutes, and what survives a restart."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Select, create_engine, select

from bot.alerts import Alert
from bot.store import Store
from bot.store.models import DeliveryRow
from bot.ticks import KST, Tick

DAY = date(2024, 6, 3)
NOW = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)  # 09:30 KST
ALLOWED = (1, 2, 3, 4)


def tick(ticker: str = "005930", second: int = 0, net: int = 12_345_000_000) -> Tick:
    seconds = 9 * 3600 + 22 * 60 + second
    hhmmss = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    return Tick(ticker, DAY, hhmmss, seconds, 10, 20, 30, 40, 20, net, -7, 8, 15)


def alert(
    rule: str = "net-buy", ticker: str = "005930", second: int = 0, seq: int = 0, **kw: object
) -> Alert:
    return Alert(
        rule=rule,
        ticker=ticker,
        tick=tick(ticker, second),
        value=int(kw.get("value", 1)),  # type: ignore[call-overload]
        message=str(kw.get("message", f"{rule} {ticker} {second}")),
        seq=seq,
    )


@pytest.fixture
def url(each_backend_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL (but the SQLite section at the end)."""
    return each_backend_url


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url, allowed_chat_ids=ALLOWED)
    yield store
    store.close()


def read(url: str, query: Select[Any]) -> list[Any]:
    """Rows as another process would read them, on a connection of its own."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    finally:
        engine.dispose()


def deliveries(url: str) -> list[tuple[int, int, str]]:
    """(alert id, chat, state) of every delivery."""
    d = DeliveryRow.__table__.c
    query = select(d.alert_id, d.chat_id, d.state).order_by(d.alert_id, d.chat_id)
    return [tuple(row) for row in read(url, query)]


# -- alerts ----------------------------------------------------------------------------------


def test_the_same_alert_is_stored_once(store: Store) -> None:
    first, again = alert(), alert(message="a different text, same key")
    ids = store.add_alerts([first, again])
    assert len(ids) == 1
    assert store.add_alerts([first]) == []
    assert [a.message for a in store.recent_alerts()] == [first.message]


def test_the_key_is_rule_ticker_day_time_and_seq(store: Store) -> None:
    variants = [
        alert(),
        alert(rule="other"),
        alert(ticker="000660"),
        alert(second=1),
        alert(seq=1),
        Alert("net-buy", "005930", tick()._replace(day=DAY + timedelta(days=1)), 1, "m"),
    ]
    assert len(store.add_alerts(variants)) == len(variants)


def test_a_restart_does_not_store_an_alert_twice(url: str) -> None:
    before = Store(url, allowed_chat_ids=ALLOWED)
    before.add_watches(1, ["005930"])
    assert len(before.add_alerts([alert(), alert(second=1)], NOW)) == 2
    before.close()
    after = Store(url, allowed_chat_ids=ALLOWED)
    assert len(after.add_alerts([alert(second=1), alert(second=2)], NOW)) == 1
    assert len(after.recent_alerts(limit=50)) == 3
    assert len(deliveries(url)) == 3
    after.close()


def test_stored_alerts_keep_every_column(store: Store) -> None:
    big = Alert("r", "00088K", tick("00088K", 5, net=-9_876_543_210_123), -9_876_543_210_123, "큰")
    store.add_alerts([big])
    (stored,) = store.recent_alerts()
    assert stored.tick == big.tick
    assert stored.time == big.time == datetime(2024, 6, 3, 9, 22, 5, tzinfo=KST)
    assert stored.columns["NTBY_TR_PBMN"] == -9_876_543_210_123
    assert stored.columns["STCK_CNTG_HOUR"] == "092205"
    assert (stored.rule, stored.value, stored.message, stored.seq) == (
        "r",
        -9_876_543_210_123,
        "큰",
        0,
    )


def test_recent_alerts_by_chat_and_ticker_oldest_first(store: Store) -> None:
    store.add_watches(1, ["005930"])
    store.add_watches(2, ["000660"])
    store.add_alerts([alert(second=s) for s in range(5)], NOW)
    store.add_alerts([alert(ticker="000660", second=s) for s in range(3)], NOW)
    mine = store.recent_alerts(chat_id=1, limit=3)
    assert [(a.ticker, a.tick.seconds % 60) for a in mine] == [("005930", s) for s in (2, 3, 4)]
    assert [a.ticker for a in store.recent_alerts(chat_id=2)] == ["000660"] * 3
    assert store.recent_alerts(chat_id=2, ticker="005930") == []
    assert len(store.recent_alerts(ticker="000660", limit=2)) == 2
    assert store.recent_alerts(chat_id=3) == []


# -- recipients ------------------------------------------------------------------------------


def test_deliveries_go_to_allowed_watchers_not_muted_not_blocked(url: str, store: Store) -> None:
    for chat in (1, 2, 3, 4, 99):  # 99 watches but is not allowed
        store.add_watches(chat, ["005930"])
    store.add_watches(1, ["000660"])
    store.mute(2, "net-buy", NOW + timedelta(minutes=5), kind="rule", now=NOW)
    store.mute(3, "005930", NOW + timedelta(minutes=5), kind="ticker", now=NOW)
    store.mute(1, "net-buy", NOW - timedelta(seconds=1), kind="rule", now=NOW)  # already over
    store.mark_blocked(4, "Forbidden: bot was blocked by the user")
    ids = store.add_alerts([alert(), alert(rule="flip"), alert(ticker="000660")], NOW)
    got = {(alert_id, chat) for alert_id, chat, _ in deliveries(url)}
    net_buy, flip, other = ids
    assert got == {(net_buy, 1), (flip, 1), (flip, 2), (other, 1)}


def test_a_mute_ends_at_its_time(url: str, store: Store) -> None:
    store.add_watches(1, ["005930"])
    store.mute(1, "005930", NOW + timedelta(minutes=30), kind="ticker", now=NOW)
    assert store.add_alerts([alert(second=1)], NOW + timedelta(minutes=29)) != []
    assert deliveries(url) == []
    store.add_alerts([alert(second=2)], NOW + timedelta(minutes=30))
    assert len(deliveries(url)) == 1


def test_no_allowed_chats_means_no_deliveries(url: str) -> None:
    store = Store(url)
    store.add_watches(1, ["005930"])
    assert len(store.add_alerts([alert()], NOW)) == 1
    assert deliveries(url) == []
    assert store.all_watched() == set()
    assert store.pending_deliveries(now=NOW) == []
    store.close()


# -- the outbox ------------------------------------------------------------------------------


def test_pending_deliveries_carry_the_alert(store: Store) -> None:
    store.add_watches(1, ["005930"])
    (alert_id,) = store.add_alerts([alert(value=77, message="순매수 100억 돌파")], NOW)
    (row,) = store.pending_deliveries(10, NOW)
    assert (row.chat_id, row.alert_id, row.rule, row.ticker) == (1, alert_id, "net-buy", "005930")
    assert (row.value, row.message, row.attempts) == (77, "순매수 100억 돌파", 0)
    assert row.time == datetime(2024, 6, 3, 9, 22, tzinfo=KST)
    assert row.columns["NTBY_CNQN"] == 20


def test_pending_deliveries_are_ordered_by_chat_then_alert(store: Store) -> None:
    store.add_watches(2, ["005930", "000660"])
    store.add_watches(1, ["005930"])
    store.add_alerts([alert(second=3), alert(ticker="000660", second=1)], NOW)
    store.add_alerts([alert(second=2)], NOW)
    rows = store.pending_deliveries(now=NOW)
    assert [(r.chat_id, r.alert_id) for r in rows] == [(1, 1), (1, 3), (2, 1), (2, 2), (2, 3)]


def test_a_backlog_in_one_chat_does_not_hide_the_others(store: Store) -> None:
    """The sender asks per chat, a capped read each: a chat's backlog is never read whole, and
    the other chats are found at once."""
    store.add_watches(1, ["005930"])
    store.add_alerts([alert(second=s % 60, seq=s // 60) for s in range(200)], NOW)
    store.add_watches(2, ["000660"])
    store.add_alerts([alert(ticker="000660", second=s) for s in range(3)], NOW)
    assert store.due_chats() == [1, 2]
    rows = store.due_deliveries(1, 10, NOW)
    assert [r.alert_id for r in rows] == list(range(1, 11))
    assert [r.chat_id for r in store.due_deliveries(2, 10, NOW)] == [2, 2, 2]
    assert store.due_deliveries(99, 10, NOW) == []  # not an allowed chat


def test_pending_survives_reopening(url: str) -> None:
    store = Store(url, allowed_chat_ids=ALLOWED)
    store.add_watches(1, ["005930"])
    store.add_alerts([alert(), alert(second=1)], NOW)
    first = store.pending_deliveries(now=NOW)
    store.mark_sent([first[0].id], NOW)
    store.close()
    reopened = Store(url, allowed_chat_ids=ALLOWED)
    assert reopened.pending_deliveries(now=NOW) == first[1:]
    assert reopened.pending_count() == 1
    reopened.close()


def test_mark_sent(url: str, store: Store) -> None:
    store.add_watches(1, ["005930"])
    store.add_alerts([alert(), alert(second=1)], NOW)
    rows = store.pending_deliveries(now=NOW)
    store.mark_sent([rows[0].id], NOW + timedelta(seconds=1))
    store.mark_sent(
        [rows[0].id], NOW + timedelta(seconds=9)
    )  # a second confirmation changes nothing
    assert [r.id for r in store.pending_deliveries(now=NOW)] == [rows[1].id]
    assert store.pending_count() == 1
    d = DeliveryRow.__table__.c
    [(sent_at,)] = read(url, select(d.sent_at).where(d.id == rows[0].id))
    assert sent_at == NOW + timedelta(seconds=1)
    assert store.delivery_counts() == {"sent": 1, "pending": 1}


def test_mark_retry_delays_and_counts(store: Store) -> None:
    store.add_watches(1, ["005930"])
    store.add_alerts([alert()], NOW)
    (row,) = store.pending_deliveries(now=NOW)
    later = NOW + timedelta(seconds=30)
    store.mark_retry([row.id], "TimedOut: " + "x" * 2000, later)
    assert store.pending_deliveries(now=NOW) == []
    assert store.pending_count() == 1  # waiting, not lost
    (again,) = store.pending_deliveries(now=later)
    assert again.attempts == 1
    store.mark_retry([row.id], "again", later)
    assert store.pending_deliveries(now=later)[0].attempts == 2


def test_mark_blocked_and_unblock(url: str, store: Store) -> None:
    store.add_watches(1, ["005930"])
    store.add_watches(2, ["005930"])
    store.add_alerts([alert()], NOW)
    store.mark_blocked(1, "Forbidden: bot was blocked by the user")
    assert [r.chat_id for r in store.pending_deliveries(now=NOW)] == [2]
    assert store.blocked_chats() == {1}
    store.add_alerts([alert(second=1)], NOW)
    assert sorted(deliveries(url)) == [(1, 1, "blocked"), (1, 2, "pending"), (2, 2, "pending")]
    assert store.unblock(1) is True
    assert store.unblock(1) is False
    store.add_alerts([alert(second=2)], NOW)
    assert (3, 1, "pending") in deliveries(url)


def test_mark_failed_stops_retrying(store: Store) -> None:
    store.add_watches(1, ["005930"])
    store.add_alerts([alert()], NOW)
    (row,) = store.pending_deliveries(now=NOW)
    store.mark_failed([row.id], "Bad Request: message is too long")
    assert store.pending_deliveries(now=NOW + timedelta(days=1)) == []
    assert store.delivery_counts() == {"failed": 1}


def test_a_chat_no_longer_allowed_gets_nothing(url: str, store: Store) -> None:
    store.add_watches(4, ["005930"])
    store.add_alerts([alert()], NOW)
    narrower = Store(url, allowed_chat_ids=[1, 2])
    assert narrower.pending_deliveries(now=NOW) == []
    assert narrower.pending_count() == 0
    assert narrower.all_watched() == set()
    narrower.close()


def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.add_alerts([alert()], datetime(2024, 6, 3, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.mark_sent([1], datetime(2024, 6, 3, 9, 0))
    assert store.recent_alerts() == []


# -- watches and mutes -----------------------------------------------------------------------


def test_watches(store: Store) -> None:
    assert store.add_watches(1, ["005930", "000660", "005930"]) == ["005930", "000660"]
    assert store.add_watches(1, ["000660", "373220"]) == ["373220"]
    assert store.watches(1) == ["000660", "005930", "373220"]
    assert store.remove_watches(1, ["000660", "111111"]) == ["000660"]
    assert store.watches(1) == ["005930", "373220"]
    store.add_watches(2, ["000660"])
    store.add_watches(50, ["999999"])  # not an allowed chat
    assert store.all_watched() == {"005930", "373220", "000660"}


def test_a_bad_ticker_adds_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="6-character"):
        store.add_watches(1, ["005930", "5930"])
    assert store.watches(1) == []


def test_mutes(store: Store) -> None:
    store.mute(1, "net-buy", NOW + timedelta(hours=1), kind="rule", now=NOW)
    store.mute(1, "005930", NOW + timedelta(minutes=10), now=NOW)  # kind: a code is a ticker
    store.mute(1, "net-buy", NOW + timedelta(hours=2), kind="rule", now=NOW)  # replaces the first
    store.mute(2, "flip", NOW + timedelta(hours=1), now=NOW)
    mutes = store.mutes(1, NOW)
    assert [(m.target, m.kind, m.until) for m in mutes] == [
        ("005930", "ticker", NOW + timedelta(minutes=10)),
        ("net-buy", "rule", NOW + timedelta(hours=2)),
    ]
    assert store.mutes(1, NOW + timedelta(minutes=10)) == mutes[1:]
    assert store.unmute(1, "net-buy", now=NOW) == 1
    assert store.unmute(1, "net-buy", now=NOW) == 0
    assert store.unmute(1, now=NOW + timedelta(hours=3)) == 0  # the code's mute had ended
    assert store.mutes(1, NOW) == []
    assert store.unmute(2, now=NOW) == 1


def test_mute_checks_its_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="kind"):
        store.mute(1, "x", NOW, kind="chat", now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.mute(1, "x", datetime(2024, 1, 1), now=NOW)


# -- concurrency and SQLite ------------------------------------------------------------------


@pytest.mark.parametrize("each_backend_url", ["url"], ids=["sqlite"], indirect=True)
def test_wal_mode_and_foreign_keys(url: str, store: Store) -> None:
    store.add_watches(1, ["005930"])
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert Path(path + "-wal").exists()
    with store._engine.connect() as conn:  # the store's own connections
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_two_stores_write_at_once_without_locking_errors(url: str) -> None:
    """Two processes' worth of stores, each a writer thread, on one database. SQLite: every
    read-then-write transaction takes the lock first, so none fails with 'database is locked'.
    PostgreSQL: inserts that meet on a key skip or update (ON CONFLICT), none fails on it."""
    stores = [Store(url, allowed_chat_ids=ALLOWED) for _ in range(2)]
    stores[0].add_watches(1, ["005930"])
    errors: list[BaseException] = []

    def work(store: Store, rule: str) -> None:
        try:
            for second in range(40):
                store.add_alerts([alert(rule=rule, second=second)], NOW)
                store.add_watches(2, [f"{second:06d}"])
                store.mark_sent([r.id for r in store.pending_deliveries(5, NOW)], NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, f"r{i}")) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(stores[0].recent_alerts(limit=100)) == 80
    for store in stores:
        store.close()


# -- a property ------------------------------------------------------------------------------

POOL = [alert(rule=r, second=s, seq=q) for r in ("a", "b") for s in range(3) for q in range(2)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(st.sampled_from(POOL), max_size=8), max_size=6),
    restarts=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_any_interleaving_of_duplicates_stores_each_alert_once(
    template: Path, batches: list[list[Alert]], restarts: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.db"
        shutil.copy(template, path)
        url = f"sqlite:///{path}"
        store = Store(url, allowed_chat_ids=[1, 2])
        store.add_watches(1, ["005930"])
        store.add_watches(2, ["005930"])
        seen: set[tuple[str, int, int]] = set()
        for batch, restart in zip(batches, restarts, strict=False):
            if restart:
                store.close()
                store = Store(url, allowed_chat_ids=[1, 2])
            new = {(a.rule, a.tick.seconds, a.seq) for a in batch} - seen
            assert len(store.add_alerts(batch, NOW)) == len(new)
            seen |= new
        stored = store.recent_alerts(limit=100)
        assert sorted((a.rule, a.tick.seconds, a.seq) for a in stored) == sorted(seen)
        assert store.pending_count() == 2 * len(seen)
        store.close()


def test_a_group_that_became_a_supergroup_takes_its_watches_mutes_and_pending_along(
    store: Store,
) -> None:
    old, new = 2, -1002
    store.add_watches(old, ["005930"])
    store.mute(old, "flip", NOW + timedelta(hours=1), kind="rule", now=NOW)
    store.add_alerts([alert(), alert(second=1)], NOW)
    [first, _] = store.due_deliveries(old, 10, NOW)
    store.mark_sent([first.id], NOW)
    store.move_chat(old, new)
    assert store.watches(new) == ["005930"] and store.watches(old) == []
    assert [m.target for m in store.mutes(new, NOW)] == ["flip"]
    assert [d.alert_id for d in store.due_deliveries(new, 10, NOW)] == [2]  # the unsent one
    assert store.recent_alerts(chat_id=old) != []  # what was sent stays in the old history
    assert new in store.allowed_chat_ids
