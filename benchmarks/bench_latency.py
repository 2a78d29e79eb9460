"""Alert latency end to end: a frame leaving the simulator -> its alert at the Bot API server.

    python benchmarks/bench_latency.py [--seconds 30] [--tickers 20] [--rate 50] [--backlog N]

Runs the real pieces in one process on loopback, wired as `pgmbot run` wires them: the KIS
simulator (tickers x rate ticks/s), the Feed, the Engine, the Store (SQLite file) with its
AlertWriter, the Sender with python-telegram-bot talking to the fake Bot API server of the tests.
One rule on one ticker fires about every 2 s. For every alert it matches the record that caused it
(by its exact fields) to the moment the simulator sent that frame, and prints p50, p99 and max of
frame-sent -> message-received, and the process's CPU share. Target: p99 under 50 ms.

``--backlog N``: the database holds N stored alerts and 10,000 deliveries pending for 20 other
chats, which the sender drains meanwhile (the faults issue's "delivery backlog starves the feed").
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_store import fill_big_day
from botapi import FakeBotApi
from telegram import Bot

from bot.app import Pipeline
from bot.config import KisSettings
from bot.engine.evaluate import Engine
from bot.engine.spec import load_rules
from bot.kis.feed import Feed
from bot.kis.simulator import Simulator
from bot.notify.sender import Sender
from bot.notify.telegram_bot import TelegramTransport
from bot.store.facade import AsyncStore
from bot.store.migrate import upgrade
from bot.store.repo import Store
from bot.store.writer import AlertWriter

CHAT = 1
WATCHED = "005930"
RULE = f"""\
rules:
  - id: bench
    type: change
    field: SELN_RSQN
    window: 1s
    rise: 1
    cooldown: 2s
    tickers: ["{WATCHED}"]
    message: "record={{MKSC_SHRN_ISCD}}^{{STCK_CNTG_HOUR}}^{{SELN_CNQN:d}}^{{SELN_TR_PBMN:d}}"
"""
RECORD = re.compile(r"record=([0-9A-Z]{6}\^\d{6}\^-?\d+\^-?\d+)")


async def run(seconds: float, tickers: int, rate: float, backlog: int) -> None:
    sent_at: dict[str, float] = {}  # the first 4 fields of each record of WATCHED -> send time

    def on_frame_sent(frame: str, at: float) -> None:
        fields = frame.split("|", 3)[3].split("^")
        for start in range(0, len(fields), 11):
            if fields[start] == WATCHED:
                sent_at.setdefault("^".join(fields[start : start + 4]), at)

    codes = [WATCHED, *(f"{100000 + i:06d}" for i in range(tickers - 1))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rules.yaml").write_text(RULE, encoding="utf-8")
        url = f"sqlite:///{root / 'bench.db'}"
        upgrade(url)
        others = range(CHAT + 1, CHAT + 21)
        store = Store(url, allowed_chat_ids=[CHAT, *others])
        store.add_watches(CHAT, [WATCHED])
        if backlog:
            fill_big_day(store, backlog, others, 10_000)
        async with (
            FakeBotApi() as api,
            Simulator(rate=rate, seed=3, on_frame_sent=on_frame_sent) as sim,
        ):
            kis = KisSettings.model_validate(
                {
                    "rest_url": sim.rest_url,
                    "ws_url": sim.ws_url,
                    "accounts": [{"appkey": "BENCH-KEY", "appsecret": "BENCH-SECRET"}],
                    "subscribe_interval": 0.001,
                }
            )
            aio = AsyncStore(store)
            writer = AlertWriter(store, executor=aio.write_thread)
            pipeline = Pipeline(Engine(load_rules(root / "rules.yaml")), writer)
            feed = Feed(kis, pipeline.on_ticks)
            async with Bot(api.token, base_url=api.base_url) as bot:
                sender = Sender(aio, TelegramTransport(bot))
                writer.on_commit(lambda _alerts: sender.wake())
                tasks = [asyncio.create_task(t.run()) for t in (feed, writer, sender)]
                feed.set_wanted(codes)
                await feed.wait_settled(codes, timeout=10)
                started, ticks_before = time.perf_counter(), feed.stats().ticks
                cpu = time.process_time()
                await asyncio.sleep(seconds)
                elapsed, ticks = time.perf_counter() - started, feed.stats().ticks - ticks_before
                cpu_share = (time.process_time() - cpu) / elapsed
                await feed.stop()
                await writer.close()
                await sender.close()
                for task in tasks:
                    await task
        store.close()

    offset = time.perf_counter() - time.monotonic()  # SentMessage.at is time.monotonic()
    latencies = []
    for message in api.messages_for(CHAT):
        for record in RECORD.findall(message.text):
            if record in sent_at:
                latencies.append((message.at + offset - sent_at[record]) * 1000)
    print(f"ticks received  {ticks:,} in {elapsed:.1f} s = {ticks / elapsed:,.0f} ticks/s "
          f"({tickers} tickers)")  # fmt: skip
    print(f"process CPU     {cpu_share * 100:.0f}% of a core (simulator and Bot API included)")
    if len(latencies) < 2:
        print(f"only {len(latencies)} alerts matched: run longer")
        return
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"alerts          {len(latencies)} (one every {elapsed / len(latencies):.1f} s)")
    print(f"latency p50     {statistics.median(latencies):8.1f} ms")
    print(f"latency p99     {p99:8.1f} ms   (target < 50 ms)")
    print(f"latency max     {latencies[-1]:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0, help="ticks/s per ticker")
    parser.add_argument("--backlog", type=int, default=0, help="stored alerts, 10k pending")
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.tickers, args.rate, args.backlog))


if __name__ == "__main__":
    main()
