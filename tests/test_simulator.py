"""The KIS simulator, driven over real loopback sockets by a plain websockets client and httpx."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from bot.cli import main
from bot.kis.crypto import decrypt_payload
from bot.kis.simulator import Simulator, protocol
from bot.kis.simulator.market import Market, base_price
from bot.kis.simulator.replay import replay_gap
from bot.ticks import KST, FrameError, Tick, parse_frame, parse_records, split_frame

DAY = date(2025, 3, 14)
FIXED = datetime(2025, 3, 14, 9, 30, 15, tzinfo=KST)
TIMEOUT = 5.0


def fixed_clock() -> datetime:
    return FIXED


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(rate=50, seed=7, clock=fixed_clock, pingpong_interval=60) as simulator:
        yield simulator


async def approve(sim: Simulator | str, appkey: str = "APPKEY-1") -> str:
    rest_url = sim if isinstance(sim, str) else sim.rest_url
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{rest_url}/oauth2/Approval",
            json={"grant_type": "client_credentials", "appkey": appkey, "secretkey": "secret"},
        )
    assert response.status_code == 200, response.text
    key: str = response.json()["approval_key"]
    return key


def request(key: str, tr_key: str, *, tr_type: str = "1", tr_id: str = "H0UNPGM0") -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": key,
                "custtype": "P",
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


def connect(sim: Simulator | str, path: str = "") -> Any:
    ws_url = sim if isinstance(sim, str) else sim.ws_url
    return websockets.connect(ws_url + path, ping_interval=None)


async def next_message(
    ws: ClientConnection, wanted: Callable[[str], bool], within: float = TIMEOUT
) -> str:
    """The next message that satisfies ``wanted``, skipping the others."""
    async with asyncio.timeout(within):
        while True:
            message = await ws.recv()
            assert isinstance(message, str)
            if wanted(message):
                return message


async def sim_wait(condition: Callable[[], bool]) -> None:
    """Wait until the simulator's state satisfies ``condition``."""
    async with asyncio.timeout(TIMEOUT):
        while not condition():  # noqa: ASYNC110 (polls simulator state; no event to await)
            await asyncio.sleep(0.005)


def is_control(message: str) -> bool:
    return message.startswith("{") and '"PINGPONG"' not in message


async def control(ws: ClientConnection) -> dict[str, Any]:
    """The next control message (ack or error), skipping data frames and PINGPONG."""
    message: dict[str, Any] = json.loads(await next_message(ws, is_control))
    return message


async def subscribe(ws: ClientConnection, key: str, tr_key: str, **kw: str) -> dict[str, Any]:
    await ws.send(request(key, tr_key, **kw))
    return await control(ws)


async def collect_ticks(ws: ClientConnection, count: int) -> tuple[list[str], list[Tick]]:
    frames: list[str] = []
    ticks: list[Tick] = []
    while len(ticks) < count:
        frame = await next_message(ws, lambda m: m[0] in "01")
        frames.append(frame)
        ticks.extend(parse_frame(frame, DAY))
    return frames, ticks


# -- approval REST ------------------------------------------------------------------------


async def test_approval_issues_distinct_keys(sim: Simulator) -> None:
    first, second = await approve(sim), await approve(sim)
    assert first != second
    assert sim.approval_keys == {first: "APPKEY-1", second: "APPKEY-1"}
    assert sim.rest_requests[0].path == "/oauth2/Approval"


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "EGW00001"),
        (b"[1, 2]", 400, "EGW00001"),
        (b'{"grant_type": "client_credentials", "appkey": "A"}', 400, "EGW00002"),
        (b'{"grant_type": "password", "appkey": "A", "secretkey": "S"}', 400, "EGW00004"),
        (
            b'{"grant_type": "client_credentials", "appkey": "NO", "secretkey": "S"}',
            403,
            "EGW00103",
        ),
    ],
)
async def test_approval_errors(content: bytes, status: int, code: str) -> None:
    async with (
        Simulator(accepted_appkeys={"A"}) as sim,
        httpx.AsyncClient() as http,
    ):
        response = await http.post(f"{sim.rest_url}/oauth2/Approval", content=content)
        assert response.status_code == status
        assert response.json()["error_code"] == code
        assert response.json()["error_description"]
        assert sim.approval_keys == {}


