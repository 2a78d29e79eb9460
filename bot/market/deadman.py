"""The dead-man's switch on the feed: no tick for a while during a session is an incident.

On a trading day during a session, when the feed has delivered no tick of a wanted stock for
``silent_after``, the admins are told once (``10:02 이후 체결 데이터 없음 · 연결 상태 …``) and once
more when ticks flow again. Outside sessions, on holidays, or with nothing wanted, it stays quiet
and starts counting afresh when the next session opens. It only watches: reconnecting is the
connection's own job (its watchdog counts every message, PINGPONG included, so a quiet market
never makes it churn).

``check()`` is the whole logic, against an injectable clock; ``run()`` calls it every
``interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.kis.status import FeedStats
from bot.market.calendar import MarketCalendar
from bot.messages import KOREAN, Catalogue
from bot.ticks import KST

log = logging.getLogger(__name__)

Tell = Callable[[str], None]


class SilenceWatch:
    """Tells the admins when a session goes silent, and when it speaks again."""

    def __init__(
        self,
        calendar: MarketCalendar,
        stats: Callable[[], FeedStats],
        wanted: Callable[[], bool],
        tell: Tell,
        *,
        silent_after: timedelta = timedelta(minutes=2),
        say: Catalogue = KOREAN,
        clock: Callable[[], datetime] = lambda: datetime.now(KST),
        interval: float = 15.0,
    ) -> None:
        self.calendar = calendar
        self.stats = stats
        self.wanted = wanted
        self.tell = tell
        self.silent_after = silent_after
        self.say = say
        self.clock = clock
        self.interval = interval
        self._ticks = -1  # the feed's tick count at the last check
        self._quiet_since: datetime | None = None  # when ticks were last seen (or expected)
        self._told_since: datetime | None = None  # the silence the admins were told of

    @property
    def silent(self) -> bool:
        """Whether the admins were told of a silence that has not ended."""
        return self._told_since is not None

    def check(self) -> None:
        now = self.clock().astimezone(KST)
        stats = self.stats()
        moved = stats.ticks != self._ticks
        self._ticks = stats.ticks
        watching = self.wanted() and self.calendar.session_at(now) is not None
        if moved:
            self._flowing(now)
        if not watching:
            self._quiet_since = None  # counting starts again when a session opens
            return
        if moved or self._quiet_since is None:
            self._quiet_since = now
        if self._told_since is None and now - self._quiet_since >= self.silent_after:
            self._told_since = self._quiet_since
            since = self._quiet_since.strftime("%H:%M")
            log.warning("feed silent since=%s", since)
            message = self.say(
                "market.notice.silent", since=since, connections=self._connections(stats)
            )
            self.tell(message)

    def _flowing(self, now: datetime) -> None:
        if self._told_since is None:
            return
        minutes = max(1, round((now - self._told_since).total_seconds() / 60))
        since = self._told_since.strftime("%H:%M")
        self._told_since = None
        log.info("feed flowing again since=%s minutes=%d", since, minutes)
        self.tell(self.say("market.notice.flowing", since=since, minutes=minutes))

    def _connections(self, stats: FeedStats) -> str:
        if not stats.connections:
            return "-"
        parts = []
        for connection in stats.connections:
            key = "market.connected" if connection.connected else "market.disconnected"
            part = self.say(key, account=connection.account)
            if connection.last_error:
                part += f" ({connection.last_error[:100]})"
            parts.append(part)
        return ", ".join(parts)

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            try:
                self.check()
            except Exception:  # the watch must never take the bot down
                log.exception("silence watch failed")
            await asyncio.sleep(self.interval)
