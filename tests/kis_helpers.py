"""Shared helpers for the feed tests: fast settings, a running feed, waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from bot.config import KisSettings
from bot.kis.connection import Timing
from bot.kis.feed import Feed, OnTicks
from bot.kis.simulator import Simulator
from bot.kis.status import SubState
from bot.ticks import Tick

TIMEOUT = 5.0  # upper bound for anything the tests wait for; they pass long before
FAST = Timing(healthy_after=30.0, open_timeout=2.0, close_timeout=0.5)


def appkey(n: int) -> str:
    return f"APPKEY-{n}-7f3a9c"


def appsecret(n: int) -> str:
    return f"APPSECRET-{n}-51e2d8"


def kis_settings(sim: Simulator, accounts: int = 1, **overrides: Any) -> KisSettings:
    """Settings for the simulator with small intervals (still valid KisSettings)."""
    values: dict[str, Any] = {
        "rest_url": sim.rest_url,
        "ws_url": sim.ws_url,
        "accounts": [{"appkey": appkey(n), "appsecret": appsecret(n)} for n in range(accounts)],
        "subscribe_interval": 0.001,
        "silence_timeout": 10.0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.4,
        "in_use_backoff": 5.0,
    }
    values.update(overrides)
    return KisSettings.model_validate(values)


class Ticks:
    """An on_ticks callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[list[Tick]] = []

    def __call__(self, ticks: list[Tick]) -> None:
        self.calls.append(list(ticks))

    @property
    def all(self) -> list[Tick]:
        return [tick for call in self.calls for tick in call]

    def tickers(self) -> set[str]:
        return {tick.ticker for tick in self.all}


async def eventually(condition: Callable[[], Any], within: float = TIMEOUT) -> Any:
    """Poll ``condition`` until it is truthy (returned); fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(feed: Feed) -> AsyncIterator[asyncio.Task[None]]:
    """Run the feed for the block; stop it afterwards and check that run() ended cleanly."""
    task = asyncio.create_task(feed.run())
    try:
        yield task
    finally:
        async with asyncio.timeout(TIMEOUT):
            await feed.stop()
            await task  # re-raises anything run() raised


def requests(sim: Simulator, tr_type: str) -> list[dict[str, Any]]:
    """Subscribe ("1") or unsubscribe ("2") requests the simulator received, in order."""
    return [
        r.message
        for r in sim.received
        if isinstance(r.message, dict) and r.message.get("header", {}).get("tr_type") == tr_type
    ]


def tr_keys(messages: list[dict[str, Any]]) -> list[str]:
    return [m["body"]["input"]["tr_key"] for m in messages]


async def live(feed: Feed, *tickers: str) -> None:
    statuses = await feed.wait_settled(tickers, timeout=TIMEOUT)
    assert {t: s.state for t, s in statuses.items()} == dict.fromkeys(tickers, SubState.LIVE)


class Problems:
    """An on_problem callback that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


@contextlib.asynccontextmanager
async def feed_on(
    sim: Simulator, on_ticks: OnTicks, *, names: Sequence[str] = (), **overrides: Any
) -> AsyncIterator[Feed]:
    """A real Feed against ``sim`` (FAST timing, kis_settings overrides), running for the block;
    one account per name in ``names`` (shown instead of account1, ...), else one unnamed."""
    settings = kis_settings(sim, max(1, len(names)), **overrides)
    if names:
        accounts = [
            account.model_copy(update={"name": name})
            for account, name in zip(settings.accounts, names, strict=True)
        ]
        settings = settings.model_copy(update={"accounts": accounts})
    feed = Feed(settings, on_ticks, timing=FAST)
    async with running(feed):
        yield feed


def wanted(feed: Feed, *tickers: str) -> set[str]:
    """Those of ``tickers`` the feed is asked to subscribe (in any state but NOT_WANTED)."""
    return {t for t in tickers if feed.status(t).state is not SubState.NOT_WANTED}


def registered(sim: Simulator) -> set[str]:
    """The codes the simulator holds a registration for, on any appkey."""
    return {tr_key for subs in sim.subscriptions.values() for _, tr_key in subs}
