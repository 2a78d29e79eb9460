"""The daily digest: after the close, each chat gets its stocks ranked by the day's program net
buying and the day's alerts per rule, once per trading day and slot.

    close   ``digest.time`` (15:45 KST by default), after the regular session
    after   ``digest.after`` (optional, e.g. 20:05), after the NXT after-market

At a slot's time on a trading day, every allowed chat that watches a stock with figures today
and has not turned the digest off (``/digest off``) gets one row in the ``digests`` table (its
outbox, bot.charts.digest_store), the text made then; rows still pending are sent and marked
sent once Telegram confirmed. A restart makes the rows again (the unique key stores nothing new)
and sends those not confirmed: no digest lost, none sent twice. Trading days come from
``is_trading_day`` (weekdays unless the market calendar is given).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import date, datetime, timedelta

from bot.amounts import format_field
from bot.charts.digest_store import AsyncDigests, NewDigest, StoredDigest
from bot.charts.replies import signed
from bot.charts.service import ChartService
from bot.charts.settings import DigestSettings
from bot.clock import utc_now
from bot.messages import Catalogue
from bot.notify.format import esc
from bot.notify.transport import ChatBlocked, DeliveryError, Rejected, RetryLater, Transport
from bot.ticks import KST

log = logging.getLogger(__name__)

EVERY = 30.0  # seconds between two looks at the clock
MAX_ATTEMPTS = 10  # sends of one digest that failed for now, then it is given up
MAX_STOCKS = 30  # stocks one digest ranks
TOP_CURVES = 5  # stocks drawn in the digest's picture
NET = "NTBY_TR_PBMN"
PACE = 0.05  # seconds between two digests sent: well under Telegram's 30 messages a second
STALE = timedelta(days=1)  # a pending digest older than this is given up, not sent late


def weekdays(day: date) -> bool:
    """The default calendar: Monday to Friday (the market calendar knows the holidays)."""
    return day.weekday() < 5


class Digests:
    """Makes the digests at their time and sends them through their outbox; ``run()`` until
    cancelled."""

    def __init__(
        self,
        settings: DigestSettings,
        store: AsyncDigests,
        charts: ChartService,
        transport: Transport,
        *,
        chats: Callable[[], Awaitable[Collection[int]]],
        watches: Callable[[int], Awaitable[list[str]]],
        is_trading_day: Callable[[date], bool] = weekdays,
        ready: Callable[[], bool] = lambda: True,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        say: Catalogue | None = None,
        tag: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.settings = settings
        self.store = store
        self.charts = charts
        self.transport = transport
        self._chats = chats  # the allowed chats that have not blocked the bot
        self._watches = watches
        self.is_trading_day = is_trading_day
        self._ready = ready  # the series holds the whole day (rebuilt after a restart)
        self._clock = clock
        self._sleep = sleep
        self.say = say or charts.say
        self._tag = tag  # the demo's tag line on every message
        self._made: set[tuple[date, str]] = set()

    async def run(self, every: float = EVERY) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # the next round tries again; a digest row waits meanwhile
                log.exception("digest round failed")
            await self._sleep(every)

    async def tick(self) -> None:
        """One look at the clock: make what is due, send what waits."""
        now = self._clock()
        local = now.astimezone(KST)
        day = local.date()
        if self.settings.enabled and self.is_trading_day(day) and self._ready():
            for slot, at in self.settings.slots():
                if local.time() >= at and (day, slot) not in self._made:
                    await self.make(day, slot, now)
                    self._made.add((day, slot))
        await self.send_pending(now)

    async def make(self, day: date, slot: str, now: datetime) -> int:
        """Store this slot's digest for every chat that gets one; how many were new."""
        off = await self.store.turned_off()
        made = await self.store.made(day, slot)
        digests = []
        for chat_id in sorted(await self._chats()):
            if chat_id in off or chat_id in made:
                continue
            text = self.compose(await self._watches(chat_id), day, slot)
            if text is not None:
                digests.append(NewDigest(chat_id, day, slot, text))
        added = await self.store.add(digests, now)
        log.info("digests made day=%s slot=%s chats=%d", day, slot, added)
        return added

    def compose(self, tickers: Iterable[str], day: date, slot: str) -> str | None:
        """The digest's HTML for a chat watching ``tickers``; None when none has a figure."""
        rows = [row for row in self.charts.ranked(list(tickers)) if row.figures is not None]
        if not rows or self.charts.series.day != day:
            return None
        say = self.say
        lines = [f"<b>{say(f'charts.digest.head.{slot}', day=day.isoformat())}</b>"]
        for place, row in enumerate(rows[:MAX_STOCKS], start=1):
            assert row.figures is not None
            value = row.figures.last(NET)
            lines.append(
                say(
                    "charts.digest.row",
                    place=place,
                    stock=esc(row.label),
                    value=esc(format_field(NET, value)),
                    thirty=esc(signed(NET, row.figures.change(NET, 30))),
                )
            )
        fired = Counter(
            marker.rule
            for row in rows
            for marker in (row.figures.alerts if row.figures is not None else ())
            if marker.kind == "fired"
        )
        lines.append("")
        if fired:
            lines.append(say("charts.digest.alerts"))
            lines += [
                say("charts.digest.rule", rule=esc(rule), count=count)
                for rule, count in sorted(fired.items(), key=lambda item: (-item[1], item[0]))
            ]
        else:
            lines.append(say("charts.digest.no_alerts"))
        return "\n".join(lines)

    async def send_pending(self, now: datetime) -> int:
        """Send the digests waiting, oldest first; how many went out."""
        sent = 0
        for digest in await self.store.pending():
            if digest.day < now.astimezone(KST).date() - STALE:
                await self.store.mark_failed(digest.id, "too old to send")
                continue
            if await self._send(digest):
                sent += 1
                await self._sleep(PACE)
        return sent

    async def _send(self, digest: StoredDigest) -> bool:
        try:
            await self.transport.send(digest.chat_id, self._tag(digest.text))
        except RetryLater as exc:  # flood control: this round is over, the next tries again
            log.warning("digest held chat=%s retry_in=%.1fs", digest.chat_id, exc.seconds)
            await self._sleep(exc.seconds)
            return False
        except (ChatBlocked, Rejected) as exc:
            await self.store.mark_failed(digest.id, exc.reason)
            log.warning("digest refused chat=%s error=%r", digest.chat_id, exc.reason)
            return False
        except DeliveryError as exc:
            if digest.attempts + 1 >= MAX_ATTEMPTS:
                await self.store.mark_failed(digest.id, exc.reason)
            else:
                await self.store.mark_retry(digest.id, exc.reason)
            log.warning("digest not sent chat=%s error=%r", digest.chat_id, exc.reason)
            return False
        await self.store.mark_sent(digest.id, self._clock())
        log.info("digest sent chat=%s day=%s slot=%s", digest.chat_id, digest.day, digest.slot)
        if self.settings.picture:
            await self._send_picture(digest)
        return True

    async def _send_picture(self, digest: StoredDigest) -> None:
        """The top stocks' curves after the text, best effort: drawn from the series now, not
        stored (a restart in between loses only the picture; the text went out)."""
        send_photo = getattr(self.transport, "send_photo", None)
        if send_photo is None or self.charts.series.day != digest.day:
            return
        rows = self.charts.ranked(await self._watches(digest.chat_id))
        top = [(row.label, row.figures) for row in rows[:TOP_CURVES] if row.figures is not None]
        if not top:
            return
        try:
            png = await self.charts.worker.render_top(
                top, day=digest.day.isoformat(), sessions=self.charts.sessions,
                locale=self.charts.locale,
            )  # fmt: skip
            await send_photo(digest.chat_id, png)
        except Exception as exc:  # the digest itself went out; a picture is not worth a retry
            log.warning("digest picture not sent chat=%s error=%r", digest.chat_id, str(exc))
