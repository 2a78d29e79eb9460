"""The store: alerts and their deliveries, watches and mutes, in SQLite or PostgreSQL.

``upgrade(url)`` applies the Alembic migrations; ``Store`` is the synchronous API (the outbox and
the chat preferences); ``AsyncStore`` is the same for the event loop, on worker threads;
``AlertWriter`` stores the engine's alerts from the loop without blocking it. See docs/STORE.md.
"""

from bot.store.chats import Mute
from bot.store.facade import AsyncStore
from bot.store.migrate import upgrade
from bot.store.outbox import PendingDelivery, StoredAlert
from bot.store.repo import Store
from bot.store.writer import AlertWriter

__all__ = [
    "AlertWriter",
    "AsyncStore",
    "Mute",
    "PendingDelivery",
    "Store",
    "StoredAlert",
    "upgrade",
]