async def test_access_token_for_the_official_sample(sim: Simulator) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sim.rest_url}/oauth2/tokenP",
            json={"grant_type": "client_credentials", "appkey": "A", "appsecret": "S"},
        )
    body = response.json()
    assert response.status_code == 200
    assert body["access_token"]
    datetime.strptime(body["access_token_token_expired"], "%Y-%m-%d %H:%M:%S")


# -- subscriptions and data ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/", "/tryitout"])
async def test_subscribe_ack_carries_iv_and_key(sim: Simulator, path: str) -> None:
    key = await approve(sim)
    async with connect(sim, path) as ws:
        ack = await subscribe(ws, key, "005930")
    assert ack["header"] == {"tr_id": "H0UNPGM0", "tr_key": "005930", "encrypt": "N"}
    body = ack["body"]
    assert (body["rt_cd"], body["msg_cd"], body["msg1"]) == ("0", "OPSP0000", "SUBSCRIBE SUCCESS")
    assert len(body["output"]["iv"]) == 16
    assert len(body["output"]["key"]) == 32


async def test_data_frames_parse_and_add_up(sim: Simulator) -> None:
    key = await approve(sim)
    async with connect(sim) as ws:
        for ticker in ("005930", "000660", "0126Z0"):
            assert (await subscribe(ws, key, ticker))["body"]["msg_cd"] == "OPSP0000"
        _, ticks = await collect_ticks(ws, 60)
    last: dict[str, Tick] = {}
    for tick in ticks:
        assert tick.hhmmss == "093015"  # the simulated clock
        assert tick.ntby_cnqn == tick.shnu_cnqn - tick.seln_cnqn
        assert tick.ntby_tr_pbmn == tick.shnu_tr_pbmn - tick.seln_tr_pbmn
        assert tick.whol_ntby_qty == tick.shnu_rsqn - tick.seln_rsqn
        assert min(tick.seln_rsqn, tick.shnu_rsqn) >= 0
        # Values are volume x price: the average price stays within the daily limits.
        base = base_price(tick.ticker)
        assert 0.7 * base <= tick.shnu_tr_pbmn / tick.shnu_cnqn <= 1.3 * base
        previous = last.get(tick.ticker)
        if previous is not None:
            assert tick.seln_cnqn >= previous.seln_cnqn
            assert tick.shnu_cnqn >= previous.shnu_cnqn
            assert tick.seln_tr_pbmn >= previous.seln_tr_pbmn
            assert tick.shnu_tr_pbmn >= previous.shnu_tr_pbmn
        last[tick.ticker] = tick
    assert set(last) == {"005930", "000660", "0126Z0"}


async def test_multi_record_frames_group_one_tr_id() -> None:
    async with Simulator(rate=50, seed=1, tickers_per_frame=2) as sim:
        key = await approve(sim)
        async with connect(sim) as ws:
            for ticker in ("005930", "000660", "035720"):
                await subscribe(ws, key, ticker)
            await subscribe(ws, key, "005930", tr_id="H0STPGM0")
            frames, _ = await collect_ticks(ws, 40)
    wanted = {
        "H0UNPGM0": {"005930", "000660", "035720"},
        "H0STPGM0": {"005930"},
    }
    counts = set()
    for text in frames:
        frame = split_frame(text)
        counts.add(frame.records)
        assert frame.records <= 2
        tickers = {tick.ticker for tick in parse_frame(text, DAY)}
        assert tickers <= wanted[frame.tr_id]
    assert 2 in counts


async def test_each_connection_gets_only_its_own_subscriptions(sim: Simulator) -> None:
    key_a, key_b = await approve(sim, "APP-A"), await approve(sim, "APP-B")
    async with connect(sim) as ws_a, connect(sim) as ws_b:
        await subscribe(ws_a, key_a, "005930")
        await subscribe(ws_b, key_b, "000660")
        _, ticks_a = await collect_ticks(ws_a, 20)
        _, ticks_b = await collect_ticks(ws_b, 20)
        assert {t.ticker for t in ticks_a} == {"005930"}
        assert {t.ticker for t in ticks_b} == {"000660"}
        assert sim.subscriptions == {
            "APP-A": [("H0UNPGM0", "005930")],
            "APP-B": [("H0UNPGM0", "000660")],
        }
        assert sorted(tuple(c.appkeys) for c in sim.clients) == [("APP-A",), ("APP-B",)]


