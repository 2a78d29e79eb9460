"""One account's WebSocket session to KIS, opened again after every loss until stop().

A session: approval key, connect (no client pings: KIS's liveness is its PINGPONG), then two
loops. The receiver reads raw bytes (a text frame with invalid UTF-8 must not close the
connection), echoes PINGPONG, applies replies to the subscriptions and hands data frames to the
feed; a silence watchdog ends the session when nothing arrives for ``silence_timeout``. The
sender sends the subscription requests the reconciliation asks for, ``subscribe_interval`` apart,
and sends again those KIS leaves unanswered (``Timing.ack_timeouts``) until it gives them up.
Sessions are retried with exponential backoff and jitter, and after ALREADY IN USE only after
``in_use_backoff``, so a refusing or flapping server never sees a tight loop. What an admin must
fix (refused credentials, an appkey in use elsewhere, requests KIS never answers) is reported to
the sink's problem() besides the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bot.backoff import Backoff
from bot.config import Account, KisSettings
from bot.kis import control
from bot.kis.approval import ApprovalError, ApprovalKeys
from bot.kis.control import ControlError, Reply
from bot.kis.crypto import PayloadCryptoError, decrypt_payload
from bot.kis.status import ConnectionStatus
from bot.kis.subscriptions import ACK_TIMEOUTS, Subscriptions, Unanswered
from bot.ticks import KST, Frame, FrameError, split_frame

log = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, our requests with their approval key among them: its
# logger is held at INFO whatever the application's level.
_WIRE_LOG = logging.getLogger(f"{__name__}.wire")
_WIRE_LOG.setLevel(logging.INFO)

MAX_MESSAGE = 16 << 20  # bytes; KIS frames are small, a big one must not kill the session
_SHOWN = 120  # characters of a bad frame quoted in logs
_DATA_FLAGS = (ord("0"), ord("1"))
_MAX_CONTROL_PAYLOAD = 125  # bytes, RFC 6455
_QUOTED = 200  # characters of a KIS message quoted in a problem report


class FrameSink(Protocol):
    """Where a connection delivers what it receives, and the problems it meets (the Feed)."""

    def data(self, frame: Frame, text: str | None) -> None:
        """A plain data frame (decrypted when it came encrypted) and its text as received, or
        None when it came encrypted (``frame.text()`` then writes it out, when needed)."""

    def bad(self, kind: str, detail: str) -> None:
        """A message that was skipped."""

    def problem(self, kind: str, account: str, key: str, /, **values: object) -> None:
        """Something an admin should hear of: the catalogue's ``kis.*`` message ``key`` (in the
        bot's language) filled with ``values`` (plain text, no secret)."""


@dataclass(frozen=True, slots=True)
class Timing:
    """Feed tunables that are not settings (tests make them small)."""

    healthy_after: float = 60.0  # a session that lived this long resets the backoff
    open_timeout: float = 10.0  # connect and approval request
    close_timeout: float = 1.0  # wait for the server's close frame
    # Wait for KIS's answer to each send of a subscribe/unsubscribe request: sent again after
    # each timeout but the last, then given up.
    ack_timeouts: tuple[float, ...] = ACK_TIMEOUTS


