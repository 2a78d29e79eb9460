"""End to end: `pgmbot run` as a subprocess against the KIS simulator and a loopback Bot API.

Everything is real: the bot process, its SQLite file, the WebSocket and HTTP servers on 127.0.0.1,
python-telegram-bot talking to the fake Bot API through ``telegram.base_url``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botapi import FakeBotApi, SentMessage

from bot.kis.simulator import Simulator

CHAT = 4242  # allowed
ADMIN = 77  # allowed, admin
STRANGER = 999  # not allowed
APPKEY = "E2E-APPKEY-0001"
# SELN_RSQN is a noisy order-book remainder: "rose within 1 s" starts a new run every few ticks,
# so alerts keep coming; the cooldown keeps them a second apart (their headers stay unique).
RULES = """\
rules:
  - id: e2e-book-rise
    type: change
    field: SELN_RSQN
    window: 1s
    rise: 1
    cooldown: 1s
    message: "{ticker} 매도잔량 증가 {value}"
"""
# 🔔 <b>삼성전자(005930)</b> [애프터] 12/01(화) 15:40:00 KST · <code>rule</code>: the names, the
# session, the date and the zone (said by a message's first alert only) may be there or not.
ALERT_HEADER = re.compile(
    r"🔔 <b>(?:[^<(]*\()?(\w{6})\)?</b> (?:\[[^\]]+\] )?(?:\S+ )?(\d\d:\d\d:\d\d)(?: KST)? · "
    r"<code>([^<]+)</code>"
)


@dataclass
class World:
    sim: Simulator
    api: FakeBotApi
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "pgmbot.db"

    def subscribed(self) -> set[str]:
        return {key for _tr, key in self.sim.subscriptions.get(APPKEY, [])}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql).fetchall()

    def delivery_states(self, chat: int) -> Counter[str]:
        rows = self.query(f"SELECT state FROM deliveries WHERE chat_id = {chat}")
        return Counter(state for (state,) in rows)

    def pending_ids(self, chat: int) -> set[int]:
        rows = self.query(
            f"SELECT id FROM deliveries WHERE chat_id = {chat} AND state = 'pending'"
        )
        return {delivery_id for (delivery_id,) in rows}

    def stored_alert_keys(self, chat: int, state: str) -> list[tuple[str, str, str]]:
        rows = self.query(
            "SELECT a.ticker, a.hhmmss, a.rule FROM alerts a"
            " JOIN deliveries d ON d.alert_id = a.id"
            f" WHERE d.chat_id = {chat} AND d.state = '{state}'"
        )
        return [(t, f"{h[:2]}:{h[2:4]}:{h[4:]}", r) for t, h, r in rows]

    def alert_keys_sent(self, chat: int) -> list[tuple[str, str, str]]:
        keys = []
        for message in self.api.messages_for(chat):
            keys.extend(ALERT_HEADER.findall(message.text))
        return keys


class BotProcess:
    """`python -m bot run --config …` with its output in files."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        log = open(self.world.root / f"bot-{self.runs}.log", "wb")  # noqa: ASYNC230, SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGMBOT_")}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(self.world.root / "config.yaml"),
            cwd=self.world.root,
            stdout=log,
            stderr=log,
            env=env,
        )
        log.close()

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout=15)

    def output(self) -> str:
        return self.output_of(self.runs)

    def output_of(self, run: int) -> str:
        return (self.world.root / f"bot-{run}.log").read_text(errors="replace")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with Simulator(rate=10, seed=11, pingpong_interval=3) as sim, FakeBotApi() as api:
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "e2e.yaml").write_text(RULES, encoding="utf-8")
        (tmp_path / "config.yaml").write_text(
            f"""\
kis:
  rest_url: {sim.rest_url}
  ws_url: {sim.ws_url}
  accounts: [{{name: e2e, appkey: {APPKEY}, appsecret: E2E-SECRET}}]
  subscribe_interval: 0.01
  reconnect_min: 0.2
  reconnect_max: 1
telegram:
  token: "{api.token}"
  base_url: {api.base_url}
  allowed_chat_ids: [{CHAT}]
  admin_chat_ids: [{ADMIN}]
  group_window: 0.5
storage:
  url: sqlite:///{tmp_path / "pgmbot.db"}
rules:
  path: {tmp_path / "rules"}
record_dir: {tmp_path / "recordings"}
checkpoint_every: 1
log_level: DEBUG
""",
            encoding="utf-8",
        )
        yield World(sim, api, tmp_path)


