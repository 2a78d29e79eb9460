"""The Simulator: approval REST and real-time WebSocket servers, sessions, data, faults."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import string
import time
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot.kis.simulator.market import Market
from bot.kis.simulator.master import MASTER_PATH, MasterFiles
from bot.kis.simulator.protocol import (
    JSON_ERROR,
    Refusal,
    Request,
    check_target,
    control_message,
    data_frame,
    garbage_frames,
    is_pingpong,
    parse_request,
    pingpong_message,
)
from bot.kis.simulator.replay import paced_frames
from bot.kis.simulator.rest import Approvals, RestRequest
from bot.ticks import KST

log = logging.getLogger(__name__)

_ALPHANUMERIC = string.ascii_letters + string.digits

# A client that does not read loses data frames once this much is waiting in its send buffer,
# so it cannot stall the others; the write limit sits above it so a send never waits.
_BACKLOG_LIMIT = 1 << 20
_WRITE_LIMIT = 4 << 20

FrameHook = Callable[[str, float], None]
Registration = tuple[str, str, str]  # (appkey, tr_id, tr_key)


@dataclass(eq=False)
class Client:
    """One accepted WebSocket connection."""

    id: int
    ws: ServerConnection
    path: str
    appkeys: set[str] = field(default_factory=set)  # appkeys whose slot this connection holds
    approved: dict[str, str] = field(default_factory=dict)  # approval keys used here -> appkey
    last_sent: float = 0.0  # loop time of the last message sent (for PINGPONG)


@dataclass(frozen=True, slots=True)
class Received:
    """A message a client sent: parsed JSON, or the raw text/bytes when it was not JSON."""

    client: int
    message: Any
    at: float  # time.perf_counter()


class Simulator:
    """KIS approval REST (aiohttp) and real-time WebSocket (websockets) servers on loopback.

    Use as ``async with Simulator(...) as sim:``; ``sim.rest_url`` and ``sim.ws_url`` are set
    once started. ``encrypt``, ``close_after_accept``, ``accepted_appkeys``, ``reject``,
    ``unanswered``, ``rate`` and ``on_frame_sent`` may be changed at any time.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        ws_port: int = 0,
        rest_port: int = 0,
        rate: float = 5.0,
        seed: int | None = None,
        max_subscriptions: int = 41,
        pingpong_interval: float = 110.0,
        tickers_per_frame: int = 3,
        clock: Callable[[], datetime] | None = None,
        replay: Path | None = None,
        speed: float = 1.0,
        replay_loop: bool = False,
        replay_delay: float = 1.0,
        encrypt: bool = False,
        close_after_accept: bool = False,
        accepted_appkeys: Collection[str] | None = None,
        reject: Collection[str] = (),
        unanswered: Collection[str] = (),
        on_frame_sent: FrameHook | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 ticks per second, got {rate}")
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (0: as fast as possible), got {speed}")
        if min(tickers_per_frame, max_subscriptions) < 1 or pingpong_interval <= 0:
            raise ValueError("tickers_per_frame, max_subscriptions, pingpong_interval must be > 0")
        if replay is not None and not Path(replay).is_file():
            raise FileNotFoundError(f"replay file not found: {replay}")
        self.host = host
        self.ws_port = ws_port
        self.rest_port = rest_port
        self.rate = rate
        self.max_subscriptions = max_subscriptions
        self.pingpong_interval = pingpong_interval
        self.tickers_per_frame = tickers_per_frame
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(KST))
        self.replay = Path(replay) if replay is not None else None
        self.speed = speed
        self.replay_loop = replay_loop
        self.replay_delay = replay_delay
        self.encrypt = encrypt
        self.close_after_accept = close_after_accept
        # Well-formed codes KIS refuses (OPSP8992, as for a code it does not know), and codes
        # whose requests it never answers.
        self.reject: set[str] = set(reject)
        self.unanswered: set[str] = set(unanswered)
        self.on_frame_sent = on_frame_sent
        self.ws_url = ""
        self.rest_url = ""
        # Introspection for tests.
        self.received: list[Received] = []
        self.pingpong_echoes: list[str] = []
        self.connections_accepted = 0
        self.appkeys_refused = 0  # connections refused an appkey another one holds (OPSP8996)
        self.frames_sent = 0  # data frames (generated or replayed)
        self.messages_sent = 0  # everything: acks, PINGPONG, data, raw
        self.frames_dropped = 0  # data frames not sent to a client that stopped reading
        self.replay_finished = asyncio.Event()
        # State.
        self._approvals = Approvals(accepted_appkeys)
        self.master = MasterFiles()  # KIS's stock master zips, at master_url
        self._market = Market(seed)
        self._clients: dict[int, Client] = {}
        self._owners: dict[str, Client] = {}  # appkey -> the connection holding its slot
        self._subs: dict[str, dict[tuple[str, str], None]] = {}  # appkey -> ordered registrations
        self._ciphers: dict[tuple[str, str], tuple[str, str]] = {}  # (appkey, tr_id) -> iv, key
        self._flowing = asyncio.Event()  # cleared by pause_data()
        self._flowing.set()
        self._next_client = 1
        self._ws_server: Server | None = None
        self._rest_runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._replay_started = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind both servers; afterwards ``rest_url`` and ``ws_url`` are set."""
        rest = self._approvals.application()
        self.master.add_routes(rest)
        self._rest_runner = web.AppRunner(rest, access_log=None)
        await self._rest_runner.setup()
        await web.TCPSite(self._rest_runner, self.host, self.rest_port).start()
        self._ws_server = await serve(
            self._serve_client,
            self.host,
            self.ws_port,
            ping_interval=None,  # KIS never pings; liveness is its PINGPONG
            compression=None,
            write_limit=_WRITE_LIMIT,
        )
        rest_port = self._rest_runner.addresses[0][1]
        ws_port = self._ws_server.sockets[0].getsockname()[1]
        self.rest_url = f"http://{self.host}:{rest_port}"
        self.ws_url = f"ws://{self.host}:{ws_port}"
        if self.replay is None:
            self._spawn(self._stream())
        log.info("simulator started rest_url=%s ws_url=%s", self.rest_url, self.ws_url)

    async def stop(self) -> None:
        """Close every connection cleanly (close frame 1001) and both servers."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws_server is not None:
            self._ws_server.close(close_connections=True)
            await self._ws_server.wait_closed()
            self._ws_server = None
        if self._rest_runner is not None:
            await self._rest_runner.cleanup()
            self._rest_runner = None
        log.info("simulator stopped")

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- introspection ---------------------------------------------------------------------

    @property
    def clients(self) -> list[Client]:
        """Connected clients, oldest first."""
        return list(self._clients.values())

    @property
    def subscriptions(self) -> dict[str, list[tuple[str, str]]]:
        """appkey -> its registered (tr_id, tr_key) pairs, in subscription order."""
        return {appkey: list(subs) for appkey, subs in self._subs.items() if subs}

    @property
    def approval_keys(self) -> dict[str, str]:
        """Valid approval keys -> the appkey each was issued to."""
        return self._approvals.keys

    @property
    def master_url(self) -> str:
        """What ``market.master_url`` is for this simulator (set once started)."""
        return f"{self.rest_url}{MASTER_PATH}"

    @property
    def rest_requests(self) -> list[RestRequest]:
        return self._approvals.requests

    @property
    def accepted_appkeys(self) -> set[str] | None:
        """When set, the approval REST refuses other appkeys (403, EGW00103)."""
        return self._approvals.accepted_appkeys

    @accepted_appkeys.setter
    def accepted_appkeys(self, appkeys: Collection[str] | None) -> None:
        self._approvals.accepted_appkeys = set(appkeys) if appkeys is not None else None

    # -- fault injection -------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Abort every connection's transport: no close frame, as when a server restarts."""
        for client in self.clients:
            if client.ws.transport is not None:
                client.ws.transport.abort()

    async def send_raw(self, data: str | bytes, *, text: bool = True) -> None:
        """Send ``data`` as is to every client; bytes with ``text=True`` skip UTF-8 checks."""
        for client in self.clients:
            await self._send(client, data, text=text)

    async def send_garbage(self) -> list[str]:
        """Send malformed frames to every client (see garbage_frames); returns them."""
        sent: list[str] = []
        for client in self.clients:
            mine = self._registrations(client)
            _, tr_id, ticker = mine[0] if mine else ("", "H0UNPGM0", "005930")
            for frame in garbage_frames(tr_id, ticker):
                await self._send(client, frame)
                sent.append(frame)
        return sent

    def invalidate_approval_keys(self) -> None:
        """Forget every issued approval key: new sessions using one get OPSP0011.

        Like KIS, a session that already used a key keeps working with it.
        """
        self._approvals.invalidate()

    def pause_data(self) -> None:
        """Silence: no data frames and no PINGPONG until resume_data()."""
        self._flowing.clear()

    def resume_data(self) -> None:
        self._flowing.set()

    # -- sessions --------------------------------------------------------------------------

    async def _serve_client(self, ws: ServerConnection) -> None:
        self.connections_accepted += 1
        client = Client(self._next_client, ws, ws.request.path if ws.request else "/")
        self._next_client += 1
        if self.close_after_accept:
            log.info("connection closed at once client=%d", client.id)
            await ws.close()
            return
        client.last_sent = asyncio.get_running_loop().time()
        self._clients[client.id] = client
        log.info("connection accepted client=%d path=%s", client.id, client.path)
        pingpong = self._spawn(self._pingpong(client))
        try:
            async for message in ws:
                await self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            pingpong.cancel()
            self._forget(client)
            log.info("connection closed client=%d code=%s", client.id, ws.close_code)

    def _forget(self, client: Client) -> None:
        """A closed session frees its appkey slots and, as on KIS, their subscriptions."""
        self._clients.pop(client.id, None)
        for appkey in client.appkeys:
            if self._owners.get(appkey) is client:
                del self._owners[appkey]
                self._subs.pop(appkey, None)

    async def _send(self, client: Client, message: str | bytes, *, text: bool = True) -> bool:
        try:
            await client.ws.send(message, text=text)
        except ConnectionClosed:
            return False
        client.last_sent = asyncio.get_running_loop().time()
        self.messages_sent += 1
        return True

    async def _pingpong(self, client: Client) -> None:
        """PINGPONG once nothing has been sent to the client for pingpong_interval."""
        loop = asyncio.get_running_loop()
        while True:
            await self._flowing.wait()
            idle_for = loop.time() - client.last_sent
            if idle_for < self.pingpong_interval:
                await asyncio.sleep(self.pingpong_interval - idle_for)
            elif not await self._send(client, pingpong_message(self.clock())):
                return  # closed: the session handler is about to clean up

    async def _on_message(self, client: Client, message: str | bytes) -> None:
        try:
            parsed = json.loads(message)
        except ValueError as exc:  # includes invalid UTF-8 in a binary message
            self.received.append(Received(client.id, message, time.perf_counter()))
            await self._refuse(client, Refusal("OPSP9999", f"{JSON_ERROR}{exc}"))
            return
        self.received.append(Received(client.id, parsed, time.perf_counter()))
        if is_pingpong(parsed):
            self.pingpong_echoes.append(message if isinstance(message, str) else repr(message))
            return
        try:
            request = parse_request(parsed)
            appkey = self._appkey(client, request)
            if not await self._claim(client, appkey, request):
                return
            self._check_target(request)
        except Refusal as refusal:
            await self._refuse(client, refusal)
            return
        if request.tr_key in self.unanswered:
            log.info("request left unanswered client=%d tr_key=%s", client.id, request.tr_key)
            return
        if request.tr_type == "1":
            await self._subscribe(client, appkey, request)
        else:
            await self._unsubscribe(client, appkey, request)

    def _check_target(self, request: Request) -> None:
        check_target(request)
        if request.tr_type == "1" and request.tr_key in self.reject:
            raise Refusal("OPSP8992", "invalid tr_key", request.echo)

    def _appkey(self, client: Client, request: Request) -> str:
        # A key this session already used stays valid for it, even once expired (as on KIS).
        key = request.approval_key
        appkey = self._approvals.appkey(key) or client.approved.get(key)
        if appkey is None:
            log.info("invalid approval client=%d", client.id)
            raise Refusal("OPSP0011", "invalid approval : NOT FOUND", request.echo)
        return appkey

    async def _claim(self, client: Client, appkey: str, request: Request) -> bool:
        """Bind the appkey to this connection; a second connection gets OPSP8996 and is closed."""
        owner = self._owners.get(appkey)
        if owner is not None and owner is not client:
            log.warning(
                "appkey in use client=%d account=%s holder=%d",
                client.id,
                self._approvals.label(appkey),
                owner.id,
            )
            self.appkeys_refused += 1
            await self._refuse(client, Refusal("OPSP8996", "ALREADY IN USE appkey", request.echo))
            await client.ws.close()
            return False
        self._owners[appkey] = client
        client.appkeys.add(appkey)
        client.approved[request.approval_key] = appkey
        return True

    async def _subscribe(self, client: Client, appkey: str, request: Request) -> None:
        subs = self._subs.setdefault(appkey, {})
        target = request.echo
        output = None
        if target in subs:
            code, msg = "OPSP0002", "ALREADY IN SUBSCRIBE"
        elif len(subs) >= self.max_subscriptions:
            code, msg = "OPSP0008", "MAX SUBSCRIBE OVER"
        else:
            subs[target] = None
            code, msg = "OPSP0000", "SUBSCRIBE SUCCESS"
            iv, key = self._cipher(appkey, request.tr_id)
            output = {"iv": iv, "key": key}
        await self._send(
            client,
            control_message(target, code, msg, encrypt=self.encrypt, output=output),
        )
        log.info(
            "subscribe client=%d account=%s tr_id=%s tr_key=%s msg_cd=%s count=%d",
            client.id,
            self._approvals.label(appkey),
            *target,
            code,
            len(subs),
        )
        if output is not None and self.replay is not None and not self._replay_started:
            self._replay_started = True
            self._spawn(self._replay())

    async def _unsubscribe(self, client: Client, appkey: str, request: Request) -> None:
        subs = self._subs.get(appkey, {})
        if request.echo in subs:
            del subs[request.echo]
            code, msg = "OPSP0001", "UNSUBSCRIBE SUCCESS"
        else:
            code, msg = "OPSP0003", "UNSUBSCRIBE ERROR(not found!)"
        message = control_message(request.echo, code, msg, encrypt=self.encrypt)
        await self._send(client, message)
        log.info(
            "unsubscribe client=%d account=%s tr_id=%s tr_key=%s msg_cd=%s",
            client.id,
            self._approvals.label(appkey),
            *request.echo,
            code,
        )

    async def _refuse(self, client: Client, refusal: Refusal) -> None:
        message = control_message(refusal.echo, refusal.msg_cd, refusal.msg1, encrypt=self.encrypt)
        await self._send(client, message)

    def _cipher(self, appkey: str, tr_id: str) -> tuple[str, str]:
        """One (iv, key) per appkey and tr_id, so a multi-record frame has a single key."""
        if (appkey, tr_id) not in self._ciphers:
            iv = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))
            key = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))
            self._ciphers[(appkey, tr_id)] = (iv, key)
        return self._ciphers[(appkey, tr_id)]

    # -- data ------------------------------------------------------------------------------

    def _registrations(self, client: Client) -> list[Registration]:
        """(appkey, tr_id, tr_key) of every registration this connection holds, in order."""
        return [
            (appkey, tr_id, tr_key)
            for appkey in client.appkeys
            if self._owners.get(appkey) is client
            for tr_id, tr_key in self._subs.get(appkey, {})
        ]

    async def _stream(self) -> None:
        """Every 1/rate seconds, one new record per subscribed (tr_id, ticker)."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            interval = 1 / self.rate
            next_at += interval
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -interval:  # fell behind: skip, never burst to catch up
                next_at = loop.time()
            await self._flowing.wait()
            clients = [(client, self._registrations(client)) for client in self.clients]
            wanted = sorted({(tr_id, key) for _, regs in clients for _, tr_id, key in regs})
            if not wanted:
                continue
            now = self.clock()
            day, hhmmss = now.date(), now.strftime("%H%M%S")
            # Time advances by the nominal interval, so a seed repeats the same data.
            records = {
                target: self._market.record(*target, day, hhmmss, interval) for target in wanted
            }
            for client, regs in clients:
                await self._send_records(client, regs, records)

    async def _send_records(
        self,
        client: Client,
        registrations: list[Registration],
        records: dict[tuple[str, str], str],
    ) -> None:
        """Send a client the records it registered, tickers_per_frame at most to a frame.

        A frame holds records of one tr_id only (and of one appkey, for its cipher).
        """
        groups: dict[tuple[str, str], list[str]] = {}
        for appkey, tr_id, tr_key in registrations:
            record = records.get((tr_id, tr_key))
            if record is not None:
                groups.setdefault((appkey, tr_id), []).append(record)
        size = self.tickers_per_frame
        for (appkey, tr_id), group in groups.items():
            for start in range(0, len(group), size):
                await self._send_frame(client, appkey, tr_id, group[start : start + size])

    async def _send_frame(
        self, client: Client, appkey: str, tr_id: str, records: list[str]
    ) -> None:
        transport = client.ws.transport
        if transport is not None and transport.get_write_buffer_size() > _BACKLOG_LIMIT:
            self.frames_dropped += 1
            if self.frames_dropped % 1000 == 1:
                log.warning(
                    "slow client loses frames client=%d dropped=%d", client.id, self.frames_dropped
                )
            return
        cipher = self._cipher(appkey, tr_id) if self.encrypt else None
        frame = data_frame(tr_id, records, cipher)
        if await self._send(client, frame):
            self.frames_sent += 1
            if self.on_frame_sent is not None:
                self.on_frame_sent(frame, time.perf_counter())

    async def _replay(self) -> None:
        """Serve the recorded frames to every client, each filtered by its registrations.

        Starts ``replay_delay`` seconds after the first subscription, so that a client's other
        subscriptions are in place before the first frames go out.
        """
        assert self.replay is not None
        await asyncio.sleep(self.replay_delay)
        while True:
            async for tr_id, records in paced_frames(
                self.replay, speed=self.speed, rate=self.rate
            ):
                await self._flowing.wait()
                for client in self.clients:
                    await self._send_replayed(client, tr_id, records)
            if not self.replay_loop:
                break
        self.replay_finished.set()

    async def _send_replayed(self, client: Client, tr_id: str, fields: list[list[str]]) -> None:
        """A recorded frame's records that this client registered, in recorded order."""
        mine = {(t, key): appkey for appkey, t, key in self._registrations(client)}
        kept: dict[str, list[str]] = {}  # appkey -> records
        for record in fields:
            appkey = mine.get((tr_id, record[0]))
            if appkey is not None:
                kept.setdefault(appkey, []).append("^".join(record))
        for appkey, records in kept.items():
            await self._send_frame(client, appkey, tr_id, records)
