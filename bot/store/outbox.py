"""The outbox: alerts and their deliveries, from commit to sent (or failed, or recovered).

Who gets an alert (decided once, when it is stored, in the same transaction): every allowed chat
that watches its ticker, has not muted its rule or its ticker at that wall-clock moment, and has
not blocked the bot. ``allowed_chat_ids`` empty means no chat at all. Mutes and watches are
looked at again when a delivery is due (``due_rows``): one the chat muted or unwatched since is
closed as "muted", never sent.

A resolved event (``Alert.kind == "resolved"``) is stored with a reference to the fired alert it
ends, found by that alert's key, and goes to the chats that have that alert sent or still
pending and would get it now (watching, not muted, not blocked): the pair, never half of it to a
chat that opted out since. One whose alert is not stored (recovered without it, or pruned) is
stored with no deliveries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import takewhile
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)

from bot.alerts import Alert, FiredOnTick
from bot.clock import utc_now
from bot.store.tables import (
    CHUNK,
    Database,
    alerts_t,
    aware,
    blocked_t,
    chunks,
    deliveries_t,
    insert_on_conflict,
    mutes_t,
    watches_t,
)
from bot.ticks import NUMERIC_FIELDS, Tick

log = logging.getLogger(__name__)

_KEY = ("rule", "ticker", "day", "seconds", "seq", "kind")
_NUMERIC = tuple(name.lower() for name in NUMERIC_FIELDS)
_ERROR_MAX = 500  # characters of a delivery error kept

Routes = Mapping[str, frozenset[int]]  # rule id -> the chats its `to` names
AlertKey = tuple[str, str, date, int, int, str]  # rule, ticker, day, seconds, seq, kind
_KEY_CHUNK = CHUNK // len(_KEY)  # keys per IN ((…), …) list
# The deliveries of its alert that make a chat a recipient of a resolved event.
_PAIRED_STATES = ("pending", "sent")


@dataclass(frozen=True, slots=True)
class StoredAlert(FiredOnTick):
    """An alert as stored; ``time`` is the tick time in KST."""

    id: int
    rule: str
    ticker: str
    value: int
    message: str
    seq: int
    tick: Tick  # all 11 columns
    created_at: datetime  # when it was stored (UTC)
    resolved_at: datetime | None = None  # tick time (KST) of its resolved event, if any


@dataclass(frozen=True, slots=True)
class PendingDelivery(FiredOnTick):
    """One alert waiting to be sent to one chat (``id`` is the delivery's id)."""

    id: int
    chat_id: int
    alert_id: int
    rule: str
    ticker: str
    value: int
    message: str
    attempts: int  # failed sends so far
    tick: Tick
    kind: str = "fired"  # or "resolved": then the fields below tell of its alert in this chat
    resolves_delivery: int | None = None  # the alert's delivery to this chat, if any
    resolves_state: str | None = None  # that delivery's state
    reply_to: int | None = None  # the Telegram message that delivery went out in, if known


@dataclass(frozen=True, slots=True)
class Failure:
    """A delivery given up on: to whom, which alert, after how many attempts, and why."""

    chat_id: int
    rule: str
    ticker: str
    attempts: int
    error: str | None


def alert_key(alert: Alert) -> AlertKey:
    return (alert.rule, alert.ticker, alert.day, alert.tick.seconds, alert.seq, alert.kind)


# Selected first, in Tick's field order, so a row's head is a Tick: Tick._make(row[:_TICK_WIDTH]).
_TICK_COLUMN_NAMES = ("ticker", "day", "hhmmss", "seconds", *_NUMERIC)
_TICK_COLUMNS = [alerts_t.c[name] for name in _TICK_COLUMN_NAMES]
_TICK_WIDTH = len(_TICK_COLUMNS)
_ALERT_COLUMNS = [
    *_TICK_COLUMNS,
    *(alerts_t.c[n] for n in ("id", "rule", "value", "message", "seq", "created_at")),
]


def _no_routes() -> Routes:
    return {}


class Outbox(Database):
    """Alerts and deliveries (one half of ``Store``).

    ``routes``: the rules that name their chats (``to``), rule id -> chat ids, asked at every
    insert (the bot sets it to follow the loaded rules: bot/notify/routing.py)."""

    routes: Callable[[], Routes] = staticmethod(_no_routes)

    def add_alerts(self, alerts: Sequence[Alert], now: datetime | None = None) -> list[int]:
        """Store new alerts and their deliveries; return the ids of the alerts inserted.

        Alerts already stored (same rule, ticker, day, tick time, seq) are skipped silently.
        """
        return [alert_id for alert_id, _ in self.insert_alerts(alerts, now)]

    def insert_alerts(
        self, alerts: Sequence[Alert], now: datetime | None = None
    ) -> list[tuple[int, Alert]]:
        """``add_alerts``, returning ``(id, alert)`` of each alert inserted, in input order."""
        return self._insert(alerts, now, "pending")

    def recover_alerts(
        self, alerts: Sequence[Alert], now: datetime | None = None
    ) -> list[tuple[int, Alert]]:
        """Store alerts a restart found missing and too old to be worth sending: their
        deliveries are closed at once as "recovered", so the history stays true."""
        return self._insert(alerts, now, "recovered")

    def _insert(
        self, alerts: Sequence[Alert], now: datetime | None, state: str
    ) -> list[tuple[int, Alert]]:
        now = aware(now or utc_now(), "now")
        fresh: dict[AlertKey, Alert] = {}
        for alert in alerts:
            fresh.setdefault(alert_key(alert), alert)
        if not fresh:
            return []
        resolved = [a for a in fresh.values() if a.kind == "resolved"]
        with self._writer.begin() as conn:
            # In the engine's order (ids are the chats' order), then each resolved event is
            # linked to its alert, stored before or just now.
            ids = self._insert_new(conn, list(fresh.values()), now)
            targets = self._fired_ids(conn, resolved, ids)
            self._link(conn, resolved, ids, targets)
            inserted = [(ids[key], alert) for key, alert in fresh.items() if key in ids]
            deliveries = self._deliveries_for(conn, inserted, now, state, targets)
            if deliveries:
                conn.execute(insert(deliveries_t), deliveries)
        _log_orphans(resolved, ids, targets)
        if inserted:
            log.debug(
                "alerts stored count=%d skipped=%d deliveries=%d",
                len(inserted),
                len(alerts) - len(inserted),
                len(deliveries),
            )
        return inserted

    def _insert_new(
        self, conn: Connection, alerts: list[Alert], now: datetime
    ) -> dict[AlertKey, int]:
        """Insert the alerts whose key is not stored yet; return their ids by key."""
        rows = [
            {
                "rule": a.rule,
                "ticker": a.ticker,
                "day": a.day,
                "hhmmss": a.tick.hhmmss,
                "seconds": a.tick.seconds,
                "seq": a.seq,
                "value": a.value,
                "message": a.message,
                "kind": a.kind,
                "created_at": now,
                **{n: getattr(a.tick, n) for n in _NUMERIC},
            }
            for a in alerts
        ]
        key_columns = [alerts_t.c[name] for name in _KEY]
        statement = insert_on_conflict(conn, alerts_t, _KEY)
        # executemany with RETURNING: SQLAlchemy batches it into multi-row INSERTs
        # ("insertmanyvalues") and caches one compiled statement for every batch size.
        result = conn.execute(statement.returning(*key_columns, alerts_t.c.id), rows)
        return {tuple(row[: len(_KEY)]): row.id for row in result}

    def _link(
        self,
        conn: Connection,
        resolved: list[Alert],
        ids: dict[AlertKey, int],
        targets: dict[AlertKey, int],
    ) -> None:
        """Point each resolved event inserted just now at its alert, where that is stored."""
        links = [
            {"event": ids[alert_key(event)], "target": targets[alert_key(event.resolves)]}
            for event in resolved
            if alert_key(event) in ids
            and event.resolves is not None
            and alert_key(event.resolves) in targets
        ]
        if links:
            conn.execute(
                update(alerts_t)
                .where(alerts_t.c.id == bindparam("event"))
                .values(resolves_id=bindparam("target")),
                links,
            )

    def _fired_ids(
        self, conn: Connection, resolved: list[Alert], known: dict[AlertKey, int]
    ) -> dict[AlertKey, int]:
        """The ids of the fired alerts these resolved events end, by key: inserted just now
        (``known``) or stored before. An alert not stored is missing from the answer."""
        wanted = {alert_key(alert) for alert in map(_alert_ended, resolved) if alert}
        found = {key: known[key] for key in wanted if key in known}
        missing = sorted(wanted - found.keys())
        key_columns = [alerts_t.c[name] for name in _KEY]
        for chunk in chunks(missing, _KEY_CHUNK):
            rows = conn.execute(
                select(*key_columns, alerts_t.c.id).where(tuple_(*key_columns).in_(chunk))
            )
            found.update({tuple(row[: len(_KEY)]): row.id for row in rows})
        return found

    def _deliveries_for(
        self,
        conn: Connection,
        inserted: list[tuple[int, Alert]],
        now: datetime,
        state: str,
        targets: dict[AlertKey, int],
    ) -> list[dict[str, Any]]:
        """One delivery row (in ``state``) per recipient of each inserted alert; a resolved
        event's recipients are also among the chats its alert went or goes to."""
        if not inserted or not self.allowed_chat_ids:
            return []
        # Recovered events are history: they pair with whatever their alert had, recovered too.
        pairing = (*_PAIRED_STATES, "recovered") if state == "recovered" else _PAIRED_STATES
        paired = self._paired_chats(conn, targets.values(), pairing)
        routes = self.routes()
        audience = self._audience(conn, inserted, routes)
        if not audience:
            return []
        chats = sorted({chat for chat_ids in audience.values() for chat in chat_ids})
        muted = {
            (chat_id, kind, target)
            for chat_id, kind, target in conn.execute(
                select(mutes_t.c.chat_id, mutes_t.c.kind, mutes_t.c.target)
                .where(mutes_t.c.chat_id.in_(chats))
                .where(mutes_t.c.until > now)
            )
        }
        rows: list[dict[str, Any]] = []
        # Fired alerts first: a resolved event of the same batch goes where they go.
        for alert_id, alert in sorted(inserted, key=lambda pair: pair[1].kind == "resolved"):
            only = _pair_chats(alert, targets, paired)
            key = ("rule", alert.rule) if alert.rule in routes else ("ticker", alert.ticker)
            for chat_id in audience.get(key, ()):
                if only is not None and chat_id not in only:
                    continue
                if (chat_id, "rule", alert.rule) in muted:
                    continue
                if (chat_id, "ticker", alert.ticker) in muted:
                    continue
                rows.append(
                    {
                        "alert_id": alert_id,
                        "chat_id": chat_id,
                        "state": state,
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                )
                if state in pairing:
                    paired.setdefault(alert_id, set()).add(chat_id)
        return rows

    def _audience(
        self, conn: Connection, inserted: list[tuple[int, Alert]], routes: Routes
    ) -> dict[tuple[str, str], list[int]]:
        """The routing decision, made here only: ``("rule", id)`` -> the chats a routed rule
        names (``to``), ``("ticker", code)`` -> every chat watching the stock; allowed chats
        that did not block the bot, by id."""
        blocked = set(conn.execute(select(blocked_t.c.chat_id)).scalars())
        audience: dict[tuple[str, str], list[int]] = {}
        for rule in sorted({alert.rule for _, alert in inserted if alert.rule in routes}):
            chats = sorted(routes[rule] & self.allowed_chat_ids - blocked)
            audience[("rule", rule)] = chats
        tickers = sorted({a.ticker for _, a in inserted if a.rule not in routes})
        for chunk in chunks(tickers):
            found = conn.execute(
                select(watches_t.c.ticker, watches_t.c.chat_id)
                .where(watches_t.c.ticker.in_(chunk))
                .where(watches_t.c.chat_id.in_(self._allowed))
                .order_by(watches_t.c.chat_id)
            )
            for ticker, chat_id in found:
                if chat_id not in blocked:
                    audience.setdefault(("ticker", ticker), []).append(chat_id)
        return {key: chats for key, chats in audience.items() if chats}

    def _paired_chats(
        self, conn: Connection, alert_ids: Collection[int], states: Collection[str]
    ) -> dict[int, set[int]]:
        """Alert id -> the chats it has a delivery to in one of these states."""
        paired: dict[int, set[int]] = {}
        for chunk in chunks(sorted(set(alert_ids))):
            found = conn.execute(
                select(deliveries_t.c.alert_id, deliveries_t.c.chat_id)
                .where(deliveries_t.c.alert_id.in_(chunk))
                .where(deliveries_t.c.state.in_(states))
            )
            for alert_id, chat_id in found:
                paired.setdefault(alert_id, set()).add(chat_id)
        return paired

    def recent_alerts(
        self, *, ticker: str | None = None, limit: int = 10, chat_id: int | None = None
    ) -> list[StoredAlert]:
        """The last ``limit`` alerts, oldest first; only those addressed to ``chat_id`` if given
        (whatever their delivery state), only of ``ticker`` if given.

        A chat's alerts are found by walking its deliveries by (chat, alert) backwards, an index
        walk that stops after ``limit`` rows, never a scan of every alert."""
        query = select(*_ALERT_COLUMNS).where(alerts_t.c.kind == "fired")
        if chat_id is not None:
            query = query.join(deliveries_t, deliveries_t.c.alert_id == alerts_t.c.id).where(
                deliveries_t.c.chat_id == chat_id
            )
            newest_first = deliveries_t.c.alert_id.desc()
        else:
            newest_first = alerts_t.c.id.desc()
        if ticker is not None:
            query = query.where(alerts_t.c.ticker == ticker)
        query = query.order_by(newest_first).limit(max(0, limit))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            resolved = _resolved_times(conn, [row.id for row in rows])
        return [_stored_alert(row, resolved.get(row.id)) for row in reversed(rows)]

    def alert_in_chat(self, chat_id: int, alert_id: int) -> tuple[str, str] | None:
        """``(rule, ticker)`` of the fired alert ``alert_id`` if it was addressed to this chat
        (a delivery in any state), else None: what a button under an alert message may act on,
        so a forged or stale id acts on nothing."""
        query = (
            select(alerts_t.c.rule, alerts_t.c.ticker)
            .join(deliveries_t, deliveries_t.c.alert_id == alerts_t.c.id)
            .where(alerts_t.c.id == alert_id, alerts_t.c.kind == "fired")
            .where(deliveries_t.c.chat_id == chat_id)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row.rule, row.ticker)

    def due_chats(self) -> list[int]:
        """The allowed chats with deliveries pending (due now or later), by id."""
        if not self.allowed_chat_ids:
            return []
        query = (
            select(deliveries_t.c.chat_id)
            .distinct()
            .where(deliveries_t.c.state == "pending", deliveries_t.c.chat_id.in_(self._allowed))
            .order_by(deliveries_t.c.chat_id)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def due_deliveries(
        self, chat_id: int, limit: int, now: datetime | None = None
    ) -> list[PendingDelivery]:
        """This chat's oldest pending deliveries due at ``now``, at most ``limit``, in the order
        their alerts were stored. They stop at the first row not due yet: a row waiting for its
        retry holds back the newer ones, so alerts never overtake each other.

        Mutes and watches hold at send time: rows the chat no longer wants (``due_rows``) are
        closed as muted here, and not returned."""
        due, held = self.due_rows(chat_id, limit, now)
        self.mark_muted(held)
        return due

    def due_rows(
        self, chat_id: int, limit: int, now: datetime | None = None
    ) -> tuple[list[PendingDelivery], list[int]]:
        """A read: ``(due, held)``. ``due`` as ``due_deliveries`` tells; ``held``: the ids of
        this chat's pending rows (of the same ``limit`` looked at) that must not go out any
        more: the chat muted their rule or stock at ``now``, or unwatches the stock, or the
        row is a resolved event whose alert was held in this chat. Close them with
        ``mark_muted`` (a write, kept apart so the caller can run it on its write thread)."""
        now = aware(now or utc_now(), "now")
        if chat_id not in self.allowed_chat_ids or limit <= 0:
            return [], []
        routed_here = sorted(rule for rule, chats in self.routes().items() if chat_id in chats)
        query = (
            _PENDING_ROWS.add_columns(_held(now, routed_here))
            .where(deliveries_t.c.state == "pending")
            .where(deliveries_t.c.chat_id == chat_id)
            .order_by(deliveries_t.c.alert_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        held = [row[_TICK_WIDTH] for row in rows if row.held]
        wanted = [row for row in rows if not row.held]
        due = takewhile(lambda row: row.next_attempt_at <= now, wanted)
        return [_pending(row) for row in due], held

    def mark_muted(self, delivery_ids: Collection[int]) -> None:
        """Close these pending deliveries as muted: the chat opted out before they went out
        (the history stays true: the alert was for it, and was not sent)."""
        if not delivery_ids:
            return
        self._update_deliveries(
            delivery_ids, {"state": "muted"}, deliveries_t.c.state == "pending"
        )
        log.info(
            "deliveries muted at send time count=%d ids=%s", len(delivery_ids), _ids(delivery_ids)
        )

    def pending_deliveries(
        self, limit: int = 1000, now: datetime | None = None
    ) -> list[PendingDelivery]:
        """Every allowed chat's due deliveries (``due_deliveries`` of each, ``limit`` at most in
        all, each chat's oldest first), by chat: for tools and tests; the sender asks per chat."""
        rows: list[PendingDelivery] = []
        for chat_id in self.due_chats():
            rows += self.due_deliveries(chat_id, limit - len(rows), now)
        return rows

    def mark_sent(
        self, delivery_ids: Collection[int], sent_at: datetime, message_id: int | None = None
    ) -> None:
        """The transport confirmed these deliveries, sent in the message ``message_id`` when it
        told one (the first confirmation's time and message are kept)."""
        sent_at = aware(sent_at, "sent_at")
        self._update_deliveries(
            delivery_ids,
            {"state": "sent", "sent_at": sent_at, "message_id": message_id},
            deliveries_t.c.state != "sent",
        )

    def mark_retry(
        self, delivery_ids: Collection[int], error: str, next_attempt_at: datetime
    ) -> None:
        """A send failed for now: count the attempt, keep the error, try again at that time."""
        next_attempt_at = aware(next_attempt_at, "next_attempt_at")
        self._update_deliveries(
            delivery_ids,
            {
                "attempts": deliveries_t.c.attempts + 1,
                "last_error": error[:_ERROR_MAX],
                "next_attempt_at": next_attempt_at,
            },
            deliveries_t.c.state == "pending",
        )

    def postpone(self, delivery_ids: Collection[int], next_attempt_at: datetime) -> None:
        """Hold these deliveries back until that time without counting an attempt (they wait
        behind a message of their chat that failed, to keep the chat's order)."""
        next_attempt_at = aware(next_attempt_at, "next_attempt_at")
        self._update_deliveries(
            delivery_ids, {"next_attempt_at": next_attempt_at}, deliveries_t.c.state == "pending"
        )

    def failures(self, limit: int = 3) -> list[Failure]:
        """The deliveries most recently given up on (state failed), newest first."""
        query = (
            select(
                deliveries_t.c.chat_id,
                alerts_t.c.rule,
                alerts_t.c.ticker,
                deliveries_t.c.attempts,
                deliveries_t.c.last_error,
            )
            .join(alerts_t, alerts_t.c.id == deliveries_t.c.alert_id)
            .where(deliveries_t.c.state == "failed")
            .order_by(deliveries_t.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [Failure(*row) for row in conn.execute(query)]

    def mark_failed(self, delivery_ids: Collection[int], error: str) -> None:
        """A send that can never succeed (e.g. the message was refused): stop trying."""
        self._update_deliveries(
            delivery_ids,
            {
                "state": "failed",
                "attempts": deliveries_t.c.attempts + 1,
                "last_error": error[:_ERROR_MAX],
            },
            deliveries_t.c.state == "pending",
        )

    def _update_deliveries(self, ids: Collection[int], values: dict[str, Any], where: Any) -> None:
        ids = sorted(set(ids))
        if not ids:
            return
        with self._writer.begin() as conn:
            for chunk in chunks(ids):
                conn.execute(
                    update(deliveries_t)
                    .where(deliveries_t.c.id.in_(chunk))
                    .where(where)
                    .values(values)
                )

    def pending_count(self) -> int:
        """Deliveries waiting to be sent to allowed chats (due now or later)."""
        if not self.allowed_chat_ids:
            return 0
        query = (
            select(func.count())
            .select_from(deliveries_t)
            .where(deliveries_t.c.state == "pending")
            .where(deliveries_t.c.chat_id.in_(self._allowed))
        )
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def failed_count(self) -> int:
        """Deliveries given up on, all chats (an index range: quick whatever the history)."""
        query = (
            select(func.count()).select_from(deliveries_t).where(deliveries_t.c.state == "failed")
        )
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def delivery_counts(self) -> dict[str, int]:
        """Deliveries by state, all chats: ``{"pending": 3, "sent": 120, ...}``."""
        query = select(deliveries_t.c.state, func.count()).group_by(deliveries_t.c.state)
        with self._engine.connect() as conn:
            return {state: count for state, count in conn.execute(query)}

    def prune(self, before: date) -> tuple[int, int]:
        """Delete the alerts of trading days before ``before`` with their finished deliveries;
        an alert with a delivery still pending stays, with it. Returns (alerts, deliveries).

        One trading day per transaction, so that the first prune of a database kept for years
        never holds the write lock (and the alert writer) for long."""
        with self._engine.connect() as conn:
            days = conn.execute(
                select(alerts_t.c.day).where(alerts_t.c.day < before).distinct().order_by("day")
            ).scalars()
            old_days = list(days)
        alerts = deliveries = 0
        for day in old_days:
            a, d = self._prune_day(day)
            alerts, deliveries = alerts + a, deliveries + d
        return alerts, deliveries

    def _prune_day(self, day: date, chunk: int = CHUNK) -> tuple[int, int]:
        """One day: its finished deliveries, then its alerts left without any, ``chunk`` rows
        per transaction, so that no prune holds the write lock (and the alert writer) long.

        A fired alert goes only once its resolved event went (a later chunk: each chunk looks
        again), so a resolved event still pending keeps the alert it replies to."""
        of_day = select(alerts_t.c.id).where(alerts_t.c.day == day)
        finished = select(deliveries_t.c.id).where(
            deliveries_t.c.alert_id.in_(of_day), deliveries_t.c.state != "pending"
        )
        undelivered = exists().where(deliveries_t.c.alert_id == alerts_t.c.id)
        resolution = alerts_t.alias("resolution")
        unresolved = exists().where(resolution.c.resolves_id == alerts_t.c.id)
        lonely = of_day.where(~undelivered, ~unresolved)
        deliveries = self._delete_inchunks(deliveries_t, finished, chunk)
        alerts = self._delete_inchunks(alerts_t, lonely, chunk)
        return alerts, deliveries

    def _delete_inchunks(self, table: Any, ids: Select[tuple[int]], chunk: int) -> int:
        deleted = 0
        while True:
            with self._writer.begin() as conn:
                batch = list(conn.execute(ids.limit(chunk)).scalars())
                if not batch:
                    return deleted
                deleted += conn.execute(delete(table).where(table.c.id.in_(batch))).rowcount


def _alert_ended(event: Alert) -> Alert | None:
    """The fired alert a resolved event ends (anything else it names is linked to nothing)."""
    alert = event.resolves
    return alert if alert is not None and alert.kind == "fired" else None


def _pair_chats(
    alert: Alert, targets: dict[AlertKey, int], paired: dict[int, set[int]]
) -> set[int] | None:
    """The chats a resolved event may go to (those of its alert); None for a fired alert."""
    if alert.kind != "resolved":
        return None
    target = targets.get(alert_key(alert.resolves)) if alert.resolves is not None else None
    return paired.get(target, set()) if target is not None else set()


def _log_orphans(
    resolved: list[Alert], ids: dict[AlertKey, int], targets: dict[AlertKey, int]
) -> None:
    """Say which resolved events were stored without their alert (so without deliveries)."""
    for event in resolved:
        if alert_key(event) not in ids:
            continue  # stored before
        if event.resolves is not None and alert_key(event.resolves) in targets:
            continue
        log.info(
            "resolved event stored without its alert, not sent rule=%s ticker=%s time=%s seq=%d",
            event.rule,
            event.ticker,
            event.time.isoformat(),
            event.seq,
        )


def _resolved_times(conn: Connection, alert_ids: list[int]) -> dict[int, datetime]:
    """Alert id -> the tick time (KST) of its resolved event, for those that have one."""
    times: dict[int, datetime] = {}
    event = alerts_t.alias("event")
    for chunk in chunks(sorted(alert_ids)):
        found = conn.execute(
            select(event.c.resolves_id, *(event.c[n] for n in _TICK_COLUMN_NAMES))
            .where(event.c.resolves_id.in_(chunk))
            .order_by(event.c.id)
        )
        for resolves_id, *tick in found:
            times.setdefault(resolves_id, Tick._make(tick).time)
    return times


def _stored_alert(row: Any, resolved_at: datetime | None = None) -> StoredAlert:
    alert_id, rule, value, message, seq, created_at = row[_TICK_WIDTH:]
    tick = Tick._make(row[:_TICK_WIDTH])
    return StoredAlert(
        alert_id,
        rule,
        ticker=tick.ticker,
        value=value,
        message=message,
        seq=seq,
        tick=tick,
        created_at=created_at,
        resolved_at=resolved_at,
    )


# A resolved event's row carries its alert's delivery to the same chat (if any): its state
# and the message it went out in, which the resolved event replies to.
_alert_delivery = deliveries_t.alias("alert_delivery")
_PENDING_ROWS = (
    select(
        *_TICK_COLUMNS,
        deliveries_t.c.id,
        deliveries_t.c.chat_id,
        deliveries_t.c.attempts,
        deliveries_t.c.next_attempt_at,
        alerts_t.c.id,
        alerts_t.c.rule,
        alerts_t.c.value,
        alerts_t.c.message,
        alerts_t.c.kind,
        _alert_delivery.c.id,
        _alert_delivery.c.state,
        _alert_delivery.c.message_id,
    )
    .join(alerts_t, alerts_t.c.id == deliveries_t.c.alert_id)
    .outerjoin(
        _alert_delivery,
        (_alert_delivery.c.alert_id == alerts_t.c.resolves_id)
        & (_alert_delivery.c.chat_id == deliveries_t.c.chat_id),
    )
)


def _held(now: datetime, routed_here: Collection[str] = ()) -> Any:
    """True for a pending row its chat no longer wants at ``now``: rule or stock muted, stock
    not watched (unless the rule is routed to the chat: ``routed_here``), or a resolved event
    whose alert was held (muted) in that chat."""
    mute = mutes_t.alias("send_mute")
    muted = exists().where(
        mute.c.chat_id == deliveries_t.c.chat_id,
        mute.c.until > now,
        or_(
            and_(mute.c.kind == "rule", mute.c.target == alerts_t.c.rule),
            and_(mute.c.kind == "ticker", mute.c.target == alerts_t.c.ticker),
        ),
    )
    watch = watches_t.alias("send_watch")
    watched: Any = exists().where(
        watch.c.chat_id == deliveries_t.c.chat_id, watch.c.ticker == alerts_t.c.ticker
    )
    if routed_here:
        watched = watched | alerts_t.c.rule.in_(list(routed_here))
    alert_held = func.coalesce(_alert_delivery.c.state, "") == "muted"
    return case((muted | ~watched | alert_held, True), else_=False).label("held")


def _ids(ids: Collection[int]) -> str:
    shown = sorted(ids)
    return ",".join(map(str, shown[:20])) + ("…" if len(shown) > 20 else "")


def _pending(row: Any) -> PendingDelivery:
    (
        delivery_id,
        chat_id,
        attempts,
        _due,
        alert_id,
        rule,
        value,
        message,
        kind,
        resolves_delivery,
        resolves_state,
        reply_to,
    ) = row[_TICK_WIDTH : _TICK_WIDTH + 12]
    tick = Tick._make(row[:_TICK_WIDTH])
    return PendingDelivery(
        delivery_id,
        chat_id,
        alert_id,
        rule,
        tick.ticker,
        value,
        message,
        attempts,
        tick,
        kind=kind,
        resolves_delivery=resolves_delivery,
        resolves_state=resolves_state,
        reply_to=reply_to,
    )
