"""The delivery loop: pending deliveries from the store to a transport; none lost, none twice.

Each chat with due deliveries gets a task that drains it, looking again at that chat only after
each send: take the alerts that fired within ``group_window`` seconds of the first one, pack them
into one message under 4096 characters, wait for the chat's slot (about 1 message/s) and the
global pace (30/s), send, and record exactly those rows as sent once the transport confirmed.
Chats are served concurrently, so one slow or failing chat never holds up the others. The store
is an ``AsyncStore``: nothing here waits for the database on the event loop.

A resolved event goes alone, as a reply to the message that carried its alert in that chat (the
message id the transport told, kept with the alert's delivery). A chat's rows go in the order
their alerts were stored, and an alert is stored before its resolved event, so the event waits
for its alert: it is sent once the alert went, replying to it; if the alert was set aside (or
went where no message id is known), the event is sent as a plain message.

What can go wrong, and what happens (docs/TELEGRAM.md has the table):

- **Bookkeeping fails after a confirmed send** (the database is locked or the disk full): the
  confirmation is kept in memory and recorded later; those rows are never sent again meanwhile.
- **Flood control** (RetryLater) pauses the chat, or everyone, for the time told.
- **A network or server error** (TransientError) reschedules the chat's rows with exponential
  backoff, in order. A message that failed ``max_attempts`` times while the service works (some
  message got through since it first failed, or the transport's health check answers) is to
  blame: a group is split to find the alert, a single alert is set aside (failed, with its
  reason; ``on_problem`` tells the admins), and the chat's later alerts flow. In an outage
  nothing gets through, so nothing is set aside: alerts wait, in order, none is lost.
- **No answer** (Uncertain, a timeout: Telegram may have delivered it) counts apart: after
  ``max_uncertain`` such attempts the message is set aside, so a hanging Bot API that delivers
  late cannot turn one alert into many copies.
- **Refused** (Rejected, a 400): a message of several alerts is split and each is sent alone, so
  only the alert that cannot go out fails.
- **Blocked** (ChatBlocked): the chat is marked blocked in the store and skipped.

The one window left for a duplicate: the process dies between the confirmation and its record
(one SQLite write later), or Telegram accepted a message whose answer was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.backoff import backoff_delay
from bot.clock import utc_now
from bot.notify.buttons import alert_buttons
from bot.notify.format import alert_message, resolved_message
from bot.notify.quiet import quiet_hours
from bot.notify.transport import (
    PLAIN_MESSAGE,
    ChatBlocked,
    ChatMoved,
    Extras,
    Rejected,
    RetryLater,
    TransientError,
    Transport,
    Uncertain,
)
from bot.notify.voice import PLAIN, Voice
from bot.store.facade import AsyncStore
from bot.store.outbox import PendingDelivery

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """Pacing and retry knobs, in seconds (tests make them small)."""

    group_window: float = 2.0  # alerts of one chat this close in tick time share a message
    poll_interval: float = 1.0  # look at the store at least this often, even without a wake-up
    chat_interval: float = 1.0  # between two messages to one chat (Telegram: about 1/s)
    global_rate: float = 30.0  # messages per second to all chats together (Telegram: 30/s)
    backoff_min: float = 1.0  # first retry delay after a network or server error, doubled after
    backoff_max: float = 60.0
    batch: int = 50  # a chat's due rows read per look: more than one message can hold
    max_attempts: int = 8  # failed sends of one message, the service working, before set aside
    max_uncertain: int = 3  # sends without an answer before a message is set aside
    blocked_pause: float = 300.0  # skip a chat that blocked the bot this long (store marks it)
    close_timeout: float = 5.0  # on close, how long to let sends in flight finish


class Pace:
    """At most ``rate`` callers go in any one second (Telegram's "30 messages per second"), in
    the order they ask. Under the limit nobody waits: twenty chats ready at once all go at once,
    and a fresh alert does not queue behind a backlog's messages (spacing every send 1/rate
    apart made the twentieth wait 0.66 s).

    Measured from when each caller actually went, so a stalled loop cannot cause a burst.
    """

    def __init__(self, rate: float, window: float = 1.0) -> None:
        self._limit = max(1, int(rate)) if rate > 0 else 0
        self._window = window
        self._went: deque[float] = deque()  # when the last ``limit`` callers went
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._limit:
            return
        async with self._lock:
            if len(self._went) >= self._limit:
                delay = self._went[0] + self._window - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._went.popleft()
            self._went.append(time.monotonic())


@dataclass(frozen=True, slots=True)
class Message:
    """The next message of a chat: its rows, its HTML, the message it replies to, and how it
    goes out (silent or not, its buttons)."""

    rows: list[PendingDelivery]
    html: str
    reply_to: int | None = None
    extras: Extras = PLAIN_MESSAGE

    @property
    def ids(self) -> list[int]:
        return [row.id for row in self.rows]


class Sender:
    """Drains the store's pending deliveries through one transport; ``run()`` until ``close()``.

    Call ``wake()`` when new deliveries were committed (the AlertWriter's signal); the sender also
    looks every ``poll_interval`` seconds, so a missed wake-up only delays.
    """

    def __init__(
        self,
        store: AsyncStore,
        transport: Transport,
        settings: SenderSettings | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        name: str = "sender",
        on_problem: Callable[[str], object] | None = None,
        voice: Voice = PLAIN,
        silent_rules: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._store = store
        self._silent_rules = silent_rules  # the rules with `notify: silent`, as loaded now
        self.voice = voice  # names, dates, the demo's tag: how alert messages read
        self._transport = transport
        self.settings = settings or SenderSettings()
        self._clock = clock
        self._name = name
        self._on_problem = on_problem
        self._pace = Pace(self.settings.global_rate)
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._ready_at: dict[int, float] = {}  # chat -> monotonic time of its next allowed send
        self._paused_until = 0.0  # everyone (flood control for all chats)
        self._chats: dict[int, asyncio.Task[None]] = {}  # the chats being served
        # delivery -> (sent at, message id), confirmed but not recorded yet
        self._confirmed: dict[int, tuple[datetime, int | None]] = {}
        self._alone: set[int] = set()  # deliveries to send one per message (a group refused)
        self._first_failed: dict[int, float] = {}  # delivery -> monotonic time it first failed
        self._suspects: set[int] = set()  # failed while the service worked: once more, then out
        self._no_answer: dict[int, int] = {}  # delivery -> sends that got no answer
        self._last_success = 0.0  # monotonic time of the last confirmed message, any chat
        self._running = False
        self._stopped = asyncio.Event()
        self.sent = 0  # messages confirmed, for /status and tests
        self.record_failures = 0  # tries to record confirmations that the store refused

    def wake(self) -> None:
        """New deliveries are pending: look now."""
        self._wakeup.set()

    @property
    def unrecorded(self) -> int:
        """Deliveries confirmed by the transport whose record in the store is still due."""
        return len(self._confirmed)

    async def run(self) -> None:
        """Send until ``close()`` (or cancellation); sends in flight are let finish and marked."""
        log.info("sender started name=%s", self._name)
        self._running = True
        try:
            while not self._closed.is_set():
                self._wakeup.clear()
                await self._look()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.poll_interval):
                        await self._wakeup.wait()
        finally:
            await self._finish()
            self._running = False
            self._stopped.set()
            log.info("sender stopped name=%s sent=%d", self._name, self.sent)

    async def close(self) -> None:
        """Stop sending and return once ``run()`` has finished the sends in flight.

        Call it before closing the transport, so a message that went out is also recorded.
        """
        self._closed.set()
        self._wakeup.set()
        if self._running:
            await self._stopped.wait()

    async def _look(self) -> None:
        """Record kept confirmations; serve every chat with pending rows not served yet."""
        try:
            await self._record_confirmed()
            chats = await self._store.due_chats()
        except Exception as exc:  # the store failed (locked, disk): look again later
            log.warning("sender look failed name=%s error=%r", self._name, str(exc)[:300])
            return
        for chat_id in chats:
            if chat_id not in self._chats:
                task = asyncio.create_task(self._serve(chat_id), name=f"send-{chat_id}")
                self._chats[chat_id] = task

    async def _finish(self) -> None:
        tasks = list(self._chats.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.settings.close_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._record_confirmed()
        if self._confirmed:
            log.error(
                "sender stopped with sends unrecorded name=%s ids=%s: a restart resends them",
                self._name,
                ",".join(map(str, sorted(self._confirmed))),
            )

    # -- one chat ----------------------------------------------------------------------------

    async def _serve(self, chat_id: int) -> None:
        """Send this chat's due messages one after another, until none is due."""
        try:
            while not self._closed.is_set():
                if not await self._wait_ready(chat_id):
                    return
                rows = await self._store.due_deliveries(
                    chat_id, self.settings.batch, self._clock()
                )
                rows = [row for row in rows if row.id not in self._confirmed]
                if not rows:
                    return
                message = self.next_message(rows)
                if await self._quiet_now(chat_id):
                    message = replace(message, extras=replace(message.extras, silent=True))
                await self._send(chat_id, message, rows)
        except Exception as exc:  # the store failed: the rows stay pending, tried again later
            log.warning(
                "delivery bookkeeping failed name=%s chat=%s error=%r",
                self._name,
                chat_id,
                str(exc)[:300],
            )
            self._ready_at[chat_id] = time.monotonic() + self.settings.backoff_min
        finally:
            self._chats.pop(chat_id, None)

    async def _quiet_now(self, chat_id: int) -> bool:
        """The chat's quiet hours (/quiet) cover the wall clock now: send without sound."""
        hours = quiet_hours(await self._store.quiet(chat_id))
        return hours is not None and hours.holds(self._clock())

    async def _wait_ready(self, chat_id: int) -> bool:
        """Sleep until the chat may be sent to; False when closing meanwhile."""
        ready = max(self._ready_at.get(chat_id, 0.0), self._paused_until)
        delay = ready - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closed.wait()
        return not self._closed.is_set()

    def next_message(self, rows: Sequence[PendingDelivery]) -> Message:
        """The first row's window, under 4096 characters; a row to send alone goes alone, and
        so does a resolved event (a reply has one message to answer)."""
        first = rows[0].time
        if rows[0].kind == "resolved":
            return self._reply(rows[0])
        window = timedelta(seconds=self.settings.group_window)
        group: list[PendingDelivery] = []
        for row in rows:
            alone = row.id in self._alone or row.kind == "resolved"
            if group and (alone or abs(row.time - first) > window):
                break
            group.append(row)
            if alone:
                break
        count, html = alert_message(group, self.voice)
        # A group carries the buttons of its first alert (bot/notify/buttons.py), and is
        # silent only when every alert in it is.
        extras = Extras(
            silent=self._silent(group[:count]),
            buttons=alert_buttons(self.voice, group[0].alert_id),
        )
        return Message(group[:count], html, extras=extras)

    def _silent(self, rows: Sequence[PendingDelivery]) -> bool:
        silent = self._silent_rules()
        return bool(silent) and all(row.rule in silent for row in rows)

    def _reply(self, row: PendingDelivery) -> Message:
        """A resolved event, replying to its alert's message in this chat when it went."""
        html = resolved_message(row, self.voice)
        extras = Extras(silent=self._silent([row]))
        return Message([row], html, reply_to=self._alert_message(row), extras=extras)

    def _alert_message(self, row: PendingDelivery) -> int | None:
        """The id of the message that carried this resolved event's alert to its chat: just
        confirmed (not recorded yet), or recorded; None if it did not go (set aside)."""
        if row.resolves_delivery is None:
            return None
        kept = self._confirmed.get(row.resolves_delivery)
        if kept is not None:
            return kept[1]
        return row.reply_to if row.resolves_state == "sent" else None

    async def _send(self, chat_id: int, message: Message, rows: list[PendingDelivery]) -> None:
        await self._pace.wait()
        try:
            message_id = await self._transport.send(
                chat_id, message.html, reply_to=message.reply_to, extras=message.extras
            )
        except RetryLater as exc:
            self._retry_later(chat_id, exc)
        except ChatMoved as exc:  # the transport's hook moved the rows to the new id
            log.warning(
                "delivery chat moved name=%s chat=%s new=%s", self._name, chat_id, exc.new_chat_id
            )
        except ChatBlocked as exc:
            self._ready_at[chat_id] = time.monotonic() + self.settings.blocked_pause
            log.warning(
                "delivery chat blocked name=%s chat=%s reason=%r", self._name, chat_id, exc.reason
            )
            await self._store.mark_blocked(chat_id, exc.reason)
        except Rejected as exc:
            await self._rejected(chat_id, message, exc.reason)
        except Uncertain as exc:
            await self._no_answer_from(chat_id, message, rows, exc.reason)
        except TransientError as exc:
            await self._failed(chat_id, message, rows, exc.reason)
        except Exception as exc:  # a transport bug must not lose the rows: retry them
            log.exception("sender transport failed name=%s chat=%s", self._name, chat_id)
            await self._failed(chat_id, message, rows, f"{type(exc).__name__}: {exc}"[:200])
        else:
            await self._confirm(chat_id, message, message_id)

    async def _confirm(self, chat_id: int, message: Message, message_id: int | None) -> None:
        """The transport confirmed: never send these rows again, whatever the store does."""
        now = time.monotonic()
        self._ready_at[chat_id] = now + self.settings.chat_interval
        self._last_success = now
        self.sent += 1
        sent_at = self._clock()
        for delivery_id in message.ids:
            self._confirmed[delivery_id] = (sent_at, message_id)
            self._forget(delivery_id)
        log.info(
            "delivery sent name=%s chat=%s alerts=%d ids=%s message=%s reply_to=%s",
            self._name,
            chat_id,
            len(message.ids),
            _span(message.ids),
            message_id,
            message.reply_to,
        )
        await self._record_confirmed()

    async def _record_confirmed(self) -> None:
        """Record kept confirmations; they stay kept (and unsent) until this works."""
        if not self._confirmed:
            return
        by_message: dict[tuple[datetime, int | None], list[int]] = {}
        for delivery_id, sent in list(self._confirmed.items()):
            by_message.setdefault(sent, []).append(delivery_id)
        for (sent_at, message_id), ids in by_message.items():
            try:
                await self._store.mark_sent(ids, sent_at, message_id)
            except Exception as exc:
                self.record_failures += 1
                log.warning(
                    "delivery record failed, kept name=%s ids=%s error=%r",
                    self._name,
                    _span(ids),
                    str(exc)[:300],
                )
                return
            for delivery_id in ids:
                self._confirmed.pop(delivery_id, None)

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

    async def _rejected(self, chat_id: int, message: Message, reason: str) -> None:
        """Refused as it is: several alerts are tried one by one; one alone is given up."""
        self._ready_at[chat_id] = time.monotonic() + self.settings.chat_interval
        if len(message.rows) > 1:
            self._alone.update(message.ids)
            log.warning(
                "delivery refused, sending one by one name=%s chat=%s ids=%s error=%r",
                self._name,
                chat_id,
                _span(message.ids),
                reason,
            )
            return
        await self._set_aside(chat_id, message.rows, reason)

    async def _no_answer_from(
        self, chat_id: int, message: Message, rows: list[PendingDelivery], reason: str
    ) -> None:
        """Bounded copies: after ``max_uncertain`` sends without an answer while the service
        otherwise works, set aside; with the whole service silent, wait (an outage)."""
        counts = [self._no_answer.get(i, 0) + 1 for i in message.ids]
        self._no_answer.update(zip(message.ids, counts, strict=True))
        since = min(self._first_failed.setdefault(i, time.monotonic()) for i in message.ids)
        if max(counts) >= self.settings.max_uncertain and await self._others_get_through(since):
            why = f"no answer from the server {max(counts)} times (it may have arrived): {reason}"
            await self._set_aside(chat_id, message.rows, why)
            return
        await self._reschedule(chat_id, message, rows, reason)

    async def _failed(
        self, chat_id: int, message: Message, rows: list[PendingDelivery], reason: str
    ) -> None:
        """A failure that may pass. A message that keeps failing while others get through is
        to blame: it is tried once more at once (the service may just have come back), then a
        group is split to find the alert, and a single alert is set aside."""
        now = time.monotonic()
        since = min(self._first_failed.setdefault(i, now) for i in message.ids)
        attempts = max(r.attempts for r in message.rows) + 1
        if attempts >= self.settings.max_attempts and await self._others_get_through(since):
            if not self._suspects.issuperset(message.ids):
                self._suspects.update(message.ids)
                await self._store.mark_retry(message.ids, reason, self._clock())
                return
            if len(message.rows) == 1:
                why = f"failed {attempts} times while other messages went through: {reason}"
                await self._set_aside(chat_id, message.rows, why)
                return
            self._alone.update(message.ids)
        await self._reschedule(chat_id, message, rows, reason)

    async def _others_get_through(self, since: float) -> bool:
        """Evidence that the service works: a message went out since ``since``, or the
        transport answers its health check now."""
        if self._last_success > since:
            return True
        try:
            return await self._transport.alive()
        except Exception:
            return False

    async def _reschedule(
        self, chat_id: int, message: Message, rows: list[PendingDelivery], reason: str
    ) -> None:
        """Back off the message's rows (an attempt counted) and hold the chat's others behind
        them (none counted), so they keep their order after the wait."""
        attempts = max(r.attempts for r in message.rows)
        delay = backoff_delay(attempts, self.settings.backoff_min, self.settings.backoff_max)
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
        await self._store.mark_retry(message.ids, reason, at)
        others = [row.id for row in rows if row.id not in set(message.ids)]
        await self._store.postpone(others, at)

    async def _set_aside(self, chat_id: int, rows: list[PendingDelivery], reason: str) -> None:
        """Give up on these rows (failed, with the reason): the chat's later alerts flow."""
        ids = [row.id for row in rows]
        log.error(
            "delivery set aside name=%s chat=%s ids=%s error=%r",
            self._name,
            chat_id,
            _span(ids),
            reason,
        )
        await self._store.mark_failed(ids, reason)
        for delivery_id in ids:
            self._forget(delivery_id)
        if self._on_problem is not None:
            voice = self.voice
            what = ", ".join(  # KST said once, after the first time
                f"{r.rule} {voice.label(r.ticker)} {voice.moment(r.time, zone=i == 0)}"
                for i, r in enumerate(rows[:3])
            )
            say = voice.say("notice.not_delivered", chat_id=chat_id, what=what, reason=reason)
            self._on_problem(say)

    def _forget(self, delivery_id: int) -> None:
        self._alone.discard(delivery_id)
        self._first_failed.pop(delivery_id, None)
        self._suspects.discard(delivery_id)
        self._no_answer.pop(delivery_id, None)


def _span(ids: Sequence[int]) -> str:
    return f"{ids[0]}" if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"