# -- error paths ----------------------------------------------------------------------------


def code_of(message: dict[str, Any]) -> str:
    code: str = message["body"]["msg_cd"]
    return code


async def test_max_subscriptions_refuses_only_the_extra_key() -> None:
    async with Simulator(rate=50, max_subscriptions=3) as sim:
        key = await approve(sim)
        async with connect(sim) as ws:
            for ticker in ("005930", "000660", "035720"):
                assert code_of(await subscribe(ws, key, ticker)) == "OPSP0000"
            over = await subscribe(ws, key, "035420")
            assert code_of(over) == "OPSP0008"
            assert over["body"]["msg1"] == "MAX SUBSCRIBE OVER"
            assert over["header"]["tr_key"] == "035420"
            _, ticks = await collect_ticks(ws, 30)
    assert {t.ticker for t in ticks} == {"005930", "000660", "035720"}


async def test_second_connection_with_same_appkey_is_refused_and_closed(sim: Simulator) -> None:
    first_key, second_key = await approve(sim), await approve(sim)
    async with connect(sim) as first, connect(sim) as second:
        await subscribe(first, first_key, "005930")
        refused = await subscribe(second, second_key, "000660")
        assert code_of(refused) == "OPSP8996"
        assert refused["body"]["msg1"] == "ALREADY IN USE appkey"
        assert sim.appkeys_refused == 1  # counted (the standby tests assert none)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(second.recv(), TIMEOUT)
        _, ticks = await collect_ticks(first, 5)  # the holder keeps streaming
        assert {t.ticker for t in ticks} == {"005930"}
    # Once the holder is gone, the appkey is free again.
    await sim_wait(lambda: not sim.clients)
    async with connect(sim) as third:
        assert code_of(await subscribe(third, second_key, "000660")) == "OPSP0000"


@pytest.mark.parametrize(
    ("tr_id", "tr_key", "code", "msg1"),
    [
        ("H0STCNT0", "005930", "OPSP8991", "invalid tr_id"),
        ("H0UNPGM0", "5930", "OPSP8992", "invalid tr_key"),
        ("H0UNPGM0", "00593a", "OPSP8992", "invalid tr_key"),
        ("H0UNPGM0", "", "OPSP8992", "invalid tr_key"),
    ],
)
async def test_invalid_tr_id_and_tr_key(
    sim: Simulator, tr_id: str, tr_key: str, code: str, msg1: str
) -> None:
    key = await approve(sim)
    async with connect(sim) as ws:
        reply = await subscribe(ws, key, tr_key, tr_id=tr_id)
    assert (reply["body"]["rt_cd"], code_of(reply), reply["body"]["msg1"]) == ("1", code, msg1)
    assert reply["header"]["tr_id"] == tr_id
    assert sim.subscriptions == {}


async def test_a_well_formed_code_can_be_refused_as_kis_may(sim: Simulator) -> None:
    sim.reject = {"999999"}
    key = await approve(sim)
    async with connect(sim) as ws:
        reply = await subscribe(ws, key, "999999")
        assert reply["header"]["tr_key"] == "999999"
        assert (reply["body"]["rt_cd"], code_of(reply), reply["body"]["msg1"]) == (
            "1",
            "OPSP8992",
            "invalid tr_key",
        )
        assert code_of(await subscribe(ws, key, "005930")) == "OPSP0000"
    assert Simulator(reject=["123456"]).reject == {"123456"}


async def test_requests_for_an_unanswered_code_get_no_reply(sim: Simulator) -> None:
    sim.unanswered = {"000660"}
    key = await approve(sim)
    async with connect(sim) as ws:
        await ws.send(request(key, "000660"))
        # Requests are answered in order: the next reply is the later request's.
        reply = await subscribe(ws, key, "005930")
        assert (reply["header"]["tr_key"], code_of(reply)) == ("005930", "OPSP0000")
        sim.unanswered.clear()
        assert code_of(await subscribe(ws, key, "000660")) == "OPSP0000"  # answered again
    assert [key for _, key in sim.subscriptions["APPKEY-1"]] == ["005930", "000660"]


