"""The KIS program-trading feed: ticks of the wanted tickers, from one connection per account.

    feed = Feed(settings.kis, on_ticks, recorder=recorder, on_problem=tell_admins)
    feed.set_wanted({"005930", "000660"})      # declarative; returns at once
    task = asyncio.create_task(feed.run())     # until stop(); never raises on network/KIS errors
    await feed.wait_settled({"005930"})        # {"005930": SubStatus(state=LIVE, ...)}
    await feed.stop()

``on_ticks`` is called synchronously with the wanted ticks of each data frame. Connections
(bot.kis.connection) keep themselves up; subscriptions (bot.kis.subscriptions) decide which
account subscribes what. Malformed frames are skipped and logged once per kind, then counted.
``on_problem`` hears, once per kind and account, of what only an admin can fix (refused
credentials, an appkey in use elsewhere, subscribe requests KIS never answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from datetime import datetime

from bot.codes import stock_code
from bot.config import KisSettings
from bot.kis.approval import ApprovalKeys
from bot.kis.connection import Connection, Timing
from bot.kis.recording import Recorder
from bot.kis.status import FeedStats, SubState, SubStatus
from bot.kis.subscriptions import Subscriptions
from bot.messages import KOREAN, Catalogue
from bot.ticks import KST, RECORD_WIDTH, Frame, FrameError, Tick, parse_records

log = logging.getLogger(__name__)

OnTicks = Callable[[list[Tick]], None]
OnProblem = Callable[[str], None]  # one line of plain text for the admins

_PROBLEM_CHARS = 500  # of a problem message passed on


class Feed:
    """Subscriptions, connections and frames of every configured KIS account."""

    def __init__(
        self,
        settings: KisSettings,
        on_ticks: OnTicks,
        *,
        recorder: Recorder | None = None,
        timing: Timing | None = None,
        flush_interval: float = 1.0,
        summary_interval: float = 300.0,
        on_problem: OnProblem | None = None,
        say: Catalogue = KOREAN,
    ) -> None:
        self.settings = settings
        self.on_ticks = on_ticks
        self.on_problem = on_problem
        self.say = say  # the words of what on_problem hears (the bot's locale)
        self.recorder = recorder
        self.timing = timing or Timing()
        self.flush_interval = flush_interval
        self.summary_interval = summary_interval
        labels = [account.label(i) for i, account in enumerate(settings.accounts)]
        self._subs = Subscriptions(
            labels, settings.max_subscriptions, ack_timeouts=self.timing.ack_timeouts
        )
        self._approvals = ApprovalKeys(
            settings.rest_url, max_age=settings.approval_max_age, timeout=self.timing.open_timeout
        )
        self._connections = [
            Connection(
                i,
                account,
                settings,
                self._subs,
                self._approvals,
                self,
                self._changed,
                self.timing,
            )
            for i, account in enumerate(settings.accounts)
        ]
        self._settled = asyncio.Event()  # replaced by a fresh one at every change
        self._stop = asyncio.Event()
        self._done = asyncio.Event()
        self._running = False
        self._ticks = 0
        self._last_tick_at: datetime | None = None
        self._bad: dict[str, int] = {}  # kind -> frames or records skipped
        self._summarized = 0  # bad frames at the last summary
        self._notices: set[str] = set()  # one-time warnings given
        self._problems: set[tuple[str, str]] = set()  # (kind, account) told to on_problem
        self._consumer_errors = 0  # on_ticks calls that raised

    # -- public API ------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep every needed connection up until stop()."""
        if self._running:
            raise RuntimeError("Feed.run() is already running")
        self._running = True
        self._done.clear()
        if not self._connections:
            log.warning("no KIS account configured: the feed has nothing to connect")
        tasks = [asyncio.create_task(c.run(), name=f"kis-{c.label}") for c in self._connections]
        housekeeping = asyncio.create_task(self._housekeeping(), name="kis-housekeeping")
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(tasks, housekeeping)
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """Close every connection with a close frame; returns once run() has finished."""
        self._stop.set()
        if self._running:
            await self._done.wait()

    def set_wanted(self, tickers: Collection[str]) -> None:
        """Subscribe exactly these tickers (6-character codes); raises ValueError on a bad one.

        Nothing changes when one is bad.
        """
        self._subs.set_wanted([stock_code(ticker) for ticker in tickers])
        self._changed()

    def status(self, ticker: str) -> SubStatus:
        return self._subs.status(ticker)

    async def wait_settled(
        self,
        tickers: Collection[str],
        timeout: float = 5.0,  # noqa: ASYNC109 (the public API: a bound, not a cancellation)
    ) -> dict[str, SubStatus]:
        """The tickers' statuses once none is PENDING, or as they are after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            statuses = {ticker: self.status(ticker) for ticker in tickers}
            remaining = deadline - loop.time()
            pending = any(s.state is SubState.PENDING for s in statuses.values())
            if not pending or remaining <= 0:
                return statuses
            settled = self._settled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), remaining)

    def stats(self) -> FeedStats:
        return FeedStats(
            connections=[connection.status() for connection in self._connections],
            ticks=self._ticks,
            last_tick_at=self._last_tick_at,
            bad_frames=sum(self._bad.values()),
            bad_kinds=dict(self._bad),
        )

    # -- frames (called by the connections) ------------------------------------------------

    def data(self, frame: Frame, text: str | None) -> None:
        """A plain data frame (``text`` as received, None when it came encrypted): record it,
        parse it, pass on the wanted ticks."""
        received = datetime.now(KST)
        if self.recorder is not None:  # buffered: written by a flush in a thread
            self.recorder.write(text if text is not None else frame.text(), received)
        errors: list[FrameError] = []
        widths: list[int] = []
        try:
            ticks = parse_records(frame.payload, frame.records, received.date(), errors, widths)
        except FrameError as exc:
            self.bad(exc.kind, f"{exc}: {frame.payload[:120]!r}")
            return
        for error in errors:
            self.bad(error.kind, str(error))
        if widths:
            self._notice(
                "stride",
                "records of %d fields tr_id=%s: the first %d are used",
                widths[0],
                frame.tr_id,
                RECORD_WIDTH,
            )
        wanted = self._subs.wanted
        mine = [tick for tick in ticks if tick.ticker in wanted]
        if not mine:
            return
        self._ticks += len(mine)
        self._last_tick_at = received
        try:
            self.on_ticks(mine)
        except Exception:  # the consumer's bug must not take the connection down
            self._consumer_errors += 1
            if self._consumer_errors == 1 or self._consumer_errors % 1000 == 0:
                log.exception(
                    "on_ticks failed count=%d tickers=%s",
                    self._consumer_errors,
                    ",".join(sorted({t.ticker for t in mine})),
                )

    def bad(self, kind: str, detail: str) -> None:
        """A skipped frame or record: logged the first time per kind, counted always."""
        count = self._bad[kind] = self._bad.get(kind, 0) + 1
        if count == 1:
            log.warning(
                "bad frame skipped kind=%s detail=%s (more of this kind are only counted)",
                kind,
                detail,
            )

    def problem(self, kind: str, account: str, key: str, /, **values: object) -> None:
        """Pass the message ``key`` in words to on_problem, the first time only for this kind
        and account."""
        if (kind, account) in self._problems:
            return
        self._problems.add((kind, account))
        log.info("problem reported kind=%s account=%s", kind, account)
        if self.on_problem is None:
            return
        try:
            message = self.say(key, account=account, **values)
            self.on_problem(" ".join(message.split())[:_PROBLEM_CHARS])
        except Exception:  # the consumer's bug must not take the connection down
            log.exception("on_problem failed kind=%s account=%s", kind, account)

    # -- internals -------------------------------------------------------------------------

    def _changed(self) -> None:
        """Subscriptions changed: senders look for work, wait_settled() looks again."""
        for connection in self._connections:
            connection.wake()
        self._settled.set()
        self._settled = asyncio.Event()

    def _notice(self, kind: str, message: str, *args: object) -> None:
        if kind not in self._notices:
            self._notices.add(kind)
            log.warning(message, *args)

    def _summarize(self) -> None:
        total = sum(self._bad.values())
        if total != self._summarized:
            self._summarized = total
            counts = " ".join(f"{kind}={n}" for kind, n in sorted(self._bad.items()))
            log.info("bad frames skipped total=%d %s", total, counts)

    async def _housekeeping(self) -> None:
        """Flush the recording about once a second; summarize bad frames now and then."""
        loop = asyncio.get_running_loop()
        next_summary = loop.time() + self.summary_interval
        while True:
            await asyncio.sleep(self.flush_interval)
            if self.recorder is not None:
                try:  # in a thread: the loop never waits for the disk
                    await asyncio.to_thread(self.recorder.flush)
                except OSError as exc:
                    self._notice("record", "cannot record frames error=%s", exc)
            if loop.time() >= next_summary:
                next_summary = loop.time() + self.summary_interval
                self._summarize()

    async def _shutdown(
        self, tasks: list[asyncio.Task[None]], housekeeping: asyncio.Task[None]
    ) -> None:
        await asyncio.gather(*(c.stop() for c in self._connections), return_exceptions=True)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.timing.close_timeout + 1.0)
            for task in late:  # e.g. stuck in a handshake: give up on it
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        housekeeping.cancel()
        await asyncio.gather(housekeeping, return_exceptions=True)
        if self.recorder is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.recorder.flush)
        self._summarize()
        log.info("feed stopped")
