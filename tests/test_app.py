"""`pgmbot run` wiring: the demo start, and rebuilding rule state from today's recording."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from bot.app import App, StartupError
from bot.config import Settings, load_settings
from bot.engine.evaluate import Engine
from bot.engine.spec import load_rules
from bot.kis.recording import Recorder
from bot.rebuild import Rebuilt, rebuild
from bot.store.db import InstanceLock
from bot.store.migrate import upgrade
from bot.store.repo import Store
from bot.ticks import KST, parse_frame

DAY = date(2026, 11, 23)
RULES = """\
rules:
  - id: up-100
    type: threshold
    field: NTBY_TR_PBMN
    crosses_above: 100
"""


def frame(hhmmss: str, net: int, ticker: str = "005930") -> str:
    return f"0|H0UNPGM0|001|{ticker}^{hhmmss}^1^1^1^1^0^{net}^0^0^0"


def record(directory: Path, frames: list[str]) -> None:
    recorder = Recorder(directory)
    start = datetime.combine(DAY, time(9), KST)
    for i, text in enumerate(frames):
        recorder.write(text, start + timedelta(seconds=i))
    recorder.close()


def setup(tmp_path: Path) -> tuple[Engine, Store]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    return Engine(load_rules(tmp_path / "rules.yaml")), Store(url, allowed_chat_ids=[1])


RECORDED_AT = datetime.combine(DAY, time(9), KST)  # the first frame's receive time


def rebuild_day(engine: Engine, store: Store, directory: Path, now: datetime) -> Rebuilt:
    path = directory / f"{DAY.isoformat()}.tsv"
    end = path.stat().st_size if path.exists() else 0
    return rebuild(engine, store, path, DAY, end=end, now=now)


def fire_and_store_first(tmp_path: Path, frames: list[str], store: Store) -> None:
    """Before the stop, the first crossing was stored; the second fired but was never
    committed."""
    first = Engine(load_rules(tmp_path / "rules.yaml"))
    fired = [a for f in frames[:2] for t in parse_frame(f, DAY) for a in first.on_tick(t)]
    assert [a.tick.hhmmss for a in fired] == ["090001"]
    store.add_alerts(fired)


FRAMES = [frame("090000", 50), frame("090001", 150), frame("090002", 50), frame("090003", 120)]


def test_rebuild_restores_state_and_stores_only_missing_alerts(tmp_path: Path) -> None:
    record(tmp_path / "rec", FRAMES)
    engine, store = setup(tmp_path)
    store.add_watches(1, ["005930"])
    fire_and_store_first(tmp_path, FRAMES, store)

    now = RECORDED_AT + timedelta(seconds=10)  # a quick restart: the missing alert is recent
    assert rebuild_day(engine, store, tmp_path / "rec", now) == Rebuilt(4, 1, 0)
    stored = store.recent_alerts(limit=10)
    assert [(a.rule, a.time.strftime("%H%M%S")) for a in stored] == [
        ("up-100", "090001"),
        ("up-100", "090003"),
    ]
    assert store.pending_count() == 2  # the missing one is delivered too, once
    # The engine continues where the recording ended: 120 -> 90 -> 130 crosses again.
    assert engine.on_tick(parse_frame(frame("090004", 90), DAY)[0]) == []
    assert [a.value for a in engine.on_tick(parse_frame(frame("090005", 130), DAY)[0])] == [130]
    store.close()


def test_a_late_restart_stores_old_missing_alerts_as_recovered_and_sends_none(
    tmp_path: Path,
) -> None:
    """A lost database, or a bot down for an hour: the day's alerts come back into the history,
    but no trader is sent alerts from an hour ago."""
    record(tmp_path / "rec", FRAMES)
    engine, store = setup(tmp_path)
    store.add_watches(1, ["005930"])
    now = RECORDED_AT + timedelta(hours=1)
    assert rebuild_day(engine, store, tmp_path / "rec", now) == Rebuilt(4, 0, 2)
    assert len(store.recent_alerts(limit=10)) == 2
    assert store.pending_count() == 0
    assert store.delivery_counts() == {"recovered": 2}
    # A second restart finds nothing missing.
    again = Engine(load_rules(tmp_path / "rules.yaml"))
    assert rebuild_day(again, store, tmp_path / "rec", now) == Rebuilt(4, 0, 0)
    store.close()


def test_rebuild_stops_at_the_offset_it_was_given(tmp_path: Path) -> None:
    """Frames the new feed appends while the rebuild runs are not replayed twice: the rebuild
    reads up to the recording's size at start, a line cut there is left for the live path."""
    record(tmp_path / "rec", FRAMES)
    path = tmp_path / "rec" / f"{DAY.isoformat()}.tsv"
    end = path.stat().st_size
    with path.open("a") as file:
        file.write(f"{RECORDED_AT.isoformat()}\t{frame('090009', 500)}")  # no newline yet
    engine, store = setup(tmp_path)
    result = rebuild(engine, store, path, DAY, end=end, now=RECORDED_AT)
    assert result.ticks == 4
    half = rebuild(
        Engine(load_rules(tmp_path / "rules.yaml")), store, path, DAY, end=end + 5, now=RECORDED_AT
    )
    assert half.ticks == 4  # the cut line is not read
    store.close()