async def test_unknown_approval_key(sim: Simulator) -> None:
    async with connect(sim) as ws:
        reply = await subscribe(ws, "no-such-key", "005930")
    assert code_of(reply) == "OPSP0011"
    assert "invalid approval" in reply["body"]["msg1"]


async def test_invalidated_keys_fail_new_sessions_only(sim: Simulator) -> None:
    key = await approve(sim)
    async with connect(sim) as old:
        await subscribe(old, key, "005930")
        sim.invalidate_approval_keys()
        async with connect(sim) as new:
            assert code_of(await subscribe(new, key, "000660")) == "OPSP0011"
        # The session that already used the key keeps it, as on KIS.
        assert code_of(await subscribe(old, key, "000660")) == "OPSP0000"


@pytest.mark.parametrize(
    "message",
    ["{not json", "[1, 2", '{"header": {"tr_type": "1"}}', '"just a string"'],
)
async def test_malformed_requests_get_json_parsing_error(sim: Simulator, message: str) -> None:
    async with connect(sim) as ws:
        await ws.send(message)
        reply = await control(ws)
    assert code_of(reply) == "OPSP9999"
    assert reply["body"]["msg1"].startswith("JSON PARSING ERROR : ")
    assert reply["header"]["tr_id"] == "(null)"
    assert reply["header"]["tr_key"] == ""
    try:
        parsed: Any = json.loads(message)
    except ValueError:
        parsed = message
    assert sim.received[-1].message == parsed  # logged parsed when JSON, else raw


async def test_already_subscribed_and_unsubscribe(sim: Simulator) -> None:
    key = await approve(sim)
    async with connect(sim) as ws:
        await subscribe(ws, key, "005930")
        await subscribe(ws, key, "000660")
        again = await subscribe(ws, key, "005930")
        assert (code_of(again), again["body"]["msg1"]) == ("OPSP0002", "ALREADY IN SUBSCRIBE")
        unknown = await subscribe(ws, key, "035720", tr_type="2")
        assert code_of(unknown) == "OPSP0003"
        done = await subscribe(ws, key, "005930", tr_type="2")
        assert (code_of(done), done["body"]["msg1"]) == ("OPSP0001", "UNSUBSCRIBE SUCCESS")
        assert sim.subscriptions == {"APPKEY-1": [("H0UNPGM0", "000660")]}
        # Every frame after the unsubscribe ack is for 000660 only.
        _, ticks = await collect_ticks(ws, 10)
        assert {t.ticker for t in ticks} == {"000660"}
        # The same ticker under a sibling tr_id is a separate registration.
        sibling = await subscribe(ws, key, "000660", tr_id="H0NXPGM0")
        assert code_of(sibling) == "OPSP0000"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"tr_type": "1"}, "OPSP8993"),
        ({"approval_key": "K", "tr_type": "0"}, "OPSP8994"),
        ({"approval_key": "K", "tr_type": "1", "custtype": "X"}, "OPSP8995"),
    ],
)
async def test_bad_header_fields(sim: Simulator, header: dict[str, str], code: str) -> None:
    message = {"header": header, "body": {"input": {"tr_id": "H0UNPGM0", "tr_key": "005930"}}}
    async with connect(sim) as ws:
        await ws.send(json.dumps(message))
        reply = await control(ws)
    assert code_of(reply) == code
    assert reply["body"]["msg1"].startswith("JSON PARSING ERROR : ")
    assert reply["header"]["tr_key"] == "005930"


# -- PINGPONG, pause ----------------------------------------------------------------------


async def test_pingpong_when_idle_and_echo_is_recorded() -> None:
    async with Simulator(pingpong_interval=0.05, clock=fixed_clock) as sim, connect(sim) as ws:
        ping = await next_message(ws, lambda m: '"PINGPONG"' in m)
        assert json.loads(ping) == {"header": {"tr_id": "PINGPONG", "datetime": "20250314093015"}}
        await ws.send(ping)
        await sim_wait(lambda: sim.pingpong_echoes == [ping])
        assert sim.received[-1].message == json.loads(ping)


