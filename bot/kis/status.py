"""What the feed reports about itself: per-ticker subscription state and per-connection health.

These types are the feed's public face for the rest of the bot (/watch replies, /list, /status).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class SubState(StrEnum):
    PENDING = "pending"  # wanted, not yet acknowledged (or waiting for a connection)
    LIVE = "live"  # KIS acknowledged (SUBSCRIBE SUCCESS or ALREADY IN SUBSCRIBE)
    REJECTED = "rejected"  # KIS refused this ticker (msg_cd/msg say why)
    FAILED = "failed"  # KIS never answered our requests for it (msg says how many were sent)
    NO_CAPACITY = "no_capacity"  # every account's subscription slots are in use
    NOT_WANTED = "not_wanted"  # nobody asked for it


@dataclass(frozen=True, slots=True)
class SubStatus:
    ticker: str
    state: SubState
    account: str | None = None  # label of the account holding (or that rejected) the ticker
    msg_cd: str | None = None  # KIS message code of a rejection, e.g. OPSP0008
    msg: str | None = None  # KIS msg1, or our own explanation (no capacity, no answer)


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    account: str  # label, never the appkey
    connected: bool
    subscribed: int  # tickers acknowledged on this connection
    limit: int  # max subscriptions of this account
    last_error: str | None = None
    connected_since: datetime | None = None
    # Counters since start, for metrics: data frames, their records, sessions lost and retried,
    # and the monotonic time of the last data frame (None before the first).
    frames: int = 0
    records: int = 0
    reconnects: int = 0
    last_data_at: float | None = None


@dataclass(frozen=True, slots=True)
class FeedStats:
    connections: list[ConnectionStatus] = field(default_factory=list)
    ticks: int = 0  # ticks received since start
    last_tick_at: datetime | None = None  # wall-clock receive time of the last tick
    bad_frames: int = 0  # frames or records skipped as malformed
    bad_kinds: dict[str, int] = field(default_factory=dict)  # the same, by kind (metrics)

    @property
    def used(self) -> int:
        return sum(c.subscribed for c in self.connections)

    @property
    def capacity(self) -> int:
        return sum(c.limit for c in self.connections)
