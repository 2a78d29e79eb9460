"""/healthz and /metrics served from their own thread: real SQLite files, a real loopback HTTP
server, a lock held by another connection as another process would; clocks injected."""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kis_helpers import eventually
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, MetricsSettings, StandbySettings, load_settings
from bot.health import Feeding, Health, keep_health
from bot.metrics import Metrics, MetricsServer, Sample
from bot.store import AsyncStore, Store, upgrade
from bot.store.db import make_engine, write_probe


def get(url: str) -> tuple[int, str]:
    """Status and body, 503 included (urllib raises on it)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_healthz_fails_while_the_database_is_locked_past_its_timeout_and_recovers(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    upgrade(url)
    store = AsyncStore(Store(url, busy_timeout=0.3))
    engine = make_engine(url, busy_timeout=0.3)
    health = Health(probe_every=0.05, probe_timeout=5.0)
    health.role = "active"
    loop = asyncio.get_running_loop()

    async def probe() -> None:
        await loop.run_in_executor(store.write_thread, write_probe, engine)

    server = MetricsServer("127.0.0.1", 0, Metrics(), health.verdict)
    server.start()
    task = asyncio.create_task(keep_health(health, probe, lambda: None, every=0.02))
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        healthz = f"{server.url}/healthz"
        await eventually(lambda: get(healthz) == (200, "ok active\n"))
        holder.execute("BEGIN IMMEDIATE")  # another process's write lock
        status, body = await asyncio.to_thread(get, healthz)
        for _ in range(100):
            if status == 503:
                break
            await asyncio.sleep(0.05)
            status, body = await asyncio.to_thread(get, healthz)
        assert (status, body) == (503, "database not writable: database is locked\n")
        holder.execute("ROLLBACK")
        await eventually(lambda: get(healthz) == (200, "ok active\n"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        holder.close()
        server.stop()
        engine.dispose()
        store.close()


def test_the_verdict_names_a_stalled_loop_a_waiting_probe_and_stale_ticks() -> None:
    clock = Clock()
    in_session = [True]
    health = Health(
        stale_ticks=60,
        loop_stale=10,
        probe_every=5,
        probe_timeout=15,
        in_session=lambda _now: in_session[0],
        monotonic=clock,
    )
    assert health.verdict() == (True, "ok starting")
    health.role = "standby"
    clock.now += 30
    assert health.verdict() == (False, "event loop stalled for 30 s")
    health.beat()
    assert health.verdict() == (True, "ok standby")  # a standby needs no database or ticks
    health.role = "active"
    health.probe_started()
    health.probe_done(None)
    health.beat(Feeding(subscribed=2, last_tick_at=clock.now))
    assert health.verdict() == (True, "ok active")
    health.probe_started()
    clock.now += 16
    health.beat()
    assert health.verdict() == (False, "database write waiting for 16 s (locked or unreachable)")
    health.probe_done(None)
    clock.now += 50
    health.beat()
    health.probe_started()
    health.probe_done(None)
    assert health.verdict() == (False, "no ticks for 66 s during a trading session")
    in_session[0] = False
    assert health.verdict() == (True, "ok active")  # no session, no ticks expected
    in_session[0] = True
    health.beat(Feeding(subscribed=0, last_tick_at=None))
    assert health.verdict() == (True, "ok active")  # nothing subscribed, nothing expected
    clock.now += 40
    health.beat()
    assert health.verdict() == (False, "database not checked for 40 s")


def test_by_default_health_knows_the_sessions_of_trading_days_08_to_20_kst() -> None:
    def kst(text: str) -> datetime:
        return datetime.fromisoformat(text + "+09:00").astimezone(UTC)

    in_session = Health().in_session
    assert in_session(kst("2026-12-02T08:00:00"))  # a Wednesday
    assert in_session(kst("2026-12-02T20:00:59"))
    assert not in_session(kst("2026-12-02T07:59:59"))
    assert not in_session(kst("2026-12-02T20:01:00"))
    assert not in_session(kst("2026-12-05T10:00:00"))  # a Saturday
    assert not in_session(kst("2026-12-25T10:00:00"))  # Christmas: KRX is closed


def test_metrics_of_two_apps_stay_apart_and_are_named_as_prometheus_wants() -> None:
    one, two = Metrics(), Metrics()
    one.update(Sample(fired={"rule-a": 3}, stored=3))
    one.telegram_results.labels("sent").inc()
    text = one.scrape().decode()
    assert 'pgmbot_alerts_fired_total{rule="rule-a"} 3.0' in text
    assert "pgmbot_alerts_stored_total 3.0" in text
    assert 'pgmbot_telegram_messages_total{result="sent"} 1.0' in text
    assert "rule-a" not in two.scrape().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.name.startswith("pgmbot_"), sample
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample
            assert "ticker" not in sample.labels  # one series per stock: too many


def test_metrics_listen_is_loopback_unless_remote_is_allowed(tmp_path: Path) -> None:
    assert MetricsSettings(listen="127.0.0.1:9464").listen == "127.0.0.1:9464"
    assert MetricsSettings(listen="[::1]:9464").listen == "[::1]:9464"
    assert MetricsSettings(listen="0.0.0.0:9464", allow_remote=True).allow_remote
    config = tmp_path / "config.yaml"
    config.write_text("metrics:\n  listen: 0.0.0.0:9464\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not a loopback address; set metrics\.allow_remote"):
        load_settings(config, env={})
    config.write_text("metrics:\n  listen: localhost\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        load_settings(config, env={})
    config.write_text("log_format: yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(config, env={})
    with pytest.raises(ValueError, match="takeover_delay must be at least"):
        StandbySettings(check_every=2, takeover_delay=4)
