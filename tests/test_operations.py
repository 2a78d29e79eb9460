"""Operations end to end: `pgmbot run` subprocesses against the KIS simulator and the loopback
Bot API, scraped on /metrics and /healthz; two of them on one throwaway PostgreSQL database,
the active one killed (kill -9) or cut off from its lock while alerts fire.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botapi import FakeBotApi, SentMessage
from prometheus_client.parser import text_string_to_metric_families
from test_e2e import ALERT_HEADER  # the alert header's format, kept in one place

from bot.kis.simulator import Simulator
from bot.standby import libpq_url

CHAT = 4242
ADMIN = 77
APPKEY = "OPS-APPKEY-0001"
RULES = """\
rules:
  - id: ops-book-rise
    type: change
    field: SELN_RSQN
    window: 1s
    rise: 1
    cooldown: 1s
    message: "{ticker} 매도잔량 증가 {value}"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


async def until(
    condition: Callable[[], Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109 (a bound on the wait, as in botapi)
    what: str,
) -> float:
    """Wait for an async condition; returns the seconds it took."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


@dataclass
class World:
    sim: Simulator
    api: FakeBotApi
    root: Path

    def config(self, name: str, url: str, port: int | None, *, json_logs: bool = False) -> Path:
        metrics = f"metrics: {{listen: '127.0.0.1:{port}'}}\n" if port else ""
        path = self.root / f"{name}.yaml"
        path.write_text(
            f"""\
kis:
  rest_url: {self.sim.rest_url}
  ws_url: {self.sim.ws_url}
  accounts: [{{name: ops, appkey: {APPKEY}, appsecret: OPS-SECRET}}]
  subscribe_interval: 0.01
  reconnect_min: 0.2
  reconnect_max: 1
  in_use_backoff: 1
telegram:
  token: "{self.api.token}"
  base_url: {self.api.base_url}
  allowed_chat_ids: [{CHAT}]
  admin_chat_ids: [{ADMIN}]
  group_window: 0.2
storage:
  url: {url}
rules:
  path: {self.root / "rules"}
record_dir: {self.root / "recordings"}
checkpoint_every: 1
standby: {{check_every: 0.5, takeover_delay: 2.5}}
log_format: {"json" if json_logs else "text"}
{metrics}""",
            encoding="utf-8",
        )
        return path

    def subscribed(self) -> set[str]:
        return {key for _tr, key in self.sim.subscriptions.get(APPKEY, [])}

    def alert_keys_sent(self) -> list[tuple[str, str, str]]:
        keys = []
        for message in self.api.messages_for(CHAT):
            keys.extend(ALERT_HEADER.findall(message.text))
        return keys


class Bot:
    """One `python -m bot run --config FILE`, its output in a file, its metrics on a port."""

    def __init__(self, world: World, name: str, config: Path, port: int | None) -> None:
        self.world, self.name, self.config, self.port = world, name, config, port
        self.proc: asyncio.subprocess.Process | None = None
        self.log = world.root / f"{name}.log"

    async def start(self) -> None:
        out = open(self.log, "ab")  # noqa: ASYNC230, SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGMBOT_")}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(self.config),
            cwd=self.world.root, stdout=out, stderr=out, env=env,
        )  # fmt: skip
        out.close()

    async def healthz(self) -> tuple[int, str]:
        return await asyncio.to_thread(get, f"http://127.0.0.1:{self.port}/healthz")

    async def is_(self, body: str) -> bool:
        return await self.healthz() == (200, body + "\n")

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = await asyncio.to_thread(get, f"http://127.0.0.1:{self.port}/metrics")
        assert status == 200, text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def wait(self, timeout: float = 20) -> int:  # noqa: ASYNC109
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self.wait()

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with Simulator(rate=10, seed=5, pingpong_interval=3) as sim, FakeBotApi() as api:
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "ops.yaml").write_text(RULES, encoding="utf-8")
        yield World(sim, api, tmp_path)


@pytest.fixture
async def bots() -> AsyncIterator[list[Bot]]:
    started: list[Bot] = []
    yield started
    for bot in started:
        await bot.kill()


def is_alert(message: SentMessage) -> bool:
    return message.chat_id == CHAT and "🔔" in message.text


def value(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_as_the_run_did_and_logs_are_json_lines(
    world: World, bots: list[Bot]
) -> None:
    db = world.root / "pgmbot.db"
    port = free_port()
    bot = Bot(world, "bot", world.config("bot", f"sqlite:///{db}", port, json_logs=True), port)
    bots.append(bot)
    await bot.start()
    api = world.api
    await until(lambda: bot.is_("ok active"), 20, "the bot is up")
    first = await bot.metrics()
    assert value(first, "pgmbot_active") == 1
    assert value(first, "pgmbot_rules_loaded") == 1

    api.push_command(CHAT, "/watch 005930")
    await api.wait_for_count(3, is_alert, timeout=20)
    during = await bot.metrics()
    assert value(during, "pgmbot_kis_frames_total", account="ops") > 0
    assert value(during, "pgmbot_kis_ticks_total", account="ops") > 0
    assert value(during, "pgmbot_kis_connected", account="ops") == 1
    assert value(during, "pgmbot_kis_subscriptions", account="ops") == 1
    assert value(during, "pgmbot_kis_subscription_limit", account="ops") == 41
    assert 0 <= value(during, "pgmbot_kis_last_tick_age_seconds", account="ops") < 5
    assert value(during, "pgmbot_telegram_send_seconds_count") >= 1
    assert value(during, "pgmbot_db_commit_seconds_count") >= 1

    # A second bot on the same SQLite file refuses to start, saying why.
    second = Bot(world, "second", world.config("second", f"sqlite:///{db}", None), None)
    bots.append(second)
    await second.start()
    assert await second.wait() == 1
    assert re.search(r"pgmbot: another pgmbot \(pid \d+\) runs on \S+pgmbot\.db", second.output())

    # Quiet market: once the last alerts are out, the counters agree with what happened.
    world.sim.pause_data()

    async def settled() -> bool:
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
            pending = conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'pending'"
            ).fetchone()[0]
        metrics = await bot.metrics()
        messages = [m for m in api.sent if is_alert(m)]
        return (
            pending == 0
            and value(metrics, "pgmbot_alerts_stored_total") == stored
            and value(metrics, "pgmbot_alerts_fired_total", rule="ops-book-rise") == stored
            and value(metrics, "pgmbot_telegram_messages_total", result="sent") == len(messages)
            and value(metrics, "pgmbot_deliveries", state="sent") == stored
        )

    await until(settled, 15, "metrics agree with the database and the Bot API")
    after = await bot.metrics()
    assert value(after, "pgmbot_kis_frames_total", account="ops") > value(
        during, "pgmbot_kis_frames_total", account="ops"
    )
    evaluations = value(after, "pgmbot_rule_evaluations_total", rule="ops-book-rise")
    assert evaluations == value(after, "pgmbot_ticks_evaluated_total") > 0  # one rule, all
    assert await bot.stop() == 0

    lines = [line for line in bot.output().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(e["message"].startswith("pgmbot running mode=live") for e in entries)
    assert not [line for line in bot.output().splitlines() if " INFO " in line]  # no text lines
    assert api.token.split(":")[1] not in bot.output() and APPKEY not in bot.output()


def postgres_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        return connection.execute(sql).fetchall()


async def test_a_standby_takes_over_when_the_active_dies_or_loses_its_lock(
    world: World, bots: list[Bot], postgres_url: str
) -> None:
    api, sim = world.api, world.sim
    one = Bot(world, "one", world.config("one", postgres_url, p1 := free_port()), p1)
    two = Bot(world, "two", world.config("two", postgres_url, p2 := free_port()), p2)
    bots.extend([one, two])
    await one.start()
    await until(lambda: one.is_("ok active"), 20, "the first bot is active")
    await two.start()
    await until(lambda: two.is_("ok standby"), 20, "the second bot stands by")
    api.push_command(CHAT, "/watch 005930 000660")
    await api.wait_for_count(2, is_alert, timeout=20)
    await asyncio.sleep(1.0)  # a standby, however long, never polls the bot token
    assert len(api.calls_to("getMe")) == 1
    assert value(await two.metrics(), "pgmbot_active") == 0

    # kill -9 while alerts fire: the standby takes over, resubscribes, sends what waits.
    await one.kill()
    in_flight = set(ALERT_HEADER.findall([m for m in api.sent if is_alert(m)][-1].text))
    connections = sim.connections_accepted
    took = await until(lambda: two.is_("ok active"), 10, "the standby took over")
    await until(
        lambda: asyncio.sleep(0, world.subscribed() == {"005930", "000660"}), 10, "resubscribed"
    )
    assert sim.connections_accepted > connections
    assert took < 10
    sent = len(api.sent)
    await api.wait_for_count(2, is_alert, timeout=15, start=sent)

    # The first one comes back as a standby; the active one is cut off from its lock (its
    # session terminated, as when its connection breaks): it stops at once and exits 1, and
    # the other takes over.
    await one.start()
    await until(lambda: one.is_("ok standby"), 20, "the restarted bot stands by")
    postgres_rows(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'pgmbot-lock' AND pid IN"
        " (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
    )
    assert await two.wait(timeout=30) == 1
    assert "lost the database lock" in two.output()
    await until(lambda: one.is_("ok active"), 10, "the standby took over again")
    await until(
        lambda: asyncio.sleep(0, world.subscribed() == {"005930", "000660"}), 10, "resubscribed"
    )
    sent = len(api.sent)
    await api.wait_for_count(2, is_alert, timeout=15, start=sent)

    sim.pause_data()

    async def drained() -> bool:
        rows = postgres_rows(
            postgres_url,
            f"SELECT count(*) FROM deliveries WHERE state = 'pending' AND chat_id = {CHAT}",
        )
        return bool(rows[0][0] == 0)

    await until(drained, 20, "every pending delivery sent")
    await two.start()  # the one cut off comes back as a standby; SIGTERM ends its wait
    await until(lambda: two.is_("ok standby"), 20, "the other bot stands by again")
    assert await two.stop() == 0
    assert await one.stop() == 0

    stored = postgres_rows(
        postgres_url,
        "SELECT a.ticker, a.hhmmss, a.rule, d.state FROM alerts a"
        f" JOIN deliveries d ON d.alert_id = a.id WHERE d.chat_id = {CHAT}",
    )
    assert {state for *_, state in stored} == {"sent"}  # none lost, none failed
    keys = [(t, f"{h[:2]}:{h[2:4]}:{h[4:]}", r) for t, h, r, _ in stored]
    sent_keys = Counter(world.alert_keys_sent())
    assert set(sent_keys) == set(keys)  # every stored alert reached the chat
    # The one window: killed between Telegram's confirmation and its record, the last message
    # before the kill (its alerts) goes again once. Never more, never a new key.
    twice = {key for key, n in sent_keys.items() if n > 1}
    assert twice <= in_flight and all(sent_keys[key] == 2 for key in twice), twice
    assert sim.appkeys_refused == 0, "two bots held the appkey at once"
