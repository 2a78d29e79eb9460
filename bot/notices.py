"""Notices to the admin chats: what an operator must hear of (a set-aside alert, a full queue, a
database that vanished), told once per kind until that kind is cleared.

``say(key, ...)`` tells the catalogue's message ``key`` (bot/messages: ``notice.*``) in the
configured language; ``tell(text)`` tells a text as it is (what the feed reports in KIS's words).
Both are plain and synchronous, callable from anywhere on the loop; the sending happens in a
task, best effort, through whatever ``attach()`` gave (the Telegram bot's admin sender). Until
something is attached they are logged and kept (the first ``EARLY`` of them), then sent on
``attach()``: what goes wrong at start (refused KIS credentials, no master file) happens before
Telegram is up. When sending fails, notices are only logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.messages import KOREAN, Catalogue

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[object]]
EARLY = 20  # notices kept until something is attached


class AdminNotices:
    def __init__(self, catalogue: Catalogue = KOREAN) -> None:
        self.catalogue = catalogue
        self._send: Send | None = None
        self._told: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._early: list[str] = []

    def attach(self, send: Send) -> None:
        self._send = send
        early, self._early = self._early, []
        for text in early:
            self._spawn(send, text)

    def tell(self, text: str, *, kind: str | None = None) -> None:
        """Tell the admins ``text``; with a ``kind``, only the first time until ``clear(kind)``."""
        if kind is not None:
            if kind in self._told:
                return
            self._told.add(kind)
        log.warning("admin notice kind=%s text=%r", kind or "-", text[:300])
        if self._send is None:
            if len(self._early) < EARLY:
                self._early.append(text)
            return
        self._spawn(self._send, text)

    def _spawn(self, send: Send, text: str) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(send, text))
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
