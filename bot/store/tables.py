"""What the store's two halves share: the tables, the database they are in, small helpers."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.models import (
    AlertRow,
    Base,
    BlockedChatRow,
    ChatSettingsRow,
    DeliveryRow,
    MuteRow,
    WatchRow,
)

CHUNK = 400  # rows per IN (...) list: under SQLite's bound-parameter limit with room to spare

alerts_t, deliveries_t, watches_t, mutes_t, blocked_t, chat_settings_t = (
    Base.metadata.tables[row.__tablename__]
    for row in (AlertRow, DeliveryRow, WatchRow, MuteRow, BlockedChatRow, ChatSettingsRow)
)


class Database:
    """The engine a store half works on, and the chats that may receive alerts."""

    _engine: Engine
    _writer: Engine  # the same engine; its transactions take SQLite's write lock at BEGIN
    allowed_chat_ids: frozenset[int]
    _allowed: list[int]  # sorted, for IN (...)

    def _set_allowed(self, chat_ids: Collection[int]) -> None:
        self.allowed_chat_ids = frozenset(chat_ids)
        self._allowed = sorted(self.allowed_chat_ids)


def aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_on_conflict(
    conn: Connection, table: Any, key: Sequence[str], update: Sequence[str] = ()
) -> Insert:
    """``INSERT … ON CONFLICT (key) DO NOTHING``, or ``DO UPDATE`` of the ``update`` columns.

    Never look first, then insert: on PostgreSQL two transactions that both looked and saw
    nothing would both insert, and the second would fail on the key.
    """
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table)
    if update:
        changed = {name: statement.excluded[name] for name in update}
        return statement.on_conflict_do_update(index_elements=list(key), set_=changed)
    return statement.on_conflict_do_nothing(index_elements=list(key))
