"""Which ticker is subscribed on which account: what is wanted against what KIS acknowledged.

Pure bookkeeping, no I/O: the feed tells it what is wanted, when sessions start and end and what
KIS replied; connections ask it for the next request to send. Tickers are assigned to accounts
in order (each up to its limit) and stay where they are; a session that ends loses its
registrations on KIS, so the next one subscribes everything assigned to it again.

A request KIS does not answer within ``ack_timeouts[0]`` seconds (of the injected clock) is sent
again, and again after each further timeout; after the last one it is given up: a subscribe is
FAILED until the account's next session, an unsubscribe frees its slot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, KeysView, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from bot.kis import control
from bot.kis.control import Reply
from bot.kis.status import SubState, SubStatus


class Remote(Enum):
    """A registration as KIS sees it (as far as we know)."""

    SUBSCRIBING = "subscribing"  # request sent, no reply yet
    LIVE = "live"
    UNSUBSCRIBING = "unsubscribing"


Request = tuple[str, str]  # (tr_type, ticker)

#: Seconds to wait for KIS's answer to each send of a request: 3 sends, 35 s in all.
ACK_TIMEOUTS = (5.0, 10.0, 20.0)


@dataclass(eq=False, slots=True)
class _Sent:
    """A request on the wire, unanswered."""

    request: Request
    attempts: int  # sends so far
    due: float  # clock time its answer is awaited until
    resend: bool = False  # overdue: next_request sends it again


class Unanswered(NamedTuple):
    """A request whose answer is overdue: sent again, or (``final``) given up."""

    request: Request
    attempts: int  # sends so far
    final: bool


class _Failure(NamedTuple):
    state: SubState  # REJECTED (KIS refused) or FAILED (KIS never answered)
    msg_cd: str | None
    msg: str


@dataclass(eq=False)
class _Account:
    label: str
    limit: int  # configured
    cap: int  # this session's limit: lowered when KIS says MAX SUBSCRIBE OVER
    connected: bool = False
    assigned: dict[str, None] = field(default_factory=dict)  # ordered set: wanted here
    remote: dict[str, Remote] = field(default_factory=dict)
    inflight: deque[_Sent] = field(default_factory=deque)  # unanswered, in send order
    failed: dict[str, _Failure] = field(default_factory=dict)  # not retried this session
    overdue: set[str] = field(default_factory=set)  # subscribes sent again or given up

    def has_room(self) -> bool:
        """A slot for one more ticker (a slot being unsubscribed counts as free already)."""
        return len(self.assigned) < self.cap

    def live(self) -> int:
        return sum(1 for state in self.remote.values() if state is Remote.LIVE)

    def reset_session(self) -> None:
        self.remote.clear()
        self.inflight.clear()
        self.failed.clear()  # refusals of a session are retried by the next one
        self.overdue.clear()
        self.cap = self.limit


class Subscriptions:
    """Wanted tickers, their accounts and their registrations on every account's session."""

    def __init__(
        self,
        labels: Sequence[str],
        limit: int,
        *,
        ack_timeouts: Sequence[float] = ACK_TIMEOUTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ack_timeouts or min(ack_timeouts) <= 0:
            raise ValueError(f"ack_timeouts must be positive seconds, got {ack_timeouts!r}")
        self._ack_timeouts = tuple(ack_timeouts)
        self._clock = clock
        self._accounts = [_Account(label, limit, limit) for label in labels]
        self._wanted: dict[str, None] = {}  # ordered set: first wanted, first placed
        self._home: dict[str, int] = {}  # ticker -> index of the account it is assigned to
        self._refused: dict[str, SubStatus] = {}  # bad tr_id/tr_key: not retried while wanted

    # -- what is wanted --------------------------------------------------------------------

    @property
    def wanted(self) -> KeysView[str]:
        return self._wanted.keys()

    def set_wanted(self, tickers: Iterable[str]) -> None:
        new = dict.fromkeys(tickers)
        for ticker in [t for t in self._wanted if t not in new]:
            del self._wanted[ticker]
            self._refused.pop(ticker, None)
            self._unassign(ticker)
        for ticker in new:
            self._wanted.setdefault(ticker, None)
        self._place()

    def needed(self, index: int) -> bool:
        """True once the account has something to subscribe (its connection may open)."""
        return bool(self._accounts[index].assigned)

    # -- sessions --------------------------------------------------------------------------

    def session_started(self, index: int) -> None:
        account = self._accounts[index]
        account.reset_session()
        account.connected = True

    def session_ended(self, index: int) -> None:
        account = self._accounts[index]
        account.reset_session()
        account.connected = False
        self._place()  # its limit is back: tickers waiting for a slot may fit now

    def next_request(self, index: int) -> Request | None:
        """The next request to send on the account's session, now marked as sent; None: idle.

        Unsubscribes go first: they free slots.
        """
        account = self._accounts[index]
        if not account.connected:
            return None
        for sent in account.inflight:
            if sent.resend:
                return self._send_again(account, sent)
        for ticker, state in account.remote.items():
            if state is Remote.LIVE and ticker not in account.assigned:
                return self._sent(account, control.UNSUBSCRIBE, ticker, Remote.UNSUBSCRIBING)
        if len(account.remote) >= account.cap:
            return None  # KIS still holds what is being unsubscribed
        for ticker in account.assigned:
            if ticker not in account.remote and ticker not in account.failed:
                return self._sent(account, control.SUBSCRIBE, ticker, Remote.SUBSCRIBING)
        return None

    def on_reply(self, index: int, reply: Reply) -> Request | None:
        """Apply KIS's reply to one of our requests; returns that request, None if unmatched.

        Connection-wide refusals (IN USE, invalid approval) end the session instead: the
        connection handles them before calling this.
        """
        account = self._accounts[index]
        sent = _match(account.inflight, reply.tr_key)
        if sent is None:
            return self._late_answer(account, reply)
        tr_type, ticker = request = sent.request
        code = reply.msg_cd
        if tr_type == control.UNSUBSCRIBE:
            # Whatever the answer, KIS holds no registration we could still use.
            account.remote.pop(ticker, None)
            self._place()
        elif code in control.SUBSCRIBED or (reply.ok and code not in control.KNOWN):
            account.remote[ticker] = Remote.LIVE
        elif code == control.MAX_SUBSCRIBE_OVER:
            account.remote.pop(ticker, None)
            self._full(account, ticker)
        elif code in control.BAD_TARGET:
            account.remote.pop(ticker, None)
            self._unassign(ticker)
            msg = reply.msg1 or code
            self._refused[ticker] = SubStatus(ticker, SubState.REJECTED, account.label, code, msg)
            self._place()  # its slot is free
        else:  # transient, our bug (JSON error) or unknown: retried by the next session
            account.remote.pop(ticker, None)
            msg = reply.msg1 or reply.rt_cd or "refused"
            account.failed[ticker] = _Failure(SubState.REJECTED, code, msg)
        return request

    def expire(self, index: int) -> list[Unanswered]:
        """Requests of the account's session whose answer is overdue, now marked to be sent
        again (next_request returns them first) or, after the last timeout, given up."""
        account = self._accounts[index]
        now = self._clock()
        late: list[Unanswered] = []
        for sent in list(account.inflight):
            if sent.resend or sent.due > now:
                continue
            final = sent.attempts >= len(self._ack_timeouts)
            late.append(Unanswered(sent.request, sent.attempts, final))
            if sent.request[0] == control.SUBSCRIBE:
                account.overdue.add(sent.request[1])
            if final:
                account.inflight.remove(sent)
                self._give_up(account, sent)
            else:
                sent.resend = True
        return late

    def next_due_in(self, index: int) -> float | None:
        """Seconds until an answer of the account's session is overdue; None: none awaited."""
        dues = [sent.due for sent in self._accounts[index].inflight if not sent.resend]
        return max(0.0, min(dues) - self._clock()) if dues else None

    # -- reports ---------------------------------------------------------------------------

    def status(self, ticker: str) -> SubStatus:
        if ticker not in self._wanted:
            return SubStatus(ticker, SubState.NOT_WANTED)
        if ticker in self._refused:
            return self._refused[ticker]
        index = self._home.get(ticker)
        if index is None:
            slots = sum(account.cap for account in self._accounts)
            msg = f"all {slots} slots of {len(self._accounts)} account(s) in use"
            return SubStatus(ticker, SubState.NO_CAPACITY, msg=msg)
        account = self._accounts[index]
        if account.remote.get(ticker) is Remote.LIVE:
            return SubStatus(ticker, SubState.LIVE, account.label)
        failure = account.failed.get(ticker)
        if failure is not None:
            return SubStatus(ticker, failure.state, account.label, failure.msg_cd, failure.msg)
        return SubStatus(ticker, SubState.PENDING, account.label)

    def live(self, index: int) -> int:
        """Tickers KIS acknowledged on the account's current session."""
        return self._accounts[index].live()

    def limit(self, index: int) -> int:
        """The account's limit for this session (lowered by MAX SUBSCRIBE OVER)."""
        return self._accounts[index].cap

    def registered(self, index: int) -> list[str]:
        """Tickers KIS holds (or is about to) on the account's session."""
        return list(self._accounts[index].remote)

    # -- placement -------------------------------------------------------------------------

    def _place(self) -> None:
        """Give every wanted ticker without an account the first account with a free slot."""
        for ticker in self._wanted:
            if ticker in self._home or ticker in self._refused:
                continue
            # An account still holding it (wanted again before the unsubscribe went through)
            # keeps it; else the first with room.
            rooms = [i for i, account in enumerate(self._accounts) if account.has_room()]
            holders = [i for i in rooms if ticker in self._accounts[i].remote]
            for index in (holders or rooms)[:1]:
                self._accounts[index].assigned[ticker] = None
                self._home[ticker] = index

    def _sent(self, account: _Account, tr_type: str, ticker: str, state: Remote) -> Request:
        account.remote[ticker] = state
        request = (tr_type, ticker)
        account.inflight.append(_Sent(request, 1, self._clock() + self._ack_timeouts[0]))
        return request

    def _send_again(self, account: _Account, sent: _Sent) -> Request:
        """An overdue request goes out again, to the back of the line (KIS answers in order)."""
        sent.resend = False
        sent.due = self._clock() + self._ack_timeouts[sent.attempts]
        sent.attempts += 1
        account.inflight.remove(sent)
        account.inflight.append(sent)
        return sent.request

    def _give_up(self, account: _Account, sent: _Sent) -> None:
        tr_type, ticker = sent.request
        account.remote.pop(ticker, None)
        if tr_type == control.UNSUBSCRIBE:
            self._place()  # KIS may still hold it; the session's end drops it for sure
        elif ticker in account.assigned:
            msg = f"no answer from KIS to {sent.attempts} subscribe requests"
            account.failed[ticker] = _Failure(SubState.FAILED, None, msg)

    @staticmethod
    def _late_answer(account: _Account, reply: Reply) -> Request | None:
        """A subscribe ack nothing awaits, for a request that was overdue (the answer to a copy,
        or to one given up): KIS holds the ticker, so it is LIVE (or, no longer wanted here,
        unsubscribed next). Acks of anything else are not ours: None."""
        ticker = reply.tr_key
        if ticker not in account.overdue or reply.msg_cd not in control.SUBSCRIBED:
            return None
        if account.remote.get(ticker, Remote.LIVE) is not Remote.LIVE:
            return None
        account.remote[ticker] = Remote.LIVE
        account.failed.pop(ticker, None)
        return (control.SUBSCRIBE, ticker)

    def _unassign(self, ticker: str) -> None:
        index = self._home.pop(ticker, None)
        if index is not None:
            account = self._accounts[index]
            account.assigned.pop(ticker, None)
            account.failed.pop(ticker, None)

    def _full(self, account: _Account, ticker: str) -> None:
        """KIS has no slot left on this account: hold it to what KIS has, move the rest."""
        account.cap = min(account.cap, len(account.remote))
        self._unassign(ticker)
        waiting = [t for t in account.assigned if t not in account.remote]
        while len(account.assigned) > account.cap and waiting:
            self._unassign(waiting.pop())
        self._place()


def _match(inflight: deque[_Sent], tr_key: str) -> _Sent | None:
    """The request a reply answers: by its tr_key, else (no tr_key echoed) the oldest one.

    KIS answers requests in order, so the oldest is right when the header is missing.
    """
    if not tr_key:
        return inflight.popleft() if inflight else None
    for sent in inflight:
        if sent.request[1] == tr_key:
            inflight.remove(sent)
            return sent
    return None
