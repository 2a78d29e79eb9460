"""Approval keys against the simulator's REST endpoint and a misbehaving aiohttp server."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from clocks import Clock

from bot.config import Account
from bot.kis.approval import ApprovalError, ApprovalKeys, scrub
from bot.kis.simulator import Simulator

APPKEY, SECRET = "APPKEY-approval-3c9e", "APPSECRET-approval-8d1f"
ACCOUNT = Account(appkey=APPKEY, appsecret=SECRET)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as simulator:
        yield simulator


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/oauth2/Approval", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_request_body_and_cache(sim: Simulator) -> None:
    clock = Clock()
    keys = ApprovalKeys(sim.rest_url, max_age=100.0, clock=clock)
    first = await keys.get(ACCOUNT, "main")
    assert sim.approval_keys[first] == APPKEY
    (request,) = sim.rest_requests
    assert request.path == "/oauth2/Approval"
    assert request.body == {
        "grant_type": "client_credentials",
        "appkey": APPKEY,
        "secretkey": SECRET,
    }
    clock.now += 99.0
    assert await keys.get(ACCOUNT, "main") == first  # still young: no request
    assert len(sim.rest_requests) == 1


async def test_renewed_when_old_or_invalidated(sim: Simulator) -> None:
    clock = Clock()
    keys = ApprovalKeys(sim.rest_url, max_age=100.0, clock=clock)
    first = await keys.get(ACCOUNT, "main")
    clock.now += 100.0
    second = await keys.get(ACCOUNT, "main")
    assert second != first and len(sim.rest_requests) == 2
    keys.invalidate(ACCOUNT)
    third = await keys.get(ACCOUNT, "main")
    assert third not in (first, second) and len(sim.rest_requests) == 3


async def test_one_key_per_appkey(sim: Simulator) -> None:
    keys = ApprovalKeys(sim.rest_url)
    other = Account(appkey="APPKEY-other", appsecret="s")
    mine, theirs = await keys.get(ACCOUNT, "a"), await keys.get(other, "b")
    assert sim.approval_keys[mine] == APPKEY and sim.approval_keys[theirs] == "APPKEY-other"
    keys.invalidate(other)
    assert await keys.get(ACCOUNT, "a") == mine


async def test_refused_appkey(sim: Simulator) -> None:
    sim.accepted_appkeys = {"someone-else"}
    keys = ApprovalKeys(sim.rest_url)
    with pytest.raises(
        ApprovalError, match=r"account=main .*status=403 HTTP error.*EGW00103"
    ) as e:
        await keys.get(ACCOUNT, "main")
    # KIS's own words, for the admins: a client error retrying alone will not fix.
    assert (e.value.status, e.value.refused) == (403, True)
    assert e.value.kis_message == "EGW00103 유효하지 않은 AppKey입니다."


def reply(status: int, body: str, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    return handler


async def echo_secrets(request: web.Request) -> web.Response:
    """A server that quotes the request in its error: the secrets must not reach the message."""
    return web.Response(status=400, text=f"bad request: {await request.text()}")


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (reply(500, "upstream timeout"), r"status=500 HTTP error: 'upstream timeout'"),
        (reply(200, "<html>", "text/html"), r"status=200 answer is not JSON: '<html>'"),
        (reply(200, '{"error_code": "X"}'), r"status=200 no approval_key in the answer"),
        (reply(200, '{"approval_key": ""}'), r"no approval_key in the answer"),
        (reply(200, '{"approval_key": 42}'), r"no approval_key in the answer"),
        (reply(200, '["approval_key"]'), r"no approval_key in the answer"),
        (echo_secrets, r"status=400 HTTP error: 'bad request: .*\*\*\*"),
    ],
)
async def test_bad_answers_raise_a_clear_error_without_secrets(
    handler: Handler, message: str
) -> None:
    runner, url = await serve(handler)
    try:
        keys = ApprovalKeys(url)
        with pytest.raises(ApprovalError, match=message) as caught:
            await keys.get(ACCOUNT, "main")
    finally:
        await runner.cleanup()
    text = str(caught.value)
    assert "account=main" in text and f"{url}/oauth2/Approval" in text
    assert APPKEY not in text and SECRET not in text


@pytest.mark.parametrize(
    ("status", "body", "refused", "said"),
    [
        (500, "upstream\ntimeout", False, "upstream timeout"),  # one line
        (401, '{"msg_cd": "EGW00205", "msg1": "bad"}', True, "EGW00205 bad"),
        (400, '{"error_description": "only a description"}', True, "only a description"),
        (400, "[1, 2]", True, "[1, 2]"),
    ],
)
async def test_what_kis_said(status: int, body: str, refused: bool, said: str) -> None:
    runner, url = await serve(reply(status, body))
    try:
        with pytest.raises(ApprovalError) as caught:
            await ApprovalKeys(url).get(ACCOUNT, "main")
    finally:
        await runner.cleanup()
    assert (caught.value.status, caught.value.refused, caught.value.kis_message) == (
        status,
        refused,
        said,
    )


# A secret as KIS issues them (base64): JSON may escape its "/", URLs encode "+", "/", "=".
B64_SECRET = "Zm9v/YmFy+YmF6=cXV4/cXV1eA+c2VjcmV0cw=="
B64_ACCOUNT = Account(appkey="PSabcdEFGHijkl1234", appsecret=B64_SECRET)
FORMS: dict[str, Callable[[str], str]] = {
    "plain": lambda secret: secret,
    "json": lambda secret: json.dumps(secret)[1:-1].replace("/", "\\/"),
    "url": lambda secret: urllib.parse.quote(secret, safe=""),
    "form": urllib.parse.quote_plus,
}


def prefixes(text: str) -> list[str]:
    return [text[:length] for length in range(4, len(text) + 1)]


@pytest.mark.parametrize("form", FORMS)
async def test_an_echoed_secret_is_scrubbed_before_the_quote_is_cut(form: str) -> None:
    """Wherever the 200-character cut falls in an echoed secret, no part of it is quoted."""
    echoed = FORMS[form](B64_SECRET)

    async def echo(request: web.Request) -> web.Response:
        cut = int(request.query["cut"])  # where in the echoed secret the quote is cut
        return web.Response(status=400, text="#" * (200 - cut) + echoed + " (your request)")

    runner, url = await serve(echo)
    try:
        for cut in range(1, len(echoed)):
            keys = ApprovalKeys(url)
            keys.url += f"?cut={cut}"
            with pytest.raises(ApprovalError) as caught:
                await keys.get(B64_ACCOUNT, "main")
            shown = f"{caught.value} {caught.value.kis_message}"
            leaks = [p for p in prefixes(echoed) + prefixes(B64_SECRET) if p in shown]
            assert leaks == [], f"cut={cut}"
    finally:
        await runner.cleanup()


def test_scrub() -> None:
    assert scrub("a SECRET b SECRET", ["SECRET", ""]) == "a *** b ***"
    assert scrub("cut off at the end: SECR", ["SECRET"]) == "cut off at the end: ***"
    assert scrub("too short to tell: SEC", ["SECRET"]) == "too short to tell: SEC"
    assert scrub("nothing here", []) == "nothing here"


async def test_no_server_and_timeout() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    keys = ApprovalKeys(f"http://127.0.0.1:{port}")
    with pytest.raises(
        ApprovalError, match=r"approval request failed account=main .*ConnectError"
    ):
        await keys.get(ACCOUNT, "main")

    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"approval_key": "late"})

    runner, url = await serve(slow)
    try:
        keys = ApprovalKeys(url, timeout=0.1)
        with pytest.raises(ApprovalError, match="ReadTimeout"):
            await keys.get(ACCOUNT, "main")
    finally:
        release.set()
        await runner.cleanup()


async def test_a_failure_is_not_cached() -> None:
    answers = iter([web.Response(status=503), web.json_response({"approval_key": "fresh"})])

    async def flaky(request: web.Request) -> web.Response:
        return next(answers)

    runner, url = await serve(flaky)
    try:
        keys = ApprovalKeys(url)
        with pytest.raises(ApprovalError):
            await keys.get(ACCOUNT, "main")
        assert await keys.get(ACCOUNT, "main") == "fresh"
    finally:
        await runner.cleanup()