def test_rebuild_without_a_recording_does_nothing(tmp_path: Path) -> None:
    engine, store = setup(tmp_path)
    assert rebuild_day(engine, store, tmp_path / "none", RECORDED_AT) == Rebuilt(0, 0, 0)
    assert store.recent_alerts(limit=10) == []
    store.close()


async def test_demo_starts_simulated_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMBOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    banner = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
    assert b"SIMULATED" in banner
    db = tmp_path / "pgmbot.db"
    assert proc.stderr is not None
    started = b""
    while b"pgmbot running" not in started or b"SUBSCRIBE SUCCESS" not in started:
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=20)
        assert line, started.decode(errors="replace")[-2000:]
        started += line
    proc.send_signal(signal.SIGINT)
    _out, rest = await asyncio.wait_for(proc.communicate(), timeout=20)
    err = started + rest
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert b"subscribe" in err and b"Traceback" not in err
    with sqlite3.connect(db) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"alerts", "deliveries", "watches"} <= tables


def test_run_without_rules_says_where_it_looked_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMBOT_")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,  # no config.yaml, no rules/
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{tmp_path / 'rules'}: no such rules file or directory\n" in done.stderr
    assert "Set rules.path in the config" in done.stderr
    assert "DEMO MODE" not in done.stdout  # no simulator was started
    assert list(tmp_path.iterdir()) == []  # no database, no recordings


def stored_count(db: Path) -> int:
    """Alerts in the bot's database so far (0 while it is not yet created or migrated)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            count: int = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
            return count
    except sqlite3.OperationalError:
        return 0


async def test_a_replay_of_the_recording_fires_exactly_what_the_live_bot_stored(
    tmp_path: Path,
) -> None:
    # The demo's busy order-book remainders: alerts every few seconds on every stock.
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "rules:\n"
        "  - {id: book, type: change, field: SELN_RSQN, window: 1s, rise: 1, cooldown: 1s}\n"
        "  - {id: flip, type: sign_flip, field: WHOL_NTBY_QTY}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMBOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--record", "rec", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    db = tmp_path / "pgmbot.db"
    for _ in range(300):  # until alerts are being stored
        await asyncio.sleep(0.1)
        if stored_count(db) >= 20:
            break
    proc.send_signal(signal.SIGINT)
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT rule, ticker, day, hhmmss, value FROM alerts ORDER BY id"
        ).fetchall()
    assert len(stored) >= 20

    [recording] = (tmp_path / "rec").glob("*.tsv")  # master/ holds the stock master files
    replay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "replay", str(recording), "--rules", "rules", "--json",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(replay.communicate(), timeout=60)
    assert replay.returncode == 0, err
    replayed = []
    for line in out.decode().splitlines():
        alert = json.loads(line)
        when = alert["time"]  # 2026-11-30T21:27:10+09:00
        hhmmss = when[11:19].replace(":", "")
        replayed.append((alert["rule"], alert["ticker"], when[:10], hhmmss, alert["value"]))
    assert replayed == stored


def demo_settings(tmp_path: Path) -> Settings:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / 'bot.db'}'}}\n"
        f"rules: {{path: '{tmp_path / 'rules.yaml'}'}}\n",
        encoding="utf-8",
    )
    return load_settings(config, env={})


async def test_the_app_starts_and_stops_its_parts_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = App(demo_settings(tmp_path))
    with caplog.at_level(logging.INFO):
        await app.start()
        assert app.steps == [
            "rules", "operations", "exchange", "database", "pipeline", "feed", "rebuild",
            "console", "background",
        ]  # fmt: skip
        await app.stop()
    said = [r.getMessage() for r in caplog.records]

    def when(text: str) -> int:
        return next(i for i, line in enumerate(said) if line.startswith(text))

    # Down in reverse: no more ticks, then everything fired committed, then the database and
    # the exchange go.
    assert when("feed stopped") < when("alert writer stopped") < when("simulator stopped")
    assert when("pgmbot stopped") == len(said) - 1


async def test_a_failed_start_stops_what_had_started(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path)
    other = InstanceLock(settings.storage.url)  # another pgmbot runs on the same file
    other.acquire()
    app = App(settings)
    try:
        with pytest.raises(StartupError, match="another pgmbot"):
            await app.start()
    finally:
        other.release()
    assert app.steps == ["rules"]  # nothing started, not even the demo's simulator
    assert not (tmp_path / "bot.db").exists()  # the database was never touched


async def test_the_demo_says_when_the_real_market_is_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    night = datetime(2026, 12, 2, 21, 0, tzinfo=KST)
    app = App(demo_settings(tmp_path), clock=lambda: night)
    await app.start()
    try:
        await asyncio.wait_for(app.master.loaded.wait(), 10)
        assert app.master.directory.label("005930") == "삼성전자(005930)"  # from its simulator
    finally:
        await app.stop()
    out = capsys.readouterr().out
    assert "데모: 모의 데이터로 동작합니다. 실제 시장은 장 마감 · 다음 개장 12/03(목) 08:00" in out
    morning = datetime(2026, 12, 2, 10, 0, tzinfo=KST)
    app = App(demo_settings(tmp_path), clock=lambda: morning)
    await app.start()
    await app.stop()
    assert "실제 시장은" not in capsys.readouterr().out
