"""The delivery loop: pending deliveries from the store to a transport; none lost, none twice.

For each chat with due deliveries, in order: take the alerts that fired within ``group_window``
seconds of the first one, pack them into one message under 4096 characters (the rest wait for the
next one), wait for the chat's slot (about 1 message/s) and the global pace (30/s), send, and mark
exactly those rows sent as soon as the transport confirms. Chats are sent to concurrently, so one
slow or failing chat never holds up the others.

Failures: flood control (RetryLater) pauses that chat, or everyone, for the time told; a network or
server error (TransientError) reschedules the chat's rows with exponential backoff in the store; a
chat that blocked the bot (ChatBlocked) is marked blocked in the store and skipped from then on; a
message Telegram refuses as such (Rejected, a 400 such as "message is too long", which our packing
should make impossible) is marked failed alone, so it cannot hold the chat's later alerts back.

The one window for a duplicate: the transport confirmed a message and the process dies before
``mark_sent`` commits (one SQLite write later); on restart that message is sent again. The same
holds when Telegram accepts a message but the answer is lost (a timeout): we cannot know, so we
resend. Nothing is ever marked sent without a confirmation, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.notify.format import alert_block, join, pack
from bot.notify.transport import ChatBlocked, Rejected, RetryLater, TransientError, Transport

log = logging.getLogger(__name__)


class Pending(Protocol):
    """One pending delivery: one alert for one chat (what the store hands out)."""

    @property
    def id(self) -> int: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def rule(self) -> str: ...
    @property
    def ticker(self) -> str: ...
    @property
    def time(self) -> datetime: ...  # tick time, KST
    @property
    def message(self) -> str: ...
    @property
    def attempts(self) -> int: ...


class DeliveryStore(Protocol):
    """The part of the store the sender uses (``bot.store.repo.Store`` provides it)."""

    def pending_deliveries(self, limit: int, now: datetime) -> Sequence[Pending]: ...
    def mark_sent(self, ids: Sequence[int], sent_at: datetime) -> None: ...
    def mark_retry(self, ids: Sequence[int], error: str, next_attempt_at: datetime) -> None: ...
    def mark_blocked(self, chat_id: int, error: str) -> None: ...
    def mark_failed(self, ids: Sequence[int], error: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """Pacing and retry knobs, in seconds (tests make them small)."""

    group_window: float = 2.0  # alerts of one chat this close in tick time share a message
    poll_interval: float = 1.0  # look at the store at least this often, even without a wake-up
    chat_interval: float = 1.0  # between two messages to one chat (Telegram: about 1/s)
    global_rate: float = 30.0  # messages per second to all chats together (Telegram: 30/s)
    backoff_min: float = 1.0  # first retry delay after a network or server error, doubled after
    backoff_max: float = 60.0
    batch: int = 500  # pending rows read per look
    blocked_pause: float = 300.0  # skip a chat that blocked the bot this long (store marks it)
    close_timeout: float = 5.0  # on close, how long to let sends in flight finish


def utc_now() -> datetime:
    return datetime.now(UTC)


class Pace:
    """Starts callers at least ``1/rate`` seconds apart, one at a time, in the order they ask.

    Measured from when each caller actually went, so a stalled loop cannot cause a burst.
    """

    def __init__(self, rate: float) -> None:
        self._gap = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = time.monotonic() + self._gap


class Sender:
    """Drains the store's pending deliveries through one transport; ``run()`` until ``close()``.

    Call ``wake()`` when new deliveries were committed (the AlertWriter's signal); the sender also
    looks every ``poll_interval`` seconds, so a missed wake-up only delays.
    """

    def __init__(
        self,
        store: DeliveryStore,
        transport: Transport,
        settings: SenderSettings | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        name: str = "sender",
    ) -> None:
        self._store = store
        self._transport = transport
        self.settings = settings or SenderSettings()
        self._clock = clock
        self._name = name
        self._pace = Pace(self.settings.global_rate)
        self._wakeup = asyncio.Event()
        self._ready_at: dict[int, float] = {}  # chat -> monotonic time of its next allowed send
        self._paused_until = 0.0  # everyone (flood control for all chats)
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._closing = False
        self._running = False
        self._stopped = asyncio.Event()
        self.sent = 0  # messages confirmed, for /status and tests

    def wake(self) -> None:
        """New deliveries are pending: look now."""
        self._wakeup.set()

    async def run(self) -> None:
        """Send until ``close()`` (or cancellation); sends in flight are let finish and marked."""
        log.info("sender started name=%s", self._name)
        self._running = True
        try:
            while not self._closing:
                self._wakeup.clear()
                try:
                    delay = self._dispatch()
                except Exception:  # the store failed (locked, disk): keep going, look again
                    log.exception("sender dispatch failed name=%s", self._name)
                    delay = self.settings.poll_interval
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
        finally:
            await self._finish_inflight()
            self._running = False
            self._stopped.set()
            log.info("sender stopped name=%s sent=%d", self._name, self.sent)

    async def close(self) -> None:
        """Stop dispatching and return once ``run()`` has finished the sends in flight.

        Call it before closing the transport, so a message that went out is also marked sent.
        """
        self._closing = True
        self._wakeup.set()
        if self._running:
            await self._stopped.wait()

    async def _finish_inflight(self) -> None:
        tasks = list(self._inflight.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.settings.close_timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _dispatch(self) -> float:
        """Start one send for every due chat; return seconds until the next look."""
        now = time.monotonic()  # before the store's clock is read: see _reschedule
        next_look = self.settings.poll_interval
        rows = self._store.pending_deliveries(self.settings.batch, self._clock())
        by_chat: dict[int, list[Pending]] = {}
        for row in rows:
            by_chat.setdefault(row.chat_id, []).append(row)
        for chat_id, chat_rows in by_chat.items():
            if chat_id in self._inflight:
                continue
            ready = max(self._ready_at.get(chat_id, 0.0), self._paused_until)
            if ready > now:
                next_look = min(next_look, ready - now)
                continue
            batch, html = self.next_message(chat_rows)
            task = asyncio.create_task(self._send(chat_id, html, batch, chat_rows))
            self._inflight[chat_id] = task
        return max(next_look, 0.0)

    def next_message(self, rows: Sequence[Pending]) -> tuple[list[Pending], str]:
        """A chat's next message and its rows: the first row's window, under 4096 characters."""
        first = rows[0].time
        window = timedelta(seconds=self.settings.group_window)
        group: list[Pending] = []
        for row in rows:
            if abs(row.time - first) > window:
                break
            group.append(row)
        blocks = [alert_block(r.rule, r.ticker, r.time, r.message) for r in group]
        count = pack(blocks)[0]
        return group[:count], join(blocks[:count])

    async def _send(
        self, chat_id: int, html: str, batch: list[Pending], chat_rows: list[Pending]
    ) -> None:
        ids = [r.id for r in batch]
        try:
            await self._pace.wait()
            try:
                await self._transport.send(chat_id, html)
            except RetryLater as exc:
                self._retry_later(chat_id, exc)
            except ChatBlocked as exc:
                self._chat_blocked(chat_id, exc.reason)
            except Rejected as exc:
                self._rejected(chat_id, ids, exc.reason)
            except TransientError as exc:
                self._reschedule(chat_id, chat_rows, exc.reason)
            except Exception as exc:  # a transport bug must not lose the rows: retry them
                log.exception("sender transport failed name=%s chat=%s", self._name, chat_id)
                self._reschedule(chat_id, chat_rows, f"{type(exc).__name__}: {exc}"[:200])
            else:
                self._ready_at[chat_id] = time.monotonic() + self.settings.chat_interval
                self.sent += 1
                self._store.mark_sent(ids, self._clock())
                log.info(
                    "delivery sent name=%s chat=%s alerts=%d ids=%s",
                    self._name,
                    chat_id,
                    len(ids),
                    _span(ids),
                )
        except Exception:
            # Only the store can fail here; the rows stay pending and are tried again.
            log.exception("delivery bookkeeping failed name=%s chat=%s", self._name, chat_id)
            self._ready_at[chat_id] = time.monotonic() + self.settings.backoff_min
        finally:
            self._inflight.pop(chat_id, None)
            self._wakeup.set()

    def _retry_later(self, chat_id: int, exc: RetryLater) -> None:
        until = time.monotonic() + exc.seconds
        self._ready_at[chat_id] = until
        if exc.everyone:
            self._paused_until = max(self._paused_until, until)
        log.warning(
            "delivery flood control name=%s chat=%s retry_in=%.1fs everyone=%s",
            self._name,
            chat_id,
            exc.seconds,
            exc.everyone,
        )

    def _chat_blocked(self, chat_id: int, reason: str) -> None:
        self._ready_at[chat_id] = time.monotonic() + self.settings.blocked_pause
        log.warning("delivery chat blocked name=%s chat=%s reason=%r", self._name, chat_id, reason)
        self._store.mark_blocked(chat_id, reason)

    def _rejected(self, chat_id: int, ids: list[int], reason: str) -> None:
        """A message that can never go out as it is: give up on it alone, the chat goes on."""
        self._ready_at[chat_id] = time.monotonic() + self.settings.chat_interval
        log.error(
            "delivery refused name=%s chat=%s ids=%s error=%r",
            self._name,
            chat_id,
            _span(ids),
            reason,
        )
        self._store.mark_failed(ids, reason)

    def _reschedule(self, chat_id: int, rows: list[Pending], reason: str) -> None:
        """Back off the chat's rows, all of them, so they keep their order after the wait."""
        attempts = max(r.attempts for r in rows)
        delay = min(self.settings.backoff_min * 2 ** min(attempts, 30), self.settings.backoff_max)
        at = self._clock() + timedelta(seconds=delay)
        # The chat also waits here, counted from just after ``at`` was taken: once it is ready,
        # its rescheduled rows are due too, so a newer alert cannot overtake them.
        self._ready_at[chat_id] = time.monotonic() + delay
        log.warning(
            "delivery retry name=%s chat=%s attempts=%d retry_in=%.1fs error=%r",
            self._name,
            chat_id,
            attempts + 1,
            delay,
            reason,
        )
        self._store.mark_retry([r.id for r in rows], reason, at)


def _span(ids: Sequence[int]) -> str:
    return f"{ids[0]}" if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"
