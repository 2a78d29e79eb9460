"""Chat preferences: which stocks each chat watches, what it muted, whether it blocked the bot."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, delete, func, select, update

from bot.clock import utc_now
from bot.codes import is_stock_code, stock_code
from bot.store.tables import (
    Database,
    aware,
    blocked_t,
    chat_settings_t,
    deliveries_t,
    insert_on_conflict,
    mutes_t,
    watches_t,
)

log = logging.getLogger(__name__)

_ERROR_MAX = 500  # characters of a block reason kept


@dataclass(frozen=True, slots=True)
class Mute:
    chat_id: int
    target: str  # a rule id or a ticker
    kind: str  # "rule" or "ticker"
    until: datetime  # UTC


class ChatPreferences(Database):
    """Watches, mutes and blocked chats (one half of ``Store``)."""

    def mark_blocked(self, chat_id: int, error: str) -> None:
        """The chat blocked the bot: its pending deliveries become blocked, and no new ones are
        made for it until ``unblock(chat_id)``."""
        now = utc_now()
        error = error[:_ERROR_MAX]
        row = {"chat_id": chat_id, "error": error, "blocked_at": now}
        with self._writer.begin() as conn:
            block = insert_on_conflict(conn, blocked_t, ["chat_id"], ["error", "blocked_at"])
            conn.execute(block, row)
            result = conn.execute(
                update(deliveries_t)
                .where(deliveries_t.c.chat_id == chat_id)
                .where(deliveries_t.c.state == "pending")
                .values(state="blocked", last_error=error)
            )
        log.info("chat blocked the bot chat=%s pending_blocked=%d", chat_id, result.rowcount)

    def unblock(self, chat_id: int) -> bool:
        """The chat talks to the bot again; True if it was marked blocked. Alerts from now on
        reach it again (those blocked meanwhile are not resent)."""
        if chat_id not in self.blocked_chats():  # the usual case: read only, never waits
            return False
        with self._writer.begin() as conn:
            result = conn.execute(delete(blocked_t).where(blocked_t.c.chat_id == chat_id))
        if result.rowcount:
            log.info("chat unblocked chat=%s", chat_id)
        return bool(result.rowcount)

    def blocked_chats(self) -> set[int]:
        with self._engine.connect() as conn:
            return set(conn.execute(select(blocked_t.c.chat_id)).scalars())

    # -- watches -----------------------------------------------------------------------------

    def add_watches(self, chat_id: int, tickers: Collection[str]) -> list[str]:
        """Watch these tickers in this chat; return those newly added, in the order given.

        Raises ValueError (and adds nothing) when one is not a 6-character code.
        """
        wanted = list(dict.fromkeys(stock_code(t) for t in tickers))
        if not wanted:
            return []
        rows = [{"chat_id": chat_id, "ticker": t, "created_at": utc_now()} for t in wanted]
        with self._writer.begin() as conn:
            statement = insert_on_conflict(conn, watches_t, ("chat_id", "ticker"))
            new = set(conn.execute(statement.returning(watches_t.c.ticker), rows).scalars())
        added = [t for t in wanted if t in new]
        if added:
            log.info("watches added chat=%s tickers=%s", chat_id, ",".join(added))
        return added

    def remove_watches(self, chat_id: int, tickers: Collection[str]) -> list[str]:
        """Stop watching; return the tickers actually removed, in the order given."""
        asked = list(dict.fromkeys(tickers))
        if not asked:
            return []
        with self._writer.begin() as conn:
            have = self._watched_by(conn, chat_id)
            removed = [t for t in asked if t in have]
            if removed:
                conn.execute(
                    delete(watches_t)
                    .where(watches_t.c.chat_id == chat_id)
                    .where(watches_t.c.ticker.in_(removed))
                )
        if removed:
            log.info("watches removed chat=%s tickers=%s", chat_id, ",".join(removed))
        return removed

    @staticmethod
    def _watched_by(conn: Connection, chat_id: int) -> set[str]:
        query = select(watches_t.c.ticker).where(watches_t.c.chat_id == chat_id)
        return set(conn.execute(query).scalars())

    def watches(self, chat_id: int) -> list[str]:
        """This chat's tickers, sorted."""
        query = (
            select(watches_t.c.ticker)
            .where(watches_t.c.chat_id == chat_id)
            .order_by(watches_t.c.ticker)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def all_watched(self) -> set[str]:
        """Every ticker some allowed chat watches: what the feed should subscribe."""
        if not self.allowed_chat_ids:
            return set()
        query = select(watches_t.c.ticker).distinct().where(watches_t.c.chat_id.in_(self._allowed))
        with self._engine.connect() as conn:
            return set(conn.execute(query).scalars())

    # -- mutes -------------------------------------------------------------------------------

    def mute(
        self,
        chat_id: int,
        target: str,
        until: datetime,
        *,
        kind: str | None = None,
        now: datetime | None = None,
    ) -> Mute:
        """Silence ``target`` (a rule id or a ticker) in this chat until ``until``; muting it
        again replaces the end. ``kind`` defaults to "ticker" for a 6-character code, else
        "rule" (the service always says which). Mutes over at ``now`` are tidied away."""
        until = aware(until, "until")
        now = aware(now or utc_now(), "now")
        if kind is None:
            kind = "ticker" if is_stock_code(target) else "rule"
        if kind not in ("rule", "ticker"):
            raise ValueError(f"mute kind must be 'rule' or 'ticker', not {kind!r}")
        if not target:
            raise ValueError("nothing to mute: the target is empty")
        row = dict(chat_id=chat_id, kind=kind, target=target, until=until, created_at=now)
        with self._writer.begin() as conn:
            conn.execute(delete(mutes_t).where(mutes_t.c.until <= now))  # anyone's: tidy up
            key = ["chat_id", "kind", "target"]
            conn.execute(insert_on_conflict(conn, mutes_t, key, ["until", "created_at"]), row)
        log.info("muted chat=%s kind=%s target=%s until=%s", chat_id, kind, target, until)
        return Mute(chat_id, target, kind, until.astimezone(UTC))

    def unmute(
        self, chat_id: int, target: str | None = None, *, now: datetime | None = None
    ) -> int:
        """End this chat's mute of ``target`` (every kind), or all its mutes; return how many
        were still active."""
        now = aware(now or utc_now(), "now")
        condition = mutes_t.c.chat_id == chat_id
        if target is not None:
            condition = and_(condition, mutes_t.c.target == target)
        with self._writer.begin() as conn:
            active = conn.execute(
                select(func.count()).select_from(mutes_t).where(condition, mutes_t.c.until > now)
            ).scalar_one()
            conn.execute(delete(mutes_t).where(condition))
        if active:
            log.info("unmuted chat=%s target=%s count=%d", chat_id, target or "*", active)
        return active

    # -- quiet hours -------------------------------------------------------------------------

    def set_quiet(self, chat_id: int, quiet: str | None) -> None:
        """This chat's quiet hours (``"22:00-07:00"``, checked by the caller), or none."""
        row = {"chat_id": chat_id, "quiet": quiet, "updated_at": utc_now()}
        with self._writer.begin() as conn:
            upsert = insert_on_conflict(
                conn, chat_settings_t, ["chat_id"], ["quiet", "updated_at"]
            )
            conn.execute(upsert, row)
        log.info("quiet hours set chat=%s quiet=%s", chat_id, quiet or "-")

    def quiet(self, chat_id: int) -> str | None:
        """This chat's quiet hours as stored, None when it has none."""
        query = select(chat_settings_t.c.quiet).where(chat_settings_t.c.chat_id == chat_id)
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def allow(self, chat_id: int) -> None:
        """Let one more chat receive alerts (a group that became a supergroup)."""
        self.allowed_chat_ids = self.allowed_chat_ids | {chat_id}
        self._allowed = sorted(self.allowed_chat_ids)

    def move_chat(self, old: int, new: int) -> None:
        """A group became a supergroup with a new id: its watches, mutes and pending deliveries
        follow it (the history of what was sent stays under the old id), and it is allowed."""
        with self._writer.begin() as conn:
            moved = select(chat_settings_t.c.chat_id).where(chat_settings_t.c.chat_id == new)
            if conn.execute(moved).first() is None:  # the new id's own settings win
                conn.execute(
                    update(chat_settings_t)
                    .where(chat_settings_t.c.chat_id == old)
                    .values(chat_id=new)
                )
            for table in (watches_t, mutes_t):
                conn.execute(update(table).where(table.c.chat_id == old).values(chat_id=new))
            conn.execute(
                update(deliveries_t)
                .where(deliveries_t.c.chat_id == old, deliveries_t.c.state == "pending")
                .values(chat_id=new)
            )
            conn.execute(delete(blocked_t).where(blocked_t.c.chat_id.in_([old, new])))
        self.allow(new)
        log.info("chat moved old=%s new=%s", old, new)

    def mutes(self, chat_id: int, now: datetime) -> list[Mute]:
        """This chat's mutes still active at ``now``, the soonest to end first."""
        now = aware(now, "now")
        query = (
            select(mutes_t.c.target, mutes_t.c.kind, mutes_t.c.until)
            .where(mutes_t.c.chat_id == chat_id, mutes_t.c.until > now)
            .order_by(mutes_t.c.until, mutes_t.c.target)
        )
        with self._engine.connect() as conn:
            return [Mute(chat_id, t, k, u) for t, k, u in conn.execute(query)]
