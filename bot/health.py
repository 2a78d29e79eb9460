"""/healthz: is this bot doing its job? Judged in the metrics server's thread, from stamps the
loop and the database probe leave.

- the loop is alive: ``beat()`` is stamped by a loop task every second; a loop stalled for
  ``loop_stale`` seconds (a blocking call, a hot loop) fails the check;
- the database is writable: ``probe()`` runs a write transaction on the AsyncStore's write thread
  every ``probe_every`` seconds (``bot.store.db.write_probe``: SQLite's write lock, PostgreSQL's
  read-only state); the last one failed, or one has been waiting longer than ``probe_timeout``
  (a lock held by another process), fails the check;
- during a trading session, with tickers subscribed, ticks are recent: none for
  ``stale_ticks`` seconds fails the check. ``in_session(now)`` says when a session runs: the
  market calendar's (trading days, holidays, the config's sessions); by default its defaults.

A standby (PostgreSQL, not holding the lock) is healthy while its loop runs: ``role`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.clock import utc_now
from bot.market.calendar import MarketCalendar

log = logging.getLogger(__name__)

InSession = Callable[[datetime], bool]


def _in_a_session(calendar: MarketCalendar) -> InSession:
    return lambda now: calendar.session_at(now) is not None


@dataclass
class Feeding:
    """What the loop says about the feed at each beat."""

    subscribed: int = 0  # tickers acknowledged, all accounts
    last_tick_at: float | None = None  # monotonic time of the newest data frame, any account


class Health:
    """The stamps and the verdict. Stamps come from the loop, ``verdict()`` from any thread
    (each stamp is one attribute assignment: a reader sees the old value or the new one)."""

    def __init__(
        self,
        *,
        stale_ticks: float = 300.0,
        loop_stale: float = 10.0,
        probe_every: float = 5.0,
        probe_timeout: float = 15.0,
        in_session: InSession | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.stale_ticks = stale_ticks
        self.loop_stale = loop_stale
        self.probe_every = probe_every
        self.probe_timeout = probe_timeout
        self.in_session = in_session or _in_a_session(MarketCalendar())
        self._monotonic = monotonic
        self._wall = wall
        self.role = "starting"  # starting, standby, active, stopping (unhealthy)
        started = monotonic()
        self._started = started
        self._beat = started
        self._feeding = Feeding()
        self._probe_started: float | None = None  # a probe under way since
        self._probe_ok: float | None = None  # the last probe that worked, when it ended
        self._probe_error: str | None = None  # the last probe's error, None when it worked

    # -- stamps (the loop) -----------------------------------------------------------------

    def beat(self, feeding: Feeding | None = None) -> None:
        self._beat = self._monotonic()
        if feeding is not None:
            self._feeding = feeding

    def probe_started(self) -> None:
        self._probe_started = self._monotonic()

    def probe_done(self, error: str | None) -> None:
        self._probe_started = None
        self._probe_error = error
        if error is None:
            self._probe_ok = self._monotonic()

    @property
    def probe_error(self) -> str | None:
        """The last probe's error, None when it worked (or none ended yet)."""
        return self._probe_error

    # -- the verdict (any thread) ----------------------------------------------------------

    def verdict(self) -> tuple[bool, str]:
        """(healthy, one line saying why)."""
        now = self._monotonic()
        stalled = now - self._beat
        if stalled > self.loop_stale:
            return False, f"event loop stalled for {stalled:.0f} s"
        if self.role in ("starting", "standby"):
            return True, f"ok {self.role}"
        if self.role == "stopping":
            return False, "stopping"
        problem = self._database(now) or self._ticks(now)
        if problem:
            return False, problem
        return True, f"ok {self.role}"

    def _database(self, now: float) -> str | None:
        pending = self._probe_started
        if pending is not None and now - pending > self.probe_timeout:
            return f"database write waiting for {now - pending:.0f} s (locked or unreachable)"
        if self._probe_error is not None:
            return f"database not writable: {self._probe_error}"
        last = self._probe_ok if self._probe_ok is not None else self._started
        if now - last > self.probe_timeout + 3 * self.probe_every:
            return f"database not checked for {now - last:.0f} s"
        return None

    def _ticks(self, now: float) -> str | None:
        feeding = self._feeding
        if not feeding.subscribed or not self.in_session(self._wall()):
            return None
        last = feeding.last_tick_at if feeding.last_tick_at is not None else self._started
        if now - last > self.stale_ticks:
            return f"no ticks for {now - last:.0f} s during a trading session"
        return None


async def keep_health(
    health: Health,
    probe: Callable[[], Awaitable[None]],
    feeding: Callable[[], Feeding | None],
    *,
    every: float = 1.0,
) -> None:
    """The loop task: a beat every ``every`` seconds, a database probe every
    ``health.probe_every`` seconds (never two at once). Runs until cancelled."""
    loop = asyncio.get_running_loop()
    next_probe = loop.time()
    probing: asyncio.Task[None] | None = None
    try:
        while True:
            health.beat(feeding())
            if loop.time() >= next_probe and (probing is None or probing.done()):
                next_probe = loop.time() + health.probe_every
                probing = asyncio.ensure_future(_probe(health, probe))
            await asyncio.sleep(every)
    finally:
        if probing is not None:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing


async def _probe(health: Health, probe: Callable[[], Awaitable[None]]) -> None:
    health.probe_started()
    try:
        await probe()
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc  # SQLAlchemy's: the driver's own words
        reason = " ".join(str(cause).split())[:200] or type(exc).__name__
        if health.probe_error is None:  # a change: worth a line
            log.warning("database write probe failed error=%r", reason)
        health.probe_done(reason)
    else:
        if health.probe_error is not None:
            log.info("database write probe works again")
        health.probe_done(None)


# -- the health check command: `python -m bot.health [URL]` ---------------------------------

DEFAULT_URL = "http://127.0.0.1:9464/healthz"


def check(url: str = DEFAULT_URL, *, tries: int = 1, interval: float = 10.0) -> tuple[bool, str]:
    """GET ``url`` until it answers 200, at most ``tries`` times: (healthy, its one line)."""
    import urllib.error
    import urllib.request

    reason = "not asked"
    for attempt in range(tries):
        if attempt:
            time.sleep(interval)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return True, response.read().decode(errors="replace").strip()
        except urllib.error.HTTPError as exc:
            reason = exc.read().decode(errors="replace").strip() or f"HTTP {exc.code}"
        except OSError as exc:
            reason = f"no answer from {url}: {exc}"
    return False, reason


def main(argv: list[str] | None = None) -> int:
    """For Docker's HEALTHCHECK and the systemd health timer: exit 0 when healthy, else 1,
    printing the bot's one-line reason. Needs only Python (no curl in the image)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bot.health", description=main.__doc__)
    parser.add_argument("url", nargs="?", default=DEFAULT_URL)
    parser.add_argument("--tries", type=int, default=1, help="ask this often before failing")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between tries")
    args = parser.parse_args(argv)
    healthy, reason = check(args.url, tries=max(1, args.tries), interval=args.interval)
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
