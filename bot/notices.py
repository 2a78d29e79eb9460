"""Notices to the admin chats: what an operator must hear of (a set-aside alert, a full queue, a
database that vanished), told once per kind until that kind is cleared.

``say(key, ...)`` tells the catalogue's message ``key`` (bot/messages: ``notice.*``) in the
configured language; ``tell(text)`` tells a text as it is (what the feed reports in KIS's words).
Both are plain and synchronous, callable from anywhere on the loop; the sending happens in a
task, best effort, through whatever ``attach()`` gave (the Telegram bot's admin sender). Until
something is attached, or when it fails, notices are only logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.messages import KOREAN, Catalogue

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[object]]


class AdminNotices:
    def __init__(self, catalogue: Catalogue = KOREAN) -> None:
        self.catalogue = catalogue
        self._send: Send | None = None
        self._told: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, send: Send) -> None:
        self._send = send

    def tell(self, text: str, *, kind: str | None = None) -> None:
        """Tell the admins ``text``; with a ``kind``, only the first time until ``clear(kind)``."""
        if kind is not None:
            if kind in self._told:
                return
            self._told.add(kind)
        log.warning("admin notice kind=%s text=%r", kind or "-", text[:300])
        if self._send is None:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(self._send, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def say(self, key: str, /, *, kind: str | None = None, **values: object) -> None:
        """Tell the admins the catalogue's message ``key`` filled with ``values`` (see tell)."""
        self.tell(self.catalogue(key, **values), kind=kind)

    def clear(self, kind: str) -> bool:
        """The trouble of ``kind`` is over; True if the admins had been told of it."""
        if kind in self._told:
            self._told.discard(kind)
            return True
        return False

    async def _deliver(self, send: Send, text: str) -> None:
        try:
            await send(text)
        except Exception as exc:  # a notice must never take anything down
            log.warning("admin notice failed error=%r", str(exc)[:300])

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (a bound)
        """Let notices under way finish (at shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
