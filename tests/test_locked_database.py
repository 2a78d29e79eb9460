"""Another process holds the database's write lock for a while: the bot's loop stays free, so the
feed keeps answering KIS's PINGPONG (KIS drops clients that do not) while alerts wait to be
committed and deliveries wait to be recorded; once the lock goes, everything lands, once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from kis_helpers import FAST, Ticks, eventually, kis_settings, running

from bot.alerts import Alert
from bot.kis.feed import Feed
from bot.kis.simulator import Simulator
from bot.store import AlertWriter, AsyncStore, Store, upgrade
from bot.ticks import KST, Tick

CHAT = 9


def alert(n: int) -> Alert:
    day = datetime.now(KST).date()
    tick = Tick("005930", day, "090000", 9 * 3600 + n, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    return Alert("net-buy", "005930", tick, n, f"alert {n}", seq=0)


async def test_pingpong_is_answered_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    upgrade(url)
    store = Store(url, allowed_chat_ids=[CHAT], busy_timeout=0.5)
    store.add_watches(CHAT, ["005930"])
    aio = AsyncStore(store)
    writer = AlertWriter(store, executor=aio.write_thread, retry_min=0.05, retry_max=0.2)
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    # Slow data, quick PINGPONG: the link is idle most of the time, as between trades.
    async with Simulator(rate=0.1, pingpong_interval=0.05) as sim:
        feed = Feed(kis_settings(sim), Ticks(), timing=FAST)
        feed.set_wanted(["005930"])
        writing = asyncio.create_task(writer.run())
        async with running(feed):
            await eventually(lambda: len(sim.pingpong_echoes) >= 2)
            holder.execute("BEGIN IMMEDIATE")  # the lock, from another connection
            echoes = len(sim.pingpong_echoes)
            longest, last = 0.0, time.monotonic()
            commands: list[asyncio.Future[list[str]]] = []
            for n in range(20):  # alerts keep firing; watches are asked for
                writer.submit([alert(n)])
                commands.append(asyncio.ensure_future(aio.add_watches(CHAT, ["000660"])))
                await asyncio.sleep(0.05)
                now = time.monotonic()
                longest, last = max(longest, now - last), now
            assert writer.queued == 20  # waiting, none lost
            assert len(sim.pingpong_echoes) >= echoes + 5, "PINGPONG went unanswered"
            assert longest < 0.1, f"the loop stalled {longest * 1000:.0f} ms"
            holder.execute("ROLLBACK")
            await writer.flush()
            # A command that waited longer than the busy timeout failed (its user is told);
            # none blocked the loop, and the next one works.
            await asyncio.gather(*commands, return_exceptions=True)
            await aio.add_watches(CHAT, ["000660"])
        await writer.close()
        await writing
    holder.close()
    aio.close()
    assert len(store.recent_alerts(limit=50)) == 20
    assert store.watches(CHAT) == ["000660", "005930"]
    store.close()
