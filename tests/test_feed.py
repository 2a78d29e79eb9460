"""The feed against the simulator on loopback: real WebSocket and REST servers, small intervals.

The last part: when KIS refuses or ignores the feed (codes it refuses, requests it never
answers, refused credentials, error answers echoing secrets) and what the admins hear of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
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
from bot.kis.recording import Recorder, read_recording
from bot.kis.simulator import Simulator
from bot.kis.status import SubState
from bot.messages import Catalogue, Locale
from bot.ticks import KST, parse_frame

A, B, C = "005930", "000660", "035720"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(rate=50, seed=3, pingpong_interval=60) as simulator:
        yield simulator


async def test_subscribe_goes_live_and_ticks_arrive(sim: Simulator) -> None:
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=FAST)
    feed.set_wanted([A, B])
    assert feed.status(A).state is SubState.PENDING
    async with running(feed):
        await live(feed, A, B)
        await eventually(lambda: ticks.tickers() == {A, B})
        stats = feed.stats()
    assert stats.ticks >= 2 and stats.last_tick_at is not None and stats.bad_frames == 0
    assert [(c.account, c.subscribed, c.limit) for c in stats.connections] == [("account1", 2, 41)]
    assert {tick.day for tick in ticks.all} == {datetime.now(KST).date()}
    sent = requests(sim, "1")
    assert tr_keys(sent) == [A, B]
    header = sent[0]["header"]
    assert header["custtype"] == "P" and header["content-type"] == "utf-8"
    assert header["approval_key"] in sim.approval_keys
    assert sent[0]["body"]["input"]["tr_id"] == "H0UNPGM0"


async def test_pingpong_is_echoed_as_text() -> None:
    # Slow data, quick PINGPONG: the link is idle most of the time.
    async with Simulator(rate=0.1, pingpong_interval=0.05) as sim:
        feed = Feed(kis_settings(sim), Ticks(), timing=FAST)
        feed.set_wanted([A])
        async with running(feed):
            await live(feed, A)
            await eventually(lambda: len(sim.pingpong_echoes) >= 3)
            # Too long for a pong control frame: echoed as text all the same.
            long = json.dumps(
                {"header": {"tr_id": "PINGPONG", "datetime": "2" * 14}, "x": "y" * 200}
            )
            await sim.send_raw(long)
            await eventually(lambda: long in sim.pingpong_echoes)
            await eventually(lambda: len(sim.pingpong_echoes) >= 5)
            assert sim.connections_accepted == 1
    for echo in sim.pingpong_echoes:
        assert isinstance(echo, str)  # a text message, not only a pong control frame
        header = json.loads(echo)["header"]
        assert header["tr_id"] == "PINGPONG" and len(header["datetime"]) == 14


async def test_multi_record_frames_deliver_every_record() -> None:
    async with Simulator(rate=50, seed=5, tickers_per_frame=3) as sim:
        ticks = Ticks()
        feed = Feed(kis_settings(sim), ticks, timing=FAST)
        feed.set_wanted([A, B, C])
        async with running(feed):
            await live(feed, A, B, C)
            # Once all three are registered, the simulator packs them into one frame.
            await eventually(lambda: any(len(call) == 3 for call in ticks.calls))
    full = next(call for call in ticks.calls if len(call) == 3)
    assert {tick.ticker for tick in full} == {A, B, C}
    assert all(t.ntby_tr_pbmn == t.shnu_tr_pbmn - t.seln_tr_pbmn for t in ticks.all)


async def test_encrypted_frames_are_decrypted_and_recorded_plain(tmp_path: Path) -> None:
    async with Simulator(rate=50, seed=9, encrypt=True) as sim:
        ticks = Ticks()
        recorder = Recorder(tmp_path)
        feed = Feed(kis_settings(sim), ticks, recorder=recorder, timing=FAST)
        feed.set_wanted([A, B])
        async with running(feed):
            await live(feed, A, B)
            await eventually(lambda: len(ticks.all) >= 10)
        recorder.close()
    assert feed.stats().bad_frames == 0
    lines = list(read_recording(tmp_path / f"{ticks.all[0].day.isoformat()}.tsv"))
    assert lines and all(frame.startswith("0|H0UNPGM0|") for _, _, frame in lines)
    replayed = [t for _, when, frame in lines for t in parse_frame(frame, when.date())]  # type: ignore[union-attr]
    assert replayed == ticks.all


async def test_recording_is_flushed_while_running(sim: Simulator, tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    feed = Feed(kis_settings(sim), Ticks(), recorder=recorder, timing=FAST, flush_interval=0.02)
    feed.set_wanted([A])
    async with running(feed):
        await live(feed, A)
        await eventually(lambda: any(p.stat().st_size > 0 for p in tmp_path.iterdir()))
    recorder.close()


async def test_reconnects_and_resubscribes_after_the_server_drops(sim: Simulator) -> None:
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=FAST)
    feed.set_wanted([A, B])
    async with running(feed):
        await live(feed, A, B)
        sim.drop_connections()  # no close frame, as when KIS restarts
        await eventually(lambda: sim.connections_accepted == 2)
        await live(feed, A, B)
        await eventually(lambda: len(sim.subscriptions.get(appkey(0), [])) == 2)
        before = len(ticks.all)
        await eventually(lambda: len(ticks.all) > before + 4)
    assert tr_keys(requests(sim, "1")) == [A, B, A, B]


async def test_already_in_use_backs_off_without_a_tight_loop(sim: Simulator) -> None:
    first, second = Ticks(), Ticks()
    holder = Feed(kis_settings(sim), first, timing=FAST)
    holder.set_wanted([A])
    # Same appkey; a tiny reconnect_min would loop fast if in_use_backoff were not honoured.
    intruder_settings = kis_settings(
        sim, reconnect_min=0.01, reconnect_max=0.02, in_use_backoff=0.4
    )
    problems = Problems()
    intruder = Feed(intruder_settings, second, timing=FAST, on_problem=problems)
    intruder.set_wanted([A])
    async with running(holder):
        await live(holder, A)
        async with running(intruder):
            await eventually(lambda: sim.connections_accepted >= 2)
            await asyncio.sleep(1.0)
            attempts = sim.connections_accepted - 1
            assert 2 <= attempts <= 4  # one try per in_use_backoff, not one per 10 ms
            assert intruder.status(A).state is SubState.PENDING
            assert "OPSP8996" in (intruder.stats().connections[0].last_error or "")
            # The holder is undisturbed.
            count = len(first.all)
            await eventually(lambda: len(first.all) > count)
            assert holder.status(A).state is SubState.LIVE
            await holder.stop()
            await live(intruder, A)  # the slot is free: the next try gets it
            await eventually(lambda: second.all)
    # The admins hear of it once, with KIS's words, however often it was refused.
    (told,) = problems.messages
    assert "account1" in told and "OPSP8996 ALREADY IN USE appkey" in told


# 41: the 42nd ticker goes to account 2. 40: KIS holds fewer slots than configured (41), so the
# 41st gets OPSP0008 on account 1 (and only it) and moves to account 2 with the 42nd.
@pytest.mark.parametrize("kis_limit", [41, 40])
async def test_tickers_beyond_an_accounts_slots_go_to_the_next(kis_limit: int) -> None:
    tickers = [f"{n:06d}" for n in range(1, 43)]
    async with Simulator(rate=5, max_subscriptions=kis_limit) as sim:
        feed = Feed(kis_settings(sim, accounts=2), Ticks(), timing=FAST)
        feed.set_wanted(tickers)
        async with running(feed):
            await live(feed, *tickers)
            subscriptions = sim.subscriptions
            stats = feed.stats()
    assert [key for _, key in subscriptions[appkey(0)]] == tickers[:kis_limit]
    assert sorted(key for _, key in subscriptions[appkey(1)]) == tickers[kis_limit:]
    assert [(c.subscribed, c.limit) for c in stats.connections] == [
        (kis_limit, kis_limit),
        (42 - kis_limit, 41),
    ]
    first = [
        m
        for m in requests(sim, "1")
        if sim.approval_keys[m["header"]["approval_key"]] == appkey(0)
    ]
    assert tr_keys(first[kis_limit:]) == tickers[kis_limit:41]  # refused there, then moved


async def test_no_capacity_when_every_account_is_full_until_a_slot_frees() -> None:
    tickers = ["000001", "000002", "000003", "000004", "000005"]
    async with Simulator(rate=5, max_subscriptions=2) as sim:
        feed = Feed(kis_settings(sim, accounts=2, max_subscriptions=2), Ticks(), timing=FAST)
        feed.set_wanted(tickers)
        async with running(feed):
            statuses = await feed.wait_settled(tickers)
            assert [s.state for s in statuses.values()] == [SubState.LIVE] * 4 + [
                SubState.NO_CAPACITY
            ]
            assert statuses["000005"].msg == "all 4 slots of 2 account(s) in use"
            feed.set_wanted(["000002", "000003", "000004", "000005"])
            await live(feed, "000005")
            assert feed.status("000005").account == "account1"
            assert feed.status("000001").state is SubState.NOT_WANTED


async def test_max_subscribe_over_on_every_account_means_no_capacity() -> None:
    tickers = ["000001", "000002", "000003"]
    async with Simulator(rate=5, max_subscriptions=1) as sim:
        feed = Feed(kis_settings(sim, accounts=2, max_subscriptions=2), Ticks(), timing=FAST)
        feed.set_wanted(tickers)
        async with running(feed):
            statuses = await feed.wait_settled(tickers)
            connections = feed.stats().connections
    assert [(c.subscribed, c.limit) for c in connections] == [(1, 1), (1, 1)]
    assert statuses["000001"].state is SubState.LIVE
    live_elsewhere = [s for s in statuses.values() if s.state is SubState.LIVE]
    assert sorted(s.account or "" for s in live_elsewhere) == ["account1", "account2"]
    (full,) = [s for s in statuses.values() if s.state is SubState.NO_CAPACITY]
    assert full.msg == "all 2 slots of 2 account(s) in use"


async def test_bad_frames_are_skipped_and_the_connection_stays_up(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.kis")
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        await live(feed, A)
        garbage = await sim.send_garbage()
        invalid_utf8 = b"0|H0UNPGM0|001|005930^09\xff\xfe00^1^2^3^4^1^2^5^6^1"
        for _ in range(3):
            await sim.send_raw(invalid_utf8, text=True)
            await sim.send_raw(b'{"header": \xc3\x28}', text=True)
        for hhmmss in ("235958", "235959"):  # KIS added a column: not bad, used
            await sim.send_raw(f"0|H0UNPGM0|001|{A}^{hhmmss}^1^2^3^4^1^2^5^6^1^new")
        count = len(ticks.all)
        await eventually(lambda: len(ticks.all) > count + 3)  # later ticks still arrive
        stats = feed.stats()
    assert sim.connections_accepted == 1
    assert stats.connections[0].connected
    assert stats.bad_frames == len(garbage) + 6
    wide = [t for t in ticks.all if t.hhmmss.startswith("2359")]
    assert [(t.hhmmss, t.whol_ntby_qty) for t in wide] == [("235958", 1), ("235959", 1)]
    notices = [r.getMessage() for r in caplog.records if "records of 12 fields" in r.getMessage()]
    assert notices == ["records of 12 fields tr_id=H0UNPGM0: the first 11 are used"]  # once
    logged = [r.getMessage() for r in caplog.records if "bad frame skipped" in r.getMessage()]
    kinds = [message.split("kind=")[1].split()[0] for message in logged]
    assert sorted(kinds) == sorted(set(kinds))  # once per kind
    assert {"utf8", "control", "flag", "fields", "number", "time", "envelope", "decrypt"} <= set(
        kinds
    )


async def test_only_wanted_tickers_are_passed_on(sim: Simulator) -> None:
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        await live(feed, A)
        mixed = f"0|H0UNPGM0|002|{B}^090000^1^2^3^4^2^2^5^6^1^{A}^235959^1^2^3^4^2^2^5^6^1"
        await sim.send_raw(mixed)
        await eventually(lambda: any(t.hhmmss == "235959" for t in ticks.all))
    assert ticks.tickers() == {A}


async def test_unsubscribe_sends_tr_type_2_and_stops_ticks(sim: Simulator) -> None:
    ticks = Ticks()
    feed = Feed(kis_settings(sim), ticks, timing=FAST)
    feed.set_wanted([A, B])
    async with running(feed):
        await live(feed, A, B)
        feed.set_wanted([A])
        assert feed.status(B).state is SubState.NOT_WANTED
        await eventually(lambda: sim.subscriptions.get(appkey(0)) == [("H0UNPGM0", A)])
        calls = len(ticks.calls)
        await eventually(lambda: len(ticks.calls) > calls + 5)
        assert feed.stats().connections[0].subscribed == 1
    (unsubscribe,) = requests(sim, "2")
    assert unsubscribe["body"]["input"] == {"tr_id": "H0UNPGM0", "tr_key": B}
    assert all(tick.ticker == A for call in ticks.calls[calls:] for tick in call)


async def test_a_new_approval_key_after_invalid_approval(sim: Simulator) -> None:
    feed = Feed(kis_settings(sim), Ticks(), timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        await live(feed, A)
        old_key = requests(sim, "1")[0]["header"]["approval_key"]
        sim.invalidate_approval_keys()
        sim.drop_connections()
        # The reconnect uses the cached key, gets OPSP0011, asks for a new key and retries.
        await eventually(lambda: len(sim.rest_requests) == 2)
        await live(feed, A)
    keys = [m["header"]["approval_key"] for m in requests(sim, "1")]
    assert keys[0] == keys[1] == old_key
    assert keys[-1] != old_key and keys[-1] in sim.approval_keys


class FlakyApproval:
    """An approval endpoint that fails in every way before it forwards to the simulator."""

    FAILURES = (
        web.Response(status=500, text="internal error"),
        web.Response(status=200, text="<html>not json</html>"),
        web.json_response({"error_code": "EGW00123", "error_description": "no key for you"}),
    )

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests <= len(self.FAILURES):
            return self.FAILURES[self.requests - 1]
        async with httpx.AsyncClient() as http:
            answer = await http.post(self.upstream + request.path, content=await request.read())
        return web.Response(status=answer.status_code, text=answer.text)


async def test_approval_errors_are_retried_not_fatal(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.kis")
    flaky = FlakyApproval(sim.rest_url)
    app = web.Application()
    app.router.add_post("/oauth2/Approval", flaky.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        settings = kis_settings(sim, rest_url=f"http://127.0.0.1:{port}", reconnect_min=0.02)
        feed = Feed(settings, Ticks(), timing=FAST)
        feed.set_wanted([A])
        async with running(feed) as task:
            await live(feed, A)
            assert not task.done()
    finally:
        await runner.cleanup()
    assert flaky.requests == 4
    warnings = [r.getMessage() for r in caplog.records if "no approval key" in r.getMessage()]
    assert len(warnings) == 3
    assert "status=500" in warnings[0] and "not JSON" in warnings[1]
    assert "no approval_key" in warnings[2]


async def test_silence_watchdog_reconnects(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.kis")
    ticks = Ticks()
    feed = Feed(kis_settings(sim, silence_timeout=0.2), ticks, timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        await live(feed, A)
        sim.pause_data()  # no data, no PINGPONG
        await eventually(lambda: sim.connections_accepted >= 2)
        sim.resume_data()
        await live(feed, A)
        count = len(ticks.all)
        await eventually(lambda: len(ticks.all) > count)
    assert any("silence account=account1" in r.getMessage() for r in caplog.records)
    assert not any("connection lost" in r.getMessage() for r in caplog.records)


async def test_a_server_that_closes_at_once_is_not_hammered(sim: Simulator) -> None:
    sim.close_after_accept = True
    settings = kis_settings(sim, reconnect_min=0.05, reconnect_max=0.4)
    feed = Feed(settings, Ticks(), timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        await asyncio.sleep(1.0)
        attempts = sim.connections_accepted
        assert feed.status(A).state is SubState.PENDING
    # Delays 0.05, 0.1, 0.2, 0.4, 0.4 (+ up to 25 % jitter): about 5 tries in a second.
    assert 3 <= attempts <= 7


@pytest.mark.parametrize(("healthy_after", "grows"), [(0.1, False), (30.0, True)])
async def test_backoff_resets_only_after_a_healthy_connection(
    sim: Simulator, caplog: pytest.LogCaptureFixture, healthy_after: float, grows: bool
) -> None:
    caplog.set_level(logging.INFO, logger="bot.kis.connection")
    settings = kis_settings(sim, reconnect_min=0.02, reconnect_max=1.0)
    timing = Timing(healthy_after=healthy_after, open_timeout=2.0, close_timeout=0.5)
    feed = Feed(settings, Ticks(), timing=timing)
    feed.set_wanted([A])
    async with running(feed):
        for drops in range(1, 4):
            await live(feed, A)
            await asyncio.sleep(0.15)
            sim.drop_connections()
            await eventually(lambda: sim.connections_accepted > drops)  # noqa: B023 (awaited)
    delays = [
        float(r.getMessage().split("in_seconds=")[1])
        for r in caplog.records
        if "reconnecting" in r.getMessage()
    ]
    assert len(delays) == 3
    if grows:  # 0.02, 0.04, 0.08 (+ jitter)
        assert delays == sorted(delays) and delays[2] >= 0.08
    else:
        assert all(0.02 <= d <= 0.025 for d in delays)


async def test_stop_sends_a_close_frame(sim: Simulator) -> None:
    feed = Feed(kis_settings(sim), Ticks(), timing=FAST)
    feed.set_wanted([A])
    task = asyncio.create_task(feed.run())
    await live(feed, A)
    (client,) = sim.clients
    async with asyncio.timeout(TIMEOUT):
        await feed.stop()
    assert task.done() and task.exception() is None
    assert client.ws.close_code == 1000  # the client's close frame reached the server
    await eventually(lambda: not sim.clients)
    assert not feed.stats().connections[0].connected


async def test_a_failing_consumer_does_not_drop_the_connection(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken(ticks: list[Any]) -> None:
        calls.append(len(ticks))
        raise RuntimeError("consumer bug")

    feed = Feed(kis_settings(sim), broken, timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        await live(feed, A)
        await eventually(lambda: len(calls) >= 3)
    assert sim.connections_accepted == 1
    failures = [r for r in caplog.records if "on_ticks failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info  # once, with its traceback


async def test_set_wanted_refuses_a_bad_ticker_and_changes_nothing(sim: Simulator) -> None:
    feed = Feed(kis_settings(sim), Ticks(), timing=FAST)
    feed.set_wanted([A])
    with pytest.raises(ValueError, match="6-character"):
        feed.set_wanted([A, "SAMSUNG"])
    assert feed.status(A).state is SubState.PENDING
    feed.set_wanted([5930])  # type: ignore[list-item]  # unquoted YAML numbers are padded
    assert feed.status(A).state is SubState.PENDING
    assert feed.status(B).state is SubState.NOT_WANTED


async def test_without_accounts_nothing_fits(sim: Simulator) -> None:
    feed = Feed(kis_settings(sim, accounts=0), Ticks(), timing=FAST)
    feed.set_wanted([A])
    async with running(feed):
        status = (await feed.wait_settled([A], timeout=0.1))[A]
    assert status.state is SubState.NO_CAPACITY
    assert status.msg == "all 0 slots of 0 account(s) in use"


async def test_no_secret_reaches_the_logs(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    feed = Feed(kis_settings(sim, accounts=2, max_subscriptions=1), Ticks(), timing=FAST)
    feed.set_wanted([A, B])
    async with running(feed):
        await live(feed, A, B)
        sim.invalidate_approval_keys()
        sim.drop_connections()
        await eventually(lambda: len(sim.rest_requests) == 4)
        await live(feed, A, B)
        sim.accepted_appkeys = set()  # every approval refused from now on
        sim.invalidate_approval_keys()
        sim.drop_connections()
        await eventually(lambda: "no approval key" in caplog.text)
    secrets = [appkey(0), appkey(1), appsecret(0), appsecret(1)]
    secrets += [m["header"]["approval_key"] for m in requests(sim, "1")]
    for secret in secrets:
        assert secret not in caplog.text
    assert "account1" in caplog.text and "account2" in caplog.text


# -- when KIS refuses or ignores us: what the feed does and what the admins hear ---------------

UNKNOWN = "999999"  # well formed, but no stock KIS knows
QUICK_ACKS = Timing(
    healthy_after=30.0, open_timeout=2.0, close_timeout=0.5, ack_timeouts=(0.1, 0.2)
)


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


REFUSED_APPKEY = {
    "ko": "KIS {label}: 승인키 발급이 거부되었습니다 "
    "(HTTP 403: EGW00103 유효하지 않은 AppKey입니다.). "
    "appkey/appsecret 설정을 확인해 주세요. 계속 재시도합니다.",
    "en": "KIS {label}: the approval key was refused (HTTP 403: EGW00103 유효하지 않은 "
    "AppKey입니다.). Check the appkey/appsecret settings. Retrying.",
}


@pytest.mark.parametrize("locale", ["ko", "en"])
async def test_a_refused_appkey_is_told_once_and_retried_until_fixed(
    sim: Simulator, caplog: pytest.LogCaptureFixture, locale: Locale
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.kis")
    sim.accepted_appkeys = set()  # KIS: 403 EGW00103 for every appkey
    problems = Problems()
    settings = kis_settings(sim, accounts=2, max_subscriptions=1, reconnect_min=0.01)
    feed = Feed(settings, Ticks(), timing=FAST, on_problem=problems, say=Catalogue(locale))
    feed.set_wanted([A, B])
    async with running(feed):
        await eventually(lambda: len(sim.rest_requests) >= 8)  # retried, with backoff
        assert feed.status(A).state is SubState.PENDING
        sim.accepted_appkeys = None  # fixed on KIS's side
        await live(feed, A, B)
    # Once per account, with KIS's message, no secret in it, in the bot's language.
    assert sorted(problems.messages) == sorted(
        REFUSED_APPKEY[locale].format(label=label) for label in ("account1", "account2")
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


def test_a_failing_problem_hook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def broken(message: str) -> None:
        calls.append(message)
        raise RuntimeError("hook bug")

    feed = Feed(kis_settings_offline(), Ticks(), on_problem=broken, say=Catalogue("en"))
    feed.problem("approval", "account1", "kis.approval", status=403, said="first\nline")
    feed.problem("approval", "account1", "kis.approval", status=403, said="again")  # not again
    feed.problem("approval", "account2", "kis.approval", status=500, said="other")
    assert [call.partition(". Check")[0] for call in calls] == [
        "KIS account1: the approval key was refused (HTTP 403: first line)",  # one line
        "KIS account2: the approval key was refused (HTTP 500: other)",
    ]
    assert sum("on_problem failed" in r.getMessage() for r in caplog.records) == 2


def kis_settings_offline() -> KisSettings:
    return KisSettings.model_validate(
        {"rest_url": "http://127.0.0.1:9", "ws_url": "ws://127.0.0.1:9", "accounts": []}
    )
