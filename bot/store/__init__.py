"""The store: alerts and their deliveries, watches and mutes, in SQLite (or any SQLAlchemy URL).

``upgrade(url)`` applies the Alembic migrations; ``Store`` is the synchronous API; ``AlertWriter``
stores the engine's alerts from the event loop without blocking it. See docs/STORE.md.
"""

from bot.store.migrate import upgrade
from bot.store.repo import Mute, PendingDelivery, Store, StoredAlert
from bot.store.writer import AlertWriter

__all__ = ["AlertWriter", "Mute", "PendingDelivery", "Store", "StoredAlert", "upgrade"]