async def test_pause_silences_data_and_pingpong() -> None:
    async with Simulator(rate=50, pingpong_interval=0.05) as sim:
        key = await approve(sim)
        async with connect(sim) as ws:
            await subscribe(ws, key, "005930")
            await collect_ticks(ws, 2)
            sim.pause_data()
            await asyncio.sleep(0.05)  # let frames already in flight arrive
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.02)
                except TimeoutError:
                    break
            with pytest.raises(TimeoutError):  # 0.3 s is six PINGPONG intervals
                await asyncio.wait_for(ws.recv(), 0.3)
            sim.resume_data()
            await collect_ticks(ws, 2)


# -- encryption -------------------------------------------------------------------------------


async def test_encrypted_frames_decrypt_with_the_ack_key() -> None:
    async with Simulator(rate=50, encrypt=True, clock=fixed_clock) as sim:
        key = await approve(sim)
        async with connect(sim) as ws:
            acks = [await subscribe(ws, key, t) for t in ("005930", "000660")]
            assert all(ack["header"]["encrypt"] == "Y" for ack in acks)
            output = acks[0]["body"]["output"]
            frame = split_frame(await next_message(ws, lambda m: m[0] in "01"))
    assert frame.encrypted
    payload = decrypt_payload(frame.payload, output["key"], output["iv"])
    ticks = parse_records(payload, frame.records, DAY)
    assert {t.ticker for t in ticks} <= {"005930", "000660"}
    assert ticks and all(t.ntby_cnqn == t.shnu_cnqn - t.seln_cnqn for t in ticks)


# -- replay -------------------------------------------------------------------------------------


def record(ticker: str, n: int) -> str:
    return f"{ticker}^0900{n:02d}^{n}^{n * 100}^{n + 1}^{n * 100 + 100}^1^100^5^6^1"


async def test_replay_filters_by_subscription(tmp_path: Path) -> None:
    lines = [
        f"2025-03-14T09:00:0{n}+09:00\t0|H0UNPGM0|002|{record('005930', n)}^{record('000660', n)}"
        for n in range(5)
    ]
    lines.insert(2, "garbage without a frame")
    lines.append(f"0|H0UNPGM0|001|{record('035720', 9)}")  # raw frame, no timestamp
    lines.append(f"0|H0STPGM0|001|{record('005930', 9)}")  # another tr_id: not subscribed
    path = tmp_path / "2025-03-14.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with Simulator(replay=path, speed=0, replay_delay=0.2) as sim:
        key = await approve(sim)
        async with connect(sim) as ws:
            await subscribe(ws, key, "005930")
            await subscribe(ws, key, "035720")
            await asyncio.wait_for(sim.replay_finished.wait(), TIMEOUT)
            frames, ticks = await collect_ticks(ws, 6)
    assert all(split_frame(f).records == 1 for f in frames)
    assert [(t.ticker, t.hhmmss) for t in ticks] == [
        *(("005930", f"0900{n:02d}") for n in range(5)),
        ("035720", "090009"),
    ]
    assert sim.frames_sent == 6


def test_replay_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="replay file not found"):
        Simulator(replay=tmp_path / "missing.tsv")


# -- fault injection --------------------------------------------------------------------------


async def test_drop_connections_aborts_without_close_frame(sim: Simulator) -> None:
    async with connect(sim) as ws:
        await sim_wait(lambda: len(sim.clients) == 1)
        sim.drop_connections()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1006  # abnormal closure: no close frame was received
    await sim_wait(lambda: not sim.clients)


async def test_close_after_accept(sim: Simulator) -> None:
    sim.close_after_accept = True
    async with connect(sim) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert sim.connections_accepted == 1
    assert sim.clients == []


async def test_send_raw_invalid_utf8_as_text_frame(sim: Simulator) -> None:
    async with connect(sim) as ws:
        await sim_wait(lambda: len(sim.clients) == 1)
        await sim.send_raw(b"0|H0UNPGM0|001|\xff\xfe", text=True)
        with pytest.raises(ConnectionClosedError) as closed:  # a strict client fails: 1007
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.sent is not None and closed.value.sent.code == 1007