@pytest.fixture
async def bot(world: World) -> AsyncIterator[BotProcess]:
    process = BotProcess(world)
    yield process
    await process.kill()


def replies_to(chat: int, needle: str) -> Callable[[SentMessage], bool]:
    return lambda m: m.chat_id == chat and needle in m.text


def is_alert(chat: int) -> Callable[[SentMessage], bool]:
    return lambda m: m.chat_id == chat and "🔔" in m.text


async def test_watch_subscribes_and_alerts_reach_the_chat_and_strangers_are_refused(
    world: World, bot: BotProcess
) -> None:
    await bot.start()
    api = world.api
    await api.wait_until(lambda: bool(api.calls_to("getUpdates")), timeout=15)
    assert world.subscribed() == set()  # nothing watched yet, no config `watch`

    api.push_command(STRANGER, "/watch 000660")
    refusal: SentMessage = await api.wait_for_message(lambda m: m.chat_id == STRANGER)
    api.push_command(STRANGER, "/list")
    api.push_command(CHAT, "/watch 005930")
    reply = await api.wait_for_message(replies_to(CHAT, "005930"), timeout=10)
    assert "실시간 구독 중" in reply.text
    assert world.subscribed() == {"005930"}

    alert = await api.wait_for_message(is_alert(CHAT), timeout=15)
    assert "005930" in alert.text and "e2e-book-rise" in alert.text
    assert len(api.messages_for(STRANGER)) == 1, "a stranger is told once, then ignored"
    assert "000660" not in world.subscribed()
    assert world.query(f"SELECT count(*) FROM watches WHERE chat_id = {STRANGER}") == [(0,)]
    assert refusal.text

    assert await bot.stop() == 0
    output = bot.output()
    assert api.token.split(":")[1] not in output, "the bot token must never be logged"
    assert "E2E-SECRET" not in output and APPKEY not in output


async def test_a_broken_rule_edit_reaches_the_admins_and_so_does_the_fix(
    world: World, bot: BotProcess
) -> None:
    await bot.start()
    api = world.api
    await api.wait_until(lambda: bool(api.calls_to("getUpdates")), timeout=15)
    rules = world.root / "rules" / "e2e.yaml"
    rules.write_text(RULES.replace("rise: 1", "rise: lots"), encoding="utf-8")
    error = await api.wait_for_message(lambda m: m.chat_id == ADMIN, timeout=10)
    assert "마지막으로 정상이던 규칙이 계속 동작합니다" in error.text  # in Korean by default
    assert f"{rules}:6:11: rule 'e2e-book-rise': rise: 'lots' is not a number" in error.text

    seen = len(api.sent)
    rules.write_text(RULES.replace("rise: 1", "rise: 2"), encoding="utf-8")
    fixed = await api.wait_for_message(lambda m: m.chat_id == ADMIN, timeout=10, start=seen)
    assert fixed.text == "규칙 파일이 고쳐졌습니다: 규칙 1개를 불러왔습니다."
    assert api.messages_for(CHAT) == []  # the admins only
    assert await bot.stop() == 0
    assert "rules reloaded count=1 changed=e2e-book-rise\n" in bot.output()


