"""The Store: the bot's database, as one object made of two halves, the outbox (alerts and their
deliveries, bot.store.outbox) and the chat preferences (watches, mutes, blocked chats,
bot.store.chats).

Synchronous and short: every method is one transaction and returns plain frozen dataclasses, never
ORM objects, so callers never see a session. On the event loop it is used only through the
``AsyncStore`` facade (bot.store.facade) and the ``AlertWriter`` (bot.store.writer).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from alembic.runtime.migration import MigrationContext
from sqlalchemy import make_url

from bot.store.chats import ChatPreferences
from bot.store.db import BUSY_TIMEOUT, make_engine, safe_url, writer
from bot.store.migrate import head_revision
from bot.store.outbox import Outbox

log = logging.getLogger(__name__)

_BACKENDS = ("sqlite", "postgresql")  # the databases pgmbot runs on


class StoreError(RuntimeError):
    """The database cannot be used as it is (e.g. not migrated)."""


class Store(Outbox, ChatPreferences):
    """The bot's database. Thread-safe: each call checks a connection out of the pool."""

    def __init__(
        self,
        url: str,
        *,
        allowed_chat_ids: Collection[int] = (),
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        """Open the database at ``url``, which must be migrated (``upgrade(url)``); raises
        StoreError when it is not, or is newer than this code."""
        self.url = url
        self._set_allowed(allowed_chat_ids)
        backend = make_url(url).get_backend_name()
        if backend not in _BACKENDS:
            raise StoreError(f"pgmbot keeps its data in SQLite or PostgreSQL, not {backend}")
        self._engine = make_engine(url, busy_timeout=busy_timeout)
        self._writer = writer(self._engine)
        try:
            self._check_schema()
        except BaseException:
            self._engine.dispose()
            raise
        log.info("store opened url=%s allowed_chats=%d", safe_url(url), len(self.allowed_chat_ids))

    def close(self) -> None:
        self._engine.dispose()

    def _check_schema(self) -> None:
        with self._engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        head = head_revision()
        if current != head:
            raise StoreError(
                f"the database {safe_url(self.url)} is at schema revision {current or 'none'}, "
                f"this pgmbot needs {head}: run `pgmbot db upgrade`"
            )
