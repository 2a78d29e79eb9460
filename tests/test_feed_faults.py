"""What the feed does when KIS refuses or ignores it, against the simulator and loopback servers:
codes KIS refuses, requests it never answers, refused credentials (and what the admins hear),
error answers that echo secrets, records wider than 11 fields."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from kis_helpers import (
    FAST,
    TIMEOUT,
    Problems,
    Ticks,
    appkey,
    appsecret,
    eventually,
    kis_settings,
    live,
    requests,
    running,
    tr_keys,
)

from bot.config import KisSettings
from bot.kis.connection import Timing
from bot.kis.feed import Feed
from bot.kis.simulator import Simulator
from bot.kis.status import SubState

A, B = "005930", "000660"
UNKNOWN = "999999"  # well formed, but no stock KIS knows
QUICK_ACKS = Timing(
    healthy_after=30.0, open_timeout=2.0, close_timeout=0.5, ack_timeouts=(0.1, 0.2)
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(rate=50, seed=3, pingpong_interval=60) as simulator:
        yield simulator


async def test_a_code_kis_refuses_ends_rejected_and_the_others_flow(sim: Simulator) -> None:
    sim.reject = {UNKNOWN}
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=FAST)
    feed.set_wanted([A, UNKNOWN])  # as /watch does: want, then wait for the verdict
    async with running(feed):
        statuses = await feed.wait_settled([A, UNKNOWN], timeout=TIMEOUT)
        await eventually(lambda: ticks.all)
    refused = statuses[UNKNOWN]
    assert (refused.state, refused.account, refused.msg_cd, refused.msg) == (
        SubState.REJECTED,
        "account1",
        "OPSP8992",
        "invalid tr_key",
    )
    assert statuses[A].state is SubState.LIVE
    assert ticks.tickers() == {A}
    assert tr_keys(requests(sim, "1")) == [A, UNKNOWN]  # refused for good: not tried again


async def test_an_unanswered_subscribe_is_sent_again_then_failed_and_reported(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.kis")
    sim.unanswered = {B}
    problems = Problems()
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=QUICK_ACKS, on_problem=problems)
    feed.set_wanted([A, B])
    async with running(feed):
        statuses = await feed.wait_settled([A, B], timeout=TIMEOUT)
        count = len(ticks.all)
        await eventually(lambda: len(ticks.all) > count)  # the session is fine otherwise
    failed = statuses[B]
    assert (failed.state, failed.account, failed.msg_cd, failed.msg) == (
        SubState.FAILED,
        "account1",
        None,
        "no answer from KIS to 2 subscribe requests",
    )
    assert statuses[A].state is SubState.LIVE
    assert tr_keys(requests(sim, "1")) == [A, B, B]  # sent once more, then given up
    assert sim.connections_accepted == 1
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        "request sent again account=account1 tr_type=1 tr_key=000660 attempt=2" in m
        for m in logged
    )
    assert any(
        "request given up account=account1 tr_type=1 tr_key=000660 attempts=2" in m for m in logged
    )
    (told,) = problems.messages
    assert "account1" in told and B in told and "\n" not in told


async def test_a_subscribe_answered_once_sent_again_goes_live(sim: Simulator) -> None:
    sim.unanswered = {B}  # the first request is lost
    slow_second = Timing(open_timeout=2.0, close_timeout=0.5, ack_timeouts=(0.1, 5.0))
    feed = Feed(kis_settings(sim), Ticks(), timing=slow_second)
    feed.set_wanted([A, B])
    async with running(feed):
        await eventually(lambda: B in tr_keys(requests(sim, "1")))
        sim.unanswered.clear()
        await live(feed, A, B)
    assert tr_keys(requests(sim, "1")) == [A, B, B]


async def test_a_refused_appkey_is_told_once_and_retried_until_fixed(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.kis")
    sim.accepted_appkeys = set()  # KIS: 403 EGW00103 for every appkey
    problems = Problems()
    settings = kis_settings(sim, accounts=2, max_subscriptions=1, reconnect_min=0.01)
    feed = Feed(settings, Ticks(), timing=FAST, on_problem=problems)
    feed.set_wanted([A, B])
    async with running(feed):
        await eventually(lambda: len(sim.rest_requests) >= 8)  # retried, with backoff
        assert feed.status(A).state is SubState.PENDING
        sim.accepted_appkeys = None  # fixed on KIS's side
        await live(feed, A, B)
    # Once per account, with KIS's message, no secret in it.
    assert sorted(problems.messages) == sorted(
        f"KIS {label}: 승인키 발급이 거부되었습니다 "
        "(HTTP 403: EGW00103 유효하지 않은 AppKey입니다.). "
        "appkey/appsecret 설정을 확인해 주세요. 계속 재시도합니다."
        for label in ("account1", "account2")
    )
    warnings = [r for r in caplog.records if "no approval key" in r.getMessage()]
    assert len(warnings) >= 8  # the log keeps every try


def secret_prefixes(*secrets: str) -> list[str]:
    return [secret[:length] for secret in secrets for length in range(4, len(secret) + 1)]


class EchoingApproval:
    """An approval endpoint that refuses with the request body echoed after a padding, so that
    the 200-character quote is cut in a secret: at each place of the appkey and the appsecret,
    one request after the other."""

    QUOTED = 200

    def __init__(self, *secrets: str) -> None:
        self.secrets = secrets
        self.cuts: list[int] | None = None  # places in the body, still to cut at

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        if self.cuts is None:
            self.cuts = [
                body.index(secret) + n for secret in self.secrets for n in range(1, len(secret))
            ]
        cut = self.cuts.pop() if self.cuts else len(body)
        return web.Response(status=400, text="#" * (self.QUOTED - cut) + body)

    @property
    def done(self) -> bool:
        return self.cuts == []


async def test_no_part_of_a_secret_reaches_a_warning(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = EchoingApproval(appkey(0), appsecret(0))
    app = web.Application()
    app.router.add_post("/oauth2/Approval", echo.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    problems = Problems()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        settings = kis_settings(sim, rest_url=url, reconnect_min=0.001, reconnect_max=0.002)
        feed = Feed(settings, Ticks(), timing=FAST, on_problem=problems)
        feed.set_wanted([A])
        async with running(feed):
            await eventually(lambda: echo.done, within=3 * TIMEOUT)
            await eventually(lambda: caplog.text.count("no approval key") > 32)
    finally:
        await runner.cleanup()
    text = caplog.text + "\n".join(problems.messages)
    assert "status=400" in text and "***" in text
    leaks = [prefix for prefix in secret_prefixes(appkey(0), appsecret(0)) if prefix in text]
    assert leaks == []


async def test_wider_records_are_used_and_noticed_once(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.kis")
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        await live(feed, A)
        for hhmmss in ("235958", "235959"):  # KIS added a column
            await sim.send_raw(f"0|H0UNPGM0|001|{A}^{hhmmss}^1^2^3^4^1^2^5^6^1^new")
        await eventually(lambda: any(t.hhmmss == "235959" for t in ticks.all))
    wide = [t for t in ticks.all if t.hhmmss.startswith("2359")]
    assert [(t.hhmmss, t.whol_ntby_qty) for t in wide] == [("235958", 1), ("235959", 1)]
    notices = [r.getMessage() for r in caplog.records if "records of 12 fields" in r.getMessage()]
    assert notices == ["records of 12 fields tr_id=H0UNPGM0: the first 11 are used"]
    assert feed.stats().bad_frames == 0


def test_a_failing_problem_hook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def broken(message: str) -> None:
        calls.append(message)
        raise RuntimeError("hook bug")

    feed = Feed(kis_settings_offline(), Ticks(), on_problem=broken)
    feed.problem("approval", "account1", "first\nline")
    feed.problem("approval", "account1", "again")  # the same kind and account: not again
    feed.problem("approval", "account2", "other account")
    assert calls == ["first line", "other account"]
    assert sum("on_problem failed" in r.getMessage() for r in caplog.records) == 2


def kis_settings_offline() -> KisSettings:
    return KisSettings.model_validate(
        {"rest_url": "http://127.0.0.1:9", "ws_url": "ws://127.0.0.1:9", "accounts": []}
    )