async def test_send_garbage_is_all_unparseable(sim: Simulator) -> None:
    key = await approve(sim)
    async with connect(sim) as ws:
        await subscribe(ws, key, "005930")
        sim.pause_data()
        garbage = await sim.send_garbage()
        received = [await next_message(ws, lambda m: m in garbage) for _ in garbage]
    assert received == garbage
    for text in garbage:
        errors: list[FrameError] = []
        with contextlib.suppress(FrameError):
            assert parse_frame(text, DAY, errors) == []
            assert errors  # parsed envelope, every record rejected


async def test_frame_hook_and_counters() -> None:
    seen: list[tuple[str, float]] = []
    async with Simulator(rate=50, on_frame_sent=lambda f, t: seen.append((f, t))) as sim:
        key = await approve(sim)
        async with connect(sim) as ws:
            await subscribe(ws, key, "005930")
            frames, _ = await collect_ticks(ws, 3)
        assert [f for f, _ in seen[:3]] == frames
        assert sim.frames_sent >= 3
        assert sim.connections_accepted == 1
        assert json.loads(request(key, "005930")) in [r.message for r in sim.received]


# -- the market model ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    ticker=st.from_regex(r"[0-9A-Z]{6}", fullmatch=True),
    dts=st.lists(st.floats(0, 10), min_size=1, max_size=200),
)
def test_market_invariants(seed: int, ticker: str, dts: list[float]) -> None:
    market = Market(seed)
    previous: Tick | None = None
    for dt in dts:
        text = market.record("H0UNPGM0", ticker, DAY, "100000", dt)
        (tick,) = parse_records(text, 1, DAY)
        assert tick.ntby_cnqn == tick.shnu_cnqn - tick.seln_cnqn
        assert tick.ntby_tr_pbmn == tick.shnu_tr_pbmn - tick.seln_tr_pbmn
        assert tick.whol_ntby_qty == tick.shnu_rsqn - tick.seln_rsqn
        assert min(tick.seln_cnqn, tick.shnu_cnqn, tick.seln_rsqn, tick.shnu_rsqn) >= 0
        if previous is not None:
            for field in ("seln_cnqn", "shnu_cnqn", "seln_tr_pbmn", "shnu_tr_pbmn"):
                assert getattr(tick, field) >= getattr(previous, field)
        previous = tick


