"""One active bot among several on one PostgreSQL database: a session-level advisory lock.

    lock = LeaderLock(url, check_every=1.0, takeover_delay=5.0, on_lost=app.lost)
    await lock.acquire()      # a standby waits here, serving nothing, until it is the active one
    ...                       # feed, Telegram, sender
    lock.quiet()              # after on_lost: the feed and the sender are stopped
    lock.release()

The lock lives on a connection of its own (psycopg, autocommit), held by a daemon thread that
tries ``pg_try_advisory_lock`` every ``check_every`` seconds while it stands by and, once it holds
the lock, checks every ``check_every`` seconds that its session still holds it. PostgreSQL
releases a session lock when the session ends: the process died (kill -9 closes its sockets), or
its connection broke. The other processes cannot tell the two apart, so the ordering is what
makes two active bots impossible (docs/OPERATIONS.md):

- the old active notices within ``2 * check_every`` (the next check, bounded by the connection's
  ``tcp_user_timeout``) and stops its feed and sender at once (``on_lost``); if its loop does not
  confirm that (``quiet()``) in time, the thread ends the process (``os._exit``), which closes
  the KIS and Telegram connections;
- a standby that got the lock waits ``takeover_delay`` (at least ``2 * check_every + 1`` s)
  before ``acquire()`` returns, so the old one is gone from KIS and Telegram before it starts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import make_url

from bot.store.db import safe_url

log = logging.getLogger(__name__)

LOCK_KEY = 0x70676D62  # "pgmb": one bot per database (fits 31 bits: pg_locks shows it as objid)
_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND classid = 0 AND objid = %s AND objsubid = 1 AND granted"
)
EXIT_STUCK = 70  # the loop did not stop the feed in time after the lock was lost


def libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as libpq reads it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class LeaderLock:
    """Hold the advisory lock or wait for it; tell ``on_lost`` (on the loop) when it is gone."""

    def __init__(
        self,
        url: str,
        *,
        check_every: float = 1.0,
        takeover_delay: float = 5.0,
        on_lost: Callable[[str], object],
        key: int = LOCK_KEY,
    ) -> None:
        if takeover_delay < 2 * check_every + 1:
            raise ValueError("takeover_delay must be at least 2 * check_every + 1")
        self.url = url
        self.check_every = check_every
        self.takeover_delay = takeover_delay
        self.key = key
        self._on_lost = on_lost
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acquired: asyncio.Event | None = None
        self._stop = threading.Event()
        self._quiet = threading.Event()  # the loop stopped the feed and sender after a loss
        self._thread: threading.Thread | None = None
        self._connection: Any = None  # psycopg.Connection, in the thread only
        self.held = False
        self.lost: str | None = None
        self.waited = 0.0  # seconds spent standing by

    async def acquire(self) -> None:
        """Return once this process holds the lock and ``takeover_delay`` has passed."""
        self._loop = asyncio.get_running_loop()
        self._acquired = asyncio.Event()
        started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="standby-lock", daemon=True)
        self._thread.start()
        await self._acquired.wait()
        if self.lost is not None:
            raise LockLost(self.lost)
        self.waited = time.monotonic() - started
        log.info("database lock held, waiting before taking over seconds=%g", self.takeover_delay)
        await asyncio.sleep(self.takeover_delay)  # the old active is gone meanwhile
        if self.lost is not None:
            raise LockLost(self.lost)

    def quiet(self) -> None:
        """After ``on_lost``: the feed and the sender are stopped (the watchdog stands down)."""
        self._quiet.set()

    def release(self) -> None:
        """Stop the thread; closing the connection releases the lock."""
        self._stop.set()
        self._quiet.set()
        if self._thread is not None:
            self._thread.join(timeout=self.check_every * 2 + 5)
            self._thread = None

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        told_waiting = told_unreachable = False
        try:
            while not self._stop.is_set():
                try:
                    if not self.held:
                        locked = self._try_lock()
                        told_unreachable = False
                        if locked:
                            self.held = True
                            log.info("database lock taken key=%d", self.key)
                            self._to_loop(self._set_acquired)
                        elif not told_waiting:
                            told_waiting = True
                            log.info(
                                "standing by: another pgmbot is active on %s", safe_url(self.url)
                            )
                    elif not self._still_held():
                        self._lose("the lock's session no longer holds it")
                        return
                except Exception as exc:
                    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
                    self._close()
                    if self.held:
                        self._lose(f"lock connection failed: {reason}")
                        return
                    if not told_unreachable:  # once per spell: it retries quietly
                        told_unreachable = True
                        log.warning("standby cannot reach the database error=%r", reason)
                self._stop.wait(self.check_every)
        finally:
            self._close()

    def _connect(self) -> Any:
        import psycopg

        if self._connection is None:
            timeout_ms = max(int(self.check_every * 1000), 500)
            idle = max(1, int(self.check_every))
            self._connection = psycopg.connect(
                libpq_url(self.url),
                autocommit=True,
                connect_timeout=max(2, math.ceil(self.check_every * 2)),
                application_name="pgmbot-lock",
                # A check that cannot be sent or answered fails within about check_every.
                tcp_user_timeout=timeout_ms,
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=1,
                keepalives_count=2,
                # The server's side: a host that died (its sockets never closed) is noticed by
                # keepalives within seconds, not the OS default of two hours, so its lock goes.
                options=(
                    f"-c statement_timeout={timeout_ms} -c tcp_keepalives_idle={idle}"
                    " -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2"
                ),
            )
        return self._connection

    def _try_lock(self) -> bool:
        row = self._connect().execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def _still_held(self) -> bool:
        row = self._connect().execute(_HELD, (self.key,)).fetchone()
        return bool(row and row[0])

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:  # already broken: nothing more to release
                log.debug("lock connection close failed error=%r", exc)

    def _lose(self, reason: str) -> None:
        """The lock is gone: the loop stops the feed and the sender now; should it not answer
        in time, the process ends (its sockets close with it), before a standby can start."""
        self.held = False
        self.lost = reason
        log.error("database lock lost, stopping the feed and the sender reason=%s", reason)
        self._close()
        self._to_loop(self._tell_lost, reason)
        grace = max(0.5, self.takeover_delay - 2 * self.check_every - 0.5)
        if not self._quiet.wait(grace) and not self._stop.is_set():
            log.critical("feed not stopped %.1f s after the lock was lost: exiting", grace)
            logging.shutdown()
            os._exit(EXIT_STUCK)

    def _to_loop(self, call: Callable[..., object], *args: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(call, *args)

    def _set_acquired(self) -> None:
        if self._acquired is not None:
            self._acquired.set()

    def _tell_lost(self, reason: str) -> None:
        self._set_acquired()  # a loss while still waiting to take over ends acquire()
        self._on_lost(reason)


class LockLost(RuntimeError):
    """The database lock was lost before this bot took over."""
