"""Store throughput and what the AlertWriter spares the event loop.

    python benchmarks/bench_store.py [--alerts 20000] [--chats 3] [--backlog 20000]

1. Commits: ``Store.add_alerts`` with batches of 1, 50 and 500 alerts (each alert plus a delivery
   per chat, one transaction per batch) on a fresh SQLite file; prints alerts/s and the speed-up
   of batching over one alert per commit.
2. The loop: the same alerts go in from the event loop, once through ``AlertWriter`` and once by
   calling the store directly on the loop; a heartbeat task records the longest gap between its
   beats. Prints both worst stalls and their ratio (the writer should keep the loop free).
3. The outbox: the sender's reads (``due_chats``, then ``due_deliveries(chat, 50)``) with a
   backlog of ``--backlog`` deliveries; prints the time per call (they run in a worker thread).
4. A big day (``--stored`` alerts in the database, 20 chats, 10,000 deliveries pending): the
   time of each chat command's query (``/alerts``, ``/alerts CODE``, ``/status``'s counts;
   target < 50 ms each), and the process CPU while the real Sender drains the backlog through
   a loopback Bot API for ``--seconds`` (before: it re-read 500 rows per chat after every send).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the loopback Bot API

from bot.alerts import Alert
from bot.store import AlertWriter, Store, upgrade
from bot.ticks import Tick

DAY = date(2025, 3, 14)


def make_alerts(count: int, offset: int = 0) -> list[Alert]:
    alerts = []
    for n in range(offset, offset + count):
        seconds = 9 * 3600 + n % 23400
        tick = Tick("005930", DAY, "090000", seconds, n, 2 * n, 3, 4, 5, 6_000_000_000, 7, 8, 9)
        alerts.append(Alert("net-buy", "005930", tick, n, f"순매수 {n}억 돌파", seq=n // 23400))
    return alerts


def fresh_store(directory: Path, name: str, chats: int) -> Store:
    url = f"sqlite:///{directory / name}"
    upgrade(url)
    store = Store(url, allowed_chat_ids=range(1, chats + 1))
    for chat in range(1, chats + 1):
        store.add_watches(chat, ["005930"])
    return store


def bench_commits(directory: Path, count: int, chats: int) -> None:
    print(f"1. add_alerts, {count} alerts, {chats} chat(s) each")
    rates: dict[int, float] = {}
    for size in (1, 50, 500):
        store = fresh_store(directory, f"commit{size}.db", chats)
        n = count if size > 1 else min(count, 2000)  # one per commit is slow: fewer
        alerts = make_alerts(n)
        start = time.perf_counter()
        for i in range(0, n, size):
            store.add_alerts(alerts[i : i + size])
        rates[size] = n / (time.perf_counter() - start)
        store.close()
        print(f"   batch {size:>3}: {rates[size]:>10,.0f} alerts/s")
    print(f"   batching 500 vs 1: {rates[500] / rates[1]:.1f}x")


async def worst_stall(work: Callable[[], object]) -> float:
    """Run ``work`` (a coroutine factory) with a heartbeat; the longest gap between beats."""
    worst = 0.0
    done = False

    async def heartbeat() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    await work()  # type: ignore[misc]
    done = True
    await beat
    return worst


async def bench_loop(directory: Path, count: int, chats: int) -> None:
    print(f"2. event loop stall while storing {count} alerts in bursts of 500")
    alerts = make_alerts(count)

    writer_store = fresh_store(directory, "writer.db", chats)
    writer = AlertWriter(writer_store)

    async def through_writer() -> None:
        task = asyncio.create_task(writer.run())
        for i in range(0, count, 500):
            writer.submit(alerts[i : i + 500])
            await asyncio.sleep(0.01)
        await writer.close()
        await task

    direct_store = fresh_store(directory, "direct.db", chats)

    async def on_the_loop() -> None:
        for i in range(0, count, 500):
            direct_store.add_alerts(alerts[i : i + 500])
            await asyncio.sleep(0.01)

    with_writer = await worst_stall(through_writer)
    direct = await worst_stall(on_the_loop)
    writer_store.close()
    direct_store.close()
    print(f"   AlertWriter:  worst stall {with_writer * 1000:7.1f} ms")
    print(f"   direct calls: worst stall {direct * 1000:7.1f} ms")
    print(f"   ratio direct / writer: {direct / with_writer:.1f}x")


def per_call_ms(call: Callable[[], object], calls: int = 20) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1000


def bench_outbox(directory: Path, backlog: int) -> None:
    print(f"3. the sender's reads with {backlog} deliveries due, 4 chats")
    store = fresh_store(directory, "outbox.db", 4)
    for i in range(0, backlog // 4, 500):
        store.add_alerts(make_alerts(min(500, backlog // 4 - i), offset=i))
    print(f"   due_chats:            {per_call_ms(store.due_chats):6.2f} ms per call")
    print(f"   due_deliveries(1, 50): {per_call_ms(lambda: store.due_deliveries(1, 50)):6.2f} ms")
    store.close()


def big_day(directory: Path, stored: int, chats: int, pending: int) -> Store:
    url = f"sqlite:///{directory / 'big.db'}"
    upgrade(url)
    store = Store(url, allowed_chat_ids=range(1, chats + 1))
    fill_big_day(store, stored, range(1, chats + 1), pending)
    return store


def fill_big_day(store: Store, stored: int, chats: range, pending: int) -> None:
    """``stored`` alerts over 40 stocks, each chat watching 2 of them; all sent but the last
    ``pending`` deliveries."""
    tickers = [f"{100000 + n:06d}" for n in range(40)]
    for chat in chats:
        store.add_watches(chat, tickers[(chat * 2) % 40 : (chat * 2) % 40 + 2])
    batch: list[Alert] = []
    for n in range(stored):
        ticker = tickers[n % 40]
        day = DAY - timedelta(days=n // 200_000)
        seconds = 9 * 3600 + (n // 40) % 23400
        tick = Tick(ticker, day, "090000", seconds, n, 2 * n, 3, 4, 5, 6, 7, 8, 9)
        batch.append(Alert("net-buy", ticker, tick, n, f"순매수 {n}", seq=n // (40 * 23400)))
        if len(batch) == 5000:
            store.add_alerts(batch)
            batch = []
    store.add_alerts(batch)
    with store._writer.begin() as conn:  # everything delivered but the newest ``pending``
        conn.exec_driver_sql(
            "UPDATE deliveries SET state = 'sent' WHERE id <= "
            f"(SELECT max(id) FROM deliveries) - {pending}"
        )


async def drain_cpu(store: Store, seconds: float) -> tuple[float, int]:
    """Process CPU share while the real Sender sends from the backlog for ``seconds``."""
    from botapi import FakeBotApi
    from telegram import Bot

    from bot.notify.sender import Sender
    from bot.notify.telegram_bot import TelegramTransport
    from bot.store.facade import AsyncStore

    async with FakeBotApi() as api, Bot(api.token, base_url=api.base_url) as bot:
        aio = AsyncStore(store)
        sender = Sender(aio, TelegramTransport(bot))
        task = asyncio.create_task(sender.run())
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        share = (time.process_time() - cpu) / (time.perf_counter() - wall)
        await sender.close()
        await task
        aio.close()
        return share, sender.sent


def bench_big_day(directory: Path, stored: int, seconds: float) -> None:
    chats, pending = 20, 10_000
    print(f"4. {stored:,} alerts stored, {chats} chats, {pending:,} deliveries pending")
    store = big_day(directory, stored, chats, pending)
    code = store.watches(1)[0]
    figures = {
        "/alerts": per_call_ms(lambda: store.recent_alerts(chat_id=1, limit=10)),
        "/alerts CODE": per_call_ms(lambda: store.recent_alerts(chat_id=1, ticker=code)),
        "/status failed": per_call_ms(store.failed_count),
        "/status pending": per_call_ms(store.pending_count),
        "sender due_chats": per_call_ms(store.due_chats),
        "sender due_deliveries": per_call_ms(lambda: store.due_deliveries(1, 50)),
    }
    for name, ms in figures.items():
        print(f"   {name:<22} {ms:8.2f} ms")
    share, sent = asyncio.run(drain_cpu(store, seconds))
    print(f"   sender draining: {share * 100:.1f}% of a core, {sent} messages in {seconds:g} s")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--chats", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--stored", type=int, default=200_000, help="section 4 (1,000,000)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        bench_commits(directory, args.alerts, args.chats)
        asyncio.run(bench_loop(directory, args.alerts, args.chats))
        bench_outbox(directory, args.backlog)
        bench_big_day(directory, args.stored, args.seconds)


if __name__ == "__main__":
    main()