def test_market_is_repeatable_by_seed() -> None:
    def run(seed: int) -> list[str]:
        market = Market(seed)
        return [market.record("H0UNPGM0", "005930", DAY, "100000", 0.05) for _ in range(50)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_market_starts_a_new_day_afresh() -> None:
    market = Market(5)
    for _ in range(2_000):  # about three hours of trading
        market.record("H0UNPGM0", "005930", DAY, "120000", 5.0)
    (late,) = parse_records(market.record("H0UNPGM0", "005930", DAY, "150000", 5.0), 1, DAY)
    next_day = date(2025, 3, 15)
    text = market.record("H0UNPGM0", "005930", next_day, "090000", 5.0)
    (early,) = parse_records(text, 1, next_day)
    # A new day opens with at most an hour's worth of flow, not yesterday's total.
    assert early.seln_cnqn + early.shnu_cnqn < (late.seln_cnqn + late.shnu_cnqn) / 2


def test_market_moves_enough_for_the_demo() -> None:
    """A minute at 20 ticks/s: Samsung's net buying crosses a 10억 multiple, the book flips."""
    flipped = 0
    for seed in range(10):
        market = Market(seed)
        ticks = [
            parse_records(market.record("H0UNPGM0", "005930", DAY, "100000", 0.05), 1, DAY)[0]
            for _ in range(1_200)
        ]
        buckets = {t.ntby_tr_pbmn // 1_000_000_000 for t in ticks}
        assert len(buckets) >= 2, seed
        flipped += {t.whol_ntby_qty > 0 for t in ticks if t.whol_ntby_qty} == {True, False}
    assert flipped >= 8


# -- `pgmbot simulate` -----------------------------------------------------------------------


async def test_simulate_command_serves_and_exits_zero_on_sigterm() -> None:
    command = [sys.executable, "-m", "bot", "simulate", "--port", "0", "--rest-port", "0"]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        urls: dict[str, str] = {}
        async with asyncio.timeout(20):
            while len(urls) < 2:
                line = (await process.stdout.readline()).decode()
                assert line, "simulate exited before printing its URLs"
                for scheme in ("http", "ws"):
                    match = re.search(rf"{scheme}://127\.0\.0\.1:\d+", line)
                    if match and "KIS simulator:" in line:
                        urls[scheme] = match.group(0)
        key = await approve(urls["http"])
        async with connect(urls["ws"], "/tryitout") as ws:
            assert code_of(await subscribe(ws, key, "005930")) == "OPSP0000"
            frame = await next_message(ws, lambda m: m[0] == "0")
            assert parse_frame(frame, DAY)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert "APPKEY" not in log and "secret" not in log
    assert "subscribe client=1 account=app1 tr_id=H0UNPGM0 tr_key=005930" in log


async def test_a_client_that_stops_reading_does_not_stall_the_others(sim: Simulator) -> None:
    key_a, key_b = await approve(sim, "APP-A"), await approve(sim, "APP-B")
    stuck = await websockets.connect(sim.ws_url, ping_interval=None, max_queue=1, max_size=None)
    try:
        await subscribe(stuck, key_a, "005930")
        # Small kernel buffers on both ends, so what the stuck client leaves unread piles up
        # in the simulator's own send buffer.
        stuck.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )
        sim.clients[0].ws.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        await sim.send_raw("x" * (2 << 20))  # 2 MiB the stuck client will never take
        async with connect(sim) as reader:
            await subscribe(reader, key_b, "000660")
            _, ticks = await collect_ticks(reader, 20)
            assert {t.ticker for t in ticks} == {"000660"}
            await sim_wait(lambda: sim.frames_dropped > 0)
    finally:
        stuck.transport.abort()


# -- what KIS's official sample client reads ---------------------------------------------------


def read_like_the_official_sample(message: dict[str, Any]) -> None:
    """The fields kis_auth.system_resp reads without checking (a KeyError there kills it)."""
    header = message["header"]
    if header["tr_id"] == "PINGPONG":
        return
    assert isinstance(header["tr_key"], str)
    assert header["encrypt"] in ("N", "Y")
    body = message["body"]
    assert body["rt_cd"] in ("0", "1")
    assert isinstance(body["msg1"], str)
    if "output" in body:
        assert body["output"]["iv"] and body["output"]["key"]


async def test_sample_client_requests_and_replies() -> None:
    """The official sample's exact requests (headers, body as text, key order) and replies."""
    async with Simulator(rate=20, max_subscriptions=2, pingpong_interval=0.05) as sim:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/plain",
            "charset": "UTF-8",
            "User-Agent": "Mozilla/5.0",
        }
        credentials = {"grant_type": "client_credentials", "appkey": "APP", "appsecret": "SEC"}
        async with httpx.AsyncClient(headers=headers) as http:
            token = await http.post(
                f"{sim.rest_url}/oauth2/tokenP", content=json.dumps(credentials)
            )
            assert token.status_code == 200
            del credentials["appsecret"]
            credentials["secretkey"] = "SEC"
            approval = await http.post(
                f"{sim.rest_url}/oauth2/Approval", content=json.dumps(credentials)
            )
        key = approval.json()["approval_key"]
        assert sim.rest_requests[-1].headers["content-type"] == "application/json"

        def sample_request(tr_type: str, tr_key: str, tr_id: str = "H0UNPGM0") -> str:
            header = {"content-type": "utf-8", "approval_key": key, "tr_type": tr_type}
            header["custtype"] = "P"
            return json.dumps(
                {"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}}
            )

        async with connect(sim, "/tryitout") as ws:
            for message in (
                sample_request("1", "005930"),
                sample_request("1", "005930"),  # OPSP0002
                sample_request("1", "000660"),
                sample_request("1", "035720"),  # OPSP0008
                sample_request("1", "005930", "H0XXXXX0"),  # OPSP8991
                sample_request("2", "035720"),  # OPSP0003
                sample_request("2", "000660"),  # OPSP0001
                "{broken",  # OPSP9999
            ):
                await ws.send(message)
            replies = [await control(ws) for _ in range(8)]
            await ws.send(sample_request("2", "005930"))  # nothing left: the line goes idle
            assert code_of(await control(ws)) == "OPSP0001"
            ping = json.loads(await next_message(ws, lambda m: '"PINGPONG"' in m))
    assert [code_of(r) for r in replies] == [
        "OPSP0000",
        "OPSP0002",
        "OPSP0000",
        "OPSP0008",
        "OPSP8991",
        "OPSP0003",
        "OPSP0001",
        "OPSP9999",
    ]
    for message in [*replies, ping]:
        read_like_the_official_sample(message)
    assert replies[6]["body"]["msg1"][:5] == "UNSUB"  # how the sample spots an unsubscribe


@settings(max_examples=200, deadline=None)
@given(
    message=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["header", "body", "input", "tr_id", "tr_key", "tr_type", "x"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_json_is_a_request_or_a_refusal(message: Any) -> None:
    try:
        parsed = protocol.parse_request(message)
    except protocol.Refusal as refusal:
        read_like_the_official_sample(
            json.loads(protocol.control_message(refusal.echo, refusal.msg_cd, refusal.msg1))
        )
        assert refusal.msg1.startswith(protocol.JSON_ERROR)
    else:
        assert parsed.tr_type in ("1", "2") and parsed.approval_key


# -- replay pacing, looping -------------------------------------------------------------------


def test_replay_gap() -> None:
    t0 = datetime(2025, 3, 14, 9, 0, 0, tzinfo=KST)
    t1 = datetime(2025, 3, 14, 9, 0, 3, tzinfo=KST)
    assert replay_gap(t0, t1, speed=1, rate=5) == 3.0
    assert replay_gap(t0, t1, speed=2, rate=5) == 1.5
    assert replay_gap(t1, t0, speed=1, rate=5) == 0.0  # out of order: no waiting backwards
    assert replay_gap(None, t0, speed=1, rate=5) == 0.2  # no earlier time: 1/rate
    assert replay_gap(t0, None, speed=1, rate=4) == 0.25
    assert replay_gap(t0, t1, speed=0, rate=5) == 0.0


async def test_replay_loop_repeats_the_file(tmp_path: Path) -> None:
    path = tmp_path / "frames.tsv"
    path.write_text(f"0|H0UNPGM0|001|{record('005930', 1)}\n", encoding="utf-8")
    async with Simulator(replay=path, speed=0, replay_loop=True, replay_delay=0) as sim:
        key = await approve(sim)
        async with connect(sim) as ws:
            await subscribe(ws, key, "005930")
            frames, _ = await collect_ticks(ws, 5)
    assert set(frames) == {f"0|H0UNPGM0|001|{record('005930', 1)}"}
    assert not sim.replay_finished.is_set()


# -- the command line --------------------------------------------------------------------------


def test_simulate_refuses_a_missing_replay_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--replay", str(tmp_path / "none.tsv")]) == 2
    assert "replay file not found" in capsys.readouterr().err


def test_simulate_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["simulate", "--port", str(port), "--rest-port", "0"]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_the_simulator_modules_import_no_cycle() -> None:
    """Importing the package runs __init__, which imports its modules: none may import the
    package back (``from bot.kis.simulator import protocol`` did), nor each other in a ring."""
    package = Path(__file__).parent.parent / "bot" / "kis" / "simulator"
    names = {path.stem: path for path in package.glob("*.py")}
    assert {"__init__", "server", "protocol"} <= set(names)
    graph = {name: module_imports(path, set(names)) for name, path in names.items()}
    for start in graph:
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            name = stack.pop()
            assert name != start, f"import cycle through {start}"
            if name not in seen:
                seen.add(name)
                stack.extend(graph[name])


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's own modules ``path`` imports at module level ("__init__": the package)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:  # ``from P import x`` runs P; ``import P.m`` and ``from P.m`` run m
            if target == "bot.kis.simulator":
                found.add("__init__")
            elif target.startswith("bot.kis.simulator.") and target.split(".")[3] in modules:
                found.add(target.split(".")[3])
    found.discard(path.stem)
    return found