class _SessionEnd(Exception):
    """A reply that ends the session; ``delay`` overrides the backoff when set."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class Connection:
    """The session of one account (one appkey: KIS allows one connection per appkey)."""

    def __init__(
        self,
        index: int,
        account: Account,
        settings: KisSettings,
        subscriptions: Subscriptions,
        approvals: ApprovalKeys,
        sink: FrameSink,
        on_change: Callable[[], None],
        timing: Timing,
    ) -> None:
        self.index = index
        self.account = account
        self.label = account.label(index)
        self.settings = settings
        self.subs = subscriptions
        self.approvals = approvals
        self.sink = sink
        self.on_change = on_change
        self.timing = timing
        self._backoff = Backoff(settings.reconnect_min, settings.reconnect_max)
        self._work = asyncio.Event()  # subscriptions changed, or stop
        self._stop = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._key = ""  # the approval key in use (scrubbed from logged messages)
        self._ciphers: dict[tuple[str, str], None] = {}  # (iv, key) of acks, newest last
        self._connected_since: datetime | None = None
        self._last_error: str | None = None
        self._received = 0  # messages, for the silence watchdog
        self._silent = False  # the watchdog closed this session
        self._lived = 0.0  # seconds the last session was open
        self._counts = [0, 0, 0]  # data frames, their records, reconnects (for metrics)
        self._last_data_at: float | None = None  # monotonic

    # -- control ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Subscriptions changed: the sender looks for work again."""
        self._work.set()

    async def stop(self) -> None:
        """End the session with a close frame and stop reconnecting."""
        self._stop.set()
        self._work.set()
        if self._ws is not None:
            await self._ws.close()

    def status(self) -> ConnectionStatus:
        return ConnectionStatus(
            account=self.label,
            connected=self._connected_since is not None,
            subscribed=self.subs.live(self.index),
            limit=self.subs.limit(self.index),
            last_error=self._last_error,
            connected_since=self._connected_since,
            frames=self._counts[0],
            records=self._counts[1],
            reconnects=self._counts[2],
            last_data_at=self._last_data_at,
        )

    async def run(self) -> None:
        """Sessions until stop(); never raises on network or KIS errors."""
        # Connect only once something is to be subscribed: idle accounts hold no session.
        while not self.subs.needed(self.index) and not self._stop.is_set():
            self._work.clear()
            await self._work.wait()
        while not self._stop.is_set():
            self._lived = 0.0
            try:
                delay = await self._session()
            except Exception as exc:  # a bug of ours: log it loudly, but keep the feed alive
                log.exception("session failed account=%s error=%r", self.label, exc)
                self._last_error = f"internal error: {exc!r}"
                delay = None
            if self._stop.is_set():
                break
            if self._lived >= self.timing.healthy_after:
                self._backoff.reset()  # it was a good connection: the next try comes soon
            delay = self._backoff.next() if delay is None else delay
            log.info("reconnecting account=%s in_seconds=%.3f", self.label, delay)
            self._counts[2] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    # -- one session -----------------------------------------------------------------------

    async def _session(self) -> float | None:
        """One session, from approval key to close; returns a delay that overrides backoff."""
        try:
            self._key = await self.approvals.get(self.account, self.label)
        except ApprovalError as exc:
            self._last_error = str(exc)
            log.warning("no approval key account=%s error=%s", self.label, exc)
            if exc.refused:
                self._report_refused_approval(exc)
            return None
        if self._stop.is_set():
            return None
        try:
            ws = await connect(
                self.settings.ws_url,
                ping_interval=None,  # KIS drops clients that ping; it sends PINGPONG instead
                max_size=MAX_MESSAGE,
                open_timeout=self.timing.open_timeout,
                close_timeout=self.timing.close_timeout,
                logger=_WIRE_LOG,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            self._last_error = f"cannot connect: {exc!r}"
            log.warning(
                "connect failed account=%s url=%s error=%r", self.label, self.settings.ws_url, exc
            )
            return None
        async with ws:  # closes it, whatever happens
            return await self._serve(ws)

    async def _serve(self, ws: ClientConnection) -> float | None:
        if self._stop.is_set():
            return None
        self._ws = ws
        self._ciphers.clear()
        self._silent = False
        self._connected_since = datetime.now(KST)
        self._last_error = None
        opened = time.monotonic()
        self.subs.session_started(self.index)
        self.on_change()
        log.info("connected account=%s url=%s", self.label, self.settings.ws_url)
        helpers = [
            asyncio.create_task(self._send_requests(ws)),
            asyncio.create_task(self._watch_silence(ws)),
        ]
        try:
            await self._receive(ws)
        except ConnectionClosed as exc:
            if not self._stop.is_set() and not self._silent:
                self._last_error = f"connection closed: {exc}"
                log.warning("connection lost account=%s error=%s", self.label, exc)
        except WebSocketException as exc:  # e.g. a protocol error: the session is unusable
            self._last_error = f"session error: {exc!r}"
            log.warning("session error account=%s error=%r", self.label, exc)
        except _SessionEnd as end:
            self._last_error = str(end)
            await ws.close()
            return end.delay
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._lived = time.monotonic() - opened
            self._ws = None
            self._connected_since = None
            self.subs.session_ended(self.index)
            self.on_change()
        return None

    async def _receive(self, ws: ClientConnection) -> None:
        """Read messages until the connection closes."""
        while True:
            data = await ws.recv(decode=False)
            self._received += 1
            first = data[0] if data else 0
            if first in _DATA_FLAGS:
                self._on_data(data)
            elif first == ord("{"):
                await self._on_control(ws, data)
            else:
                self.sink.bad("flag", f"not a data frame or control message: {_show(data)}")

    async def _watch_silence(self, ws: ClientConnection) -> None:
        """Close the session once nothing arrived for ``silence_timeout`` seconds.

        It looks four times per timeout whether the message count moved: cheaper than a timer
        per message on the hot path; a silence is noticed after 1 to 1.25 timeouts.
        """
        timeout = self.settings.silence_timeout
        seen, quiet = -1, 0  # quiet: looks in a row that saw no new message
        while quiet < 4:
            await asyncio.sleep(timeout / 4)
            quiet = quiet + 1 if self._received == seen else 0
            seen = self._received
        self._silent = True
        self._last_error = f"silence: no message for {timeout:g} s"
        log.warning("silence account=%s seconds=%g: reconnecting", self.label, timeout)
        await ws.close()

    async def _send_requests(self, ws: ClientConnection) -> None:
        """Send what reconciliation asks for, paced; sleep while there is nothing, but wake
        when an answer is overdue."""
        settings = self.settings
        while True:
            self._expire_requests()
            request = self.subs.next_request(self.index)
            if request is None:
                self._work.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation that
                # comes as the event is set, and the session's end would wait for this forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.subs.next_due_in(self.index)):
                        await self._work.wait()
                continue
            tr_type, ticker = request
            message = control.request(
                self._key, settings.custtype, tr_type, settings.tr_id, ticker
            )
            try:
                await ws.send(message)
            except ConnectionClosed:
                return  # the receiver sees it too and ends the session
            log.debug("request sent account=%s tr_type=%s tr_key=%s", self.label, tr_type, ticker)
            if settings.subscribe_interval:
                await asyncio.sleep(settings.subscribe_interval)

    def _expire_requests(self) -> None:
        """Requests KIS left unanswered: logged as they are sent again or given up."""
        late = self.subs.expire(self.index)
        for unanswered in late:
            self._log_unanswered(unanswered)
        if late:
            self.on_change()

    def _log_unanswered(self, unanswered: Unanswered) -> None:
        (tr_type, ticker), attempts = unanswered.request, unanswered.attempts
        if not unanswered.final:
            log.info(
                "no answer, request sent again account=%s tr_type=%s tr_key=%s attempt=%d",
                self.label,
                tr_type,
                ticker,
                attempts + 1,
            )
            return
        log.warning(
            "no answer, request given up account=%s tr_type=%s tr_key=%s attempts=%d",
            self.label,
            tr_type,
            ticker,
            attempts,
        )
        if tr_type == control.SUBSCRIBE:
            self.sink.problem("no_ack", self.label, "kis.no_ack", ticker=ticker, attempts=attempts)

    def _report_refused_approval(self, exc: ApprovalError) -> None:
        said = exc.kis_message or "no message"
        self.sink.problem("approval", self.label, "kis.approval", status=exc.status, said=said)

    # -- what arrives ----------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            self.sink.bad("utf8", f"invalid UTF-8 at byte {exc.start}: {_show(data)}")
            return
        try:
            frame = split_frame(text)
        except FrameError as exc:
            self.sink.bad(exc.kind, str(exc))
            return
        self._counts[0] += 1
        self._counts[1] += frame.records
        self._last_data_at = time.monotonic()
        if frame.encrypted:
            try:
                payload = self._decrypt(frame.payload)
            except PayloadCryptoError as exc:
                self.sink.bad("decrypt", f"{exc}: {_show(data)}")
                return
            self.sink.data(Frame(False, frame.tr_id, frame.records, payload), None)
            return
        self.sink.data(frame, text)

    def _decrypt(self, payload: str) -> str:
        """With the newest acknowledged (iv, key) first; older ones if it does not fit."""
        if not self._ciphers:
            raise PayloadCryptoError("encrypted frame before any acknowledgement with iv/key")
        error = PayloadCryptoError("no key fits")
        for iv, key in reversed(self._ciphers):
            try:
                return decrypt_payload(payload, key, iv)
            except PayloadCryptoError as exc:
                error = exc
        raise error

    async def _on_control(self, ws: ClientConnection, data: bytes) -> None:
        try:
            text = data.decode()
            reply = control.parse_reply(text)
        except (UnicodeDecodeError, ControlError) as exc:
            self.sink.bad("control", f"{exc}: {_show(data)}")
            return
        if reply.is_pingpong:
            # The same text back as a text message keeps KIS happy; a pong alone did not. The
            # pong is what KIS's own client sends too (a control frame holds 125 bytes at most).
            await ws.send(text)
            if len(data) <= _MAX_CONTROL_PAYLOAD:
                await ws.pong(data)
            return
        code = reply.msg_cd
        if code == control.IN_USE:
            delay = self.settings.in_use_backoff
            log.warning(
                "appkey in use elsewhere account=%s msg_cd=%s msg=%s: retry in %g s",
                self.label,
                code,
                reply.msg1,
                delay,
            )
            said = f"{code} {reply.msg1[:_QUOTED] or 'ALREADY IN USE appkey'}"
            self.sink.problem("in_use", self.label, "kis.in_use", said=said, delay=f"{delay:g}")
            raise _SessionEnd(said, delay)
        if code in control.INVALID_APPROVAL:
            log.warning(
                "approval key refused account=%s msg_cd=%s msg=%s: a new one is requested",
                self.label,
                code,
                reply.msg1,
            )
            self.approvals.invalidate(self.account)
            raise _SessionEnd(f"{code} {reply.msg1 or 'invalid approval'}")
        if reply.iv and reply.key:
            self._ciphers.pop((reply.iv, reply.key), None)
            self._ciphers[(reply.iv, reply.key)] = None
        request = self.subs.on_reply(self.index, reply)
        self._log_reply(reply, request, text)
        self.on_change()

    def _log_reply(self, reply: Reply, request: tuple[str, str] | None, text: str) -> None:
        code = reply.msg_cd
        if control.is_json_error(code):
            log.error(
                "KIS could not parse our request (a bug) account=%s msg_cd=%s msg=%s request=%s",
                self.label,
                code,
                reply.msg1,
                request,
            )
        elif request is None or code not in control.KNOWN:
            log.warning(
                "unexpected control message account=%s message=%s",
                self.label,
                self._scrub(text),
            )
        else:
            ok = code in control.SUBSCRIBED or code in control.UNSUBSCRIBED
            log.log(
                logging.INFO if ok else logging.WARNING,
                "reply account=%s tr_type=%s tr_key=%s msg_cd=%s msg=%s",
                self.label,
                request[0],
                request[1],
                code,
                reply.msg1,
            )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _show(data: bytes) -> str:
    """The start of a message, for a log line."""
    return repr(data[:_SHOWN])
