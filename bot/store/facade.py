"""AsyncStore: the store for the event loop. No call of it runs on the loop.

Every method is the ``Store`` method of the same name, run in a worker thread: writes on one
thread, in the order they were asked (a write waiting for the database's lock, held by another
process say, holds back only other writes), reads on a small pool of their own (SQLite in WAL
mode never makes a read wait for a writer). The loop stays free to read frames and answer
PINGPONG whatever the database does.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import date, datetime
from typing import ParamSpec, TypeVar

from bot.store.chats import Mute
from bot.store.outbox import Failure, PendingDelivery, StoredAlert
from bot.store.repo import Store

P = ParamSpec("P")
T = TypeVar("T")


def on_writes(
    writes: Executor | None, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``call`` on the store's write thread, waited for: from a worker thread (housekeeping, the
    restart's rebuild), never the loop. Called in place without one (tools, tests)."""
    if writes is None:
        return call(*args, **kwargs)
    return writes.submit(call, *args, **kwargs).result()


class AsyncStore:
    """Awaitable store calls on worker threads; ``close()`` waits for calls under way."""

    def __init__(self, store: Store, *, readers: int = 2) -> None:
        self.sync = store  # for start-up and tools, off the loop
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        self._reads = ThreadPoolExecutor(readers, thread_name_prefix="store-read")

    async def _run(
        self, pool: ThreadPoolExecutor, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(call, *args, **kwargs))

    @property
    def write_thread(self) -> ThreadPoolExecutor:
        """The one thread that writes, for the AlertWriter to share."""
        return self._writes

    def close(self) -> None:
        """Let the calls under way finish (from a thread, or after the loop stopped)."""
        self._writes.shutdown(wait=True)
        self._reads.shutdown(wait=True)

    # -- the outbox --------------------------------------------------------------------------

    async def due_chats(self) -> list[int]:
        return await self._run(self._reads, self.sync.due_chats)

    async def due_deliveries(
        self, chat_id: int, limit: int, now: datetime
    ) -> list[PendingDelivery]:
        """Read on a reader thread; the rows the chat no longer wants (muted, unwatched) are
        closed as muted on the write thread, and not returned."""
        due, held = await self._run(self._reads, self.sync.due_rows, chat_id, limit, now)
        if held:
            await self._run(self._writes, self.sync.mark_muted, held)
        return due

    async def mark_sent(
        self, ids: Collection[int], sent_at: datetime, message_id: int | None = None
    ) -> None:
        await self._run(self._writes, self.sync.mark_sent, ids, sent_at, message_id)

    async def mark_retry(self, ids: Collection[int], error: str, at: datetime) -> None:
        await self._run(self._writes, self.sync.mark_retry, ids, error, at)

    async def postpone(self, ids: Collection[int], at: datetime) -> None:
        await self._run(self._writes, self.sync.postpone, ids, at)

    async def mark_failed(self, ids: Collection[int], error: str) -> None:
        await self._run(self._writes, self.sync.mark_failed, ids, error)

    async def mark_blocked(self, chat_id: int, error: str) -> None:
        await self._run(self._writes, self.sync.mark_blocked, chat_id, error)

    async def unblock(self, chat_id: int) -> bool:
        return await self._run(self._writes, self.sync.unblock, chat_id)

    async def blocked_chats(self) -> set[int]:
        return await self._run(self._reads, self.sync.blocked_chats)

    async def pending_count(self) -> int:
        return await self._run(self._reads, self.sync.pending_count)

    async def failed_count(self) -> int:
        return await self._run(self._reads, self.sync.failed_count)

    async def failures(self, limit: int = 3) -> list[Failure]:
        return await self._run(self._reads, self.sync.failures, limit)

    async def recent_alerts(
        self, *, ticker: str | None = None, limit: int = 10, chat_id: int | None = None
    ) -> list[StoredAlert]:
        return await self._run(
            self._reads, self.sync.recent_alerts, ticker=ticker, limit=limit, chat_id=chat_id
        )

    async def prune(self, before: date) -> tuple[int, int]:
        return await self._run(self._writes, self.sync.prune, before)

    # -- chats -------------------------------------------------------------------------------

    async def add_watches(self, chat_id: int, tickers: Collection[str]) -> list[str]:
        return await self._run(self._writes, self.sync.add_watches, chat_id, tickers)

    async def remove_watches(self, chat_id: int, tickers: Collection[str]) -> list[str]:
        return await self._run(self._writes, self.sync.remove_watches, chat_id, tickers)

    async def watches(self, chat_id: int) -> list[str]:
        return await self._run(self._reads, self.sync.watches, chat_id)

    async def all_watched(self) -> set[str]:
        return await self._run(self._reads, self.sync.all_watched)

    async def mute(
        self, chat_id: int, target: str, until: datetime, *, kind: str, now: datetime
    ) -> Mute:
        return await self._run(
            self._writes, self.sync.mute, chat_id, target, until, kind=kind, now=now
        )

    async def unmute(self, chat_id: int, target: str | None, *, now: datetime) -> int:
        return await self._run(self._writes, self.sync.unmute, chat_id, target, now=now)

    async def alert_in_chat(self, chat_id: int, alert_id: int) -> tuple[str, str] | None:
        return await self._run(self._reads, self.sync.alert_in_chat, chat_id, alert_id)

    async def set_quiet(self, chat_id: int, quiet: str | None) -> None:
        await self._run(self._writes, self.sync.set_quiet, chat_id, quiet)

    async def quiet(self, chat_id: int) -> str | None:
        return await self._run(self._reads, self.sync.quiet, chat_id)

    async def mutes(self, chat_id: int, now: datetime) -> list[Mute]:
        return await self._run(self._reads, self.sync.mutes, chat_id, now)

    async def move_chat(self, old: int, new: int) -> None:
        await self._run(self._writes, self.sync.move_chat, old, new)
