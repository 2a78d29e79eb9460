"""The digests' table and the chats that turned them off: the digest's outbox.

A digest is stored before it is sent, under the unique key (chat, trading day, slot): making it
again after a restart inserts nothing, and a stored one not yet confirmed sent is sent after a
restart. It works on the Store's own database engines, so its writes queue with the bot's others
(one writer per process) instead of waiting on them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update

from bot.store.models import Base, DigestOffRow, DigestRow
from bot.store.repo import Store
from bot.store.tables import aware, insert_on_conflict

T = TypeVar("T")
digests_t = Base.metadata.tables[DigestRow.__tablename__]
digest_off_t = Base.metadata.tables[DigestOffRow.__tablename__]
_ERROR_MAX = 500


@dataclass(frozen=True, slots=True)
class NewDigest:
    chat_id: int
    day: date
    slot: str
    text: str  # HTML


@dataclass(frozen=True, slots=True)
class StoredDigest:
    id: int
    chat_id: int
    day: date
    slot: str
    text: str
    attempts: int


class DigestStore:
    """Digests and the opt-outs, on ``store``'s database (synchronous: call it off the loop)."""

    def __init__(self, store: Store) -> None:
        # The Store's engines: one pool, one writer lock per process (see bot.store.db).
        self._engine = store._engine
        self._writer = store._writer

    def turn(self, chat_id: int, on: bool, now: datetime) -> None:
        """The chat wants digests (``on``) or not."""
        with self._writer.begin() as conn:
            if on:
                conn.execute(delete(digest_off_t).where(digest_off_t.c.chat_id == chat_id))
            else:
                statement = insert_on_conflict(conn, digest_off_t, ["chat_id"])
                conn.execute(statement, {"chat_id": chat_id, "created_at": aware(now, "now")})

    def turned_off(self) -> set[int]:
        with self._engine.connect() as conn:
            return set(conn.execute(select(digest_off_t.c.chat_id)).scalars())

    def add(self, digests: Sequence[NewDigest], now: datetime) -> int:
        """Store digests not stored yet (same chat, day and slot: skipped); how many were new."""
        if not digests:
            return 0
        rows = [
            {
                "chat_id": d.chat_id,
                "day": d.day,
                "slot": d.slot,
                "text": d.text,
                "state": "pending",
                "attempts": 0,
                "created_at": aware(now, "now"),
            }
            for d in digests
        ]
        with self._writer.begin() as conn:
            statement = insert_on_conflict(conn, digests_t, ["chat_id", "day", "slot"])
            result = conn.execute(statement.returning(digests_t.c.id), rows)
            return len(result.all())

    def made(self, day: date, slot: str) -> set[int]:
        """The chats that have this day's digest of ``slot`` stored, whatever its state."""
        query = select(digests_t.c.chat_id).where(digests_t.c.day == day, digests_t.c.slot == slot)
        with self._engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def pending(self, limit: int = 100) -> list[StoredDigest]:
        query = (
            select(
                digests_t.c.id,
                digests_t.c.chat_id,
                digests_t.c.day,
                digests_t.c.slot,
                digests_t.c.text,
                digests_t.c.attempts,
            )
            .where(digests_t.c.state == "pending")
            .order_by(digests_t.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [StoredDigest(*row) for row in conn.execute(query)]

    def mark_sent(self, digest_id: int, at: datetime) -> None:
        self._update(digest_id, {"state": "sent", "sent_at": aware(at, "at")})

    def mark_retry(self, digest_id: int, error: str) -> None:
        self._update(
            digest_id, {"attempts": digests_t.c.attempts + 1, "last_error": error[:_ERROR_MAX]}
        )

    def mark_failed(self, digest_id: int, error: str) -> None:
        self._update(
            digest_id,
            {
                "state": "failed",
                "attempts": digests_t.c.attempts + 1,
                "last_error": error[:_ERROR_MAX],
            },
        )

    def _update(self, digest_id: int, values: dict[str, object]) -> None:
        with self._writer.begin() as conn:
            conn.execute(
                update(digests_t)
                .where(digests_t.c.id == digest_id, digests_t.c.state == "pending")
                .values(values)
            )

    def counts(self) -> dict[str, int]:
        """Digests by state (for tests and /status)."""
        query = select(digests_t.c.state, func.count()).group_by(digests_t.c.state)
        with self._engine.connect() as conn:
            return {state: count for state, count in conn.execute(query)}


class AsyncDigests:
    """``DigestStore`` for the event loop: writes on the store's one write thread (with the
    bot's other writes, never beside them), reads in a worker thread."""

    def __init__(self, store: DigestStore, writes: Executor | None = None) -> None:
        self.sync = store
        self._writes = writes

    async def _write(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writes, functools.partial(call, *args))

    async def turn(self, chat_id: int, on: bool, now: datetime) -> None:
        await self._write(self.sync.turn, chat_id, on, now)

    async def turned_off(self) -> set[int]:
        return await asyncio.to_thread(self.sync.turned_off)

    async def add(self, digests: Sequence[NewDigest], now: datetime) -> int:
        return await self._write(self.sync.add, digests, now)

    async def made(self, day: date, slot: str) -> set[int]:
        return await asyncio.to_thread(self.sync.made, day, slot)

    async def pending(self, limit: int = 100) -> list[StoredDigest]:
        return await asyncio.to_thread(self.sync.pending, limit)

    async def mark_sent(self, digest_id: int, at: datetime) -> None:
        await self._write(self.sync.mark_sent, digest_id, at)

    async def mark_retry(self, digest_id: int, error: str) -> None:
        await self._write(self.sync.mark_retry, digest_id, error)

    async def mark_failed(self, digest_id: int, error: str) -> None:
        await self._write(self.sync.mark_failed, digest_id, error)