async def test_outage_drop_and_restart_deliver_every_alert_exactly_once(
    world: World, bot: BotProcess
) -> None:
    api, sim = world.api, world.sim
    await bot.start()
    api.push_command(CHAT, "/watch 005930 000660")
    await api.wait_for_message(replies_to(CHAT, "000660"), timeout=10)
    await api.wait_for_message(is_alert(CHAT), timeout=15)

    # Telegram goes away for a few seconds: alerts keep firing and wait in the store.
    api.set_down(True)
    await api.wait_until(lambda: world.delivery_states(CHAT)["pending"] > 1, timeout=15)
    api.set_down(False)

    # The exchange drops every connection: the bot reconnects and resubscribes.
    accepted = sim.connections_accepted
    sim.drop_connections()
    await api.wait_until(
        lambda: sim.connections_accepted > accepted and world.subscribed() == {"005930", "000660"},
        timeout=10,
    )
    sent_before = len(api.sent)
    await api.wait_for_message(is_alert(CHAT), timeout=15, start=sent_before)

    # Telegram down again, new alerts wait; the bot is stopped: they survive the restart.
    api.set_down(True)
    known = sum(world.delivery_states(CHAT).values())
    await api.wait_until(lambda: sum(world.delivery_states(CHAT).values()) > known + 1, timeout=10)
    assert await bot.stop() == 0
    left = world.pending_ids(CHAT)
    assert left, "alerts fired during the outage wait in the store"
    api.set_down(False)

    await bot.start()
    await api.wait_until(lambda: world.subscribed() == {"005930", "000660"}, timeout=15)
    await api.wait_until(lambda: not (left & world.pending_ids(CHAT)), timeout=30)
    assert await bot.stop() == 0

    sent = world.alert_keys_sent(CHAT)
    duplicates = [key for key, n in Counter(sent).items() if n > 1]
    assert not duplicates, f"alerts sent twice: {duplicates}"
    assert sorted(sent) == sorted(world.stored_alert_keys(CHAT, "sent"))
    assert set(world.delivery_states(CHAT)) <= {"sent", "pending"}  # none failed or lost
    assert len(sent) > len(left) >= 1


async def test_a_rejected_bot_token_is_a_clear_error_without_the_token(world: World) -> None:
    config = world.root / "config.yaml"
    wrong = "999:WRONG-token-never-shown"
    config.write_text(
        config.read_text(encoding="utf-8").replace(world.api.token, wrong), encoding="utf-8"
    )
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=world.root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(done.communicate(), timeout=30)
    assert done.returncode == 1
    assert b"Telegram rejected the bot token" in err
    assert b"WRONG-token" not in out + err


def stored_alerts(world: World) -> Counter[tuple[str, str, str]]:
    rows = world.query("SELECT rule, ticker, day, hhmmss FROM alerts")
    return Counter((r, t, f"{d}T{h[:2]}:{h[2:4]}:{h[4:]}+09:00") for r, t, d, h in rows)


def replayed_alerts(world: World) -> Counter[tuple[str, str, str]]:
    """What `pgmbot replay --json` fires over the bot's recording: what it must have stored."""
    import json
    import subprocess

    (recording,) = (world.root / "recordings").glob("*.tsv")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "replay", str(recording), "--json",
         "--rules", str(world.root / "rules")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    alerts = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return Counter((a["rule"], a["ticker"], a["time"]) for a in alerts)


async def test_kill_9_while_alerts_fire_neither_repeats_nor_invents_alerts(
    world: World, bot: BotProcess
) -> None:
    """The recording is the engine's write-ahead log: after kill -9 mid-stream and restarts
    (from checkpoints, every second here), the database holds exactly the alerts a replay of the
    recording fires, each once (before: alerts with no recorded frame behind them, and the same
    sign flip alerted again under a new key)."""
    (world.root / "rules" / "e2e.yaml").write_text(
        RULES + "  - {id: e2e-flip, type: sign_flip, field: WHOL_NTBY_QTY}\n", encoding="utf-8"
    )
    api = world.api
    await bot.start()
    api.push_command(CHAT, "/watch 005930 000660")
    await api.wait_for_message(replies_to(CHAT, "000660"), timeout=15)

    def more_stored_than(count: int) -> Callable[[], bool]:
        return lambda: sum(stored_alerts(world).values()) > count

    kills = 3
    for _ in range(kills):
        await api.wait_until(more_stored_than(sum(stored_alerts(world).values()) + 3), timeout=20)
        await bot.kill()  # SIGKILL: nothing is flushed, nothing is closed
        await bot.start()
        await api.wait_until(lambda: world.subscribed() == {"005930", "000660"}, timeout=15)
    await api.wait_until(more_stored_than(sum(stored_alerts(world).values()) + 2), timeout=20)
    assert await bot.stop() == 0
    assert stored_alerts(world) == replayed_alerts(world)
    logs = "".join(bot.output_of(run) for run in range(2, kills + 2))
    assert re.search(r"rebuild replayed file=\S+ from=[1-9]", logs), "no restart used a checkpoint"
    # The one window left: killed between Telegram's confirmation and its record, the message
    # in flight goes again at the restart (same key, once). Never more, never a new key.
    sent = Counter(world.alert_keys_sent(CHAT))
    twice = [key for key, n in sent.items() if n > 1]
    assert len(twice) <= kills and all(sent[key] == 2 for key in twice), twice
