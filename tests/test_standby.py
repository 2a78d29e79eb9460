"""The advisory lock of the active bot (bot.standby) on a throwaway PostgreSQL server: one holder
at a time, a standby that takes it once the holder's session is gone (after its delay), and a
holder whose loop does not stop the feed in time ends itself."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bot.standby import EXIT_STUCK, LeaderLock, libpq_url


def terminate_lock_sessions(url: str) -> int:
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pgmbot-lock'"
            " AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"
        ).fetchall()
    return len(rows)


async def test_one_holder_at_a_time_and_the_standby_takes_over_after_its_delay(
    postgres_url: str,
) -> None:
    lost: list[str] = []
    first = LeaderLock(postgres_url, check_every=0.2, takeover_delay=1.4, on_lost=lost.append)
    second = LeaderLock(postgres_url, check_every=0.2, takeover_delay=1.4, on_lost=lost.append)
    try:
        await asyncio.wait_for(first.acquire(), 10)
        waiting = asyncio.ensure_future(second.acquire())
        await asyncio.sleep(1.0)
        assert not waiting.done() and not second.held  # a standby while the first holds it
        first.release()  # its session ends: the lock is free
        released = time.monotonic()
        await asyncio.wait_for(waiting, 10)
        took = time.monotonic() - released
        assert 1.4 <= took < 1.4 + 1.0, took  # the delay, plus a try at most
        assert second.held and lost == []
    finally:
        first.release()
        second.release()


async def test_a_holder_whose_session_ends_is_told_at_once(postgres_url: str) -> None:
    lost: list[str] = []
    told = asyncio.Event()

    def on_lost(reason: str) -> None:
        lost.append(reason)
        lock.quiet()  # the app stopped its feed and sender
        told.set()

    lock = LeaderLock(postgres_url, check_every=0.2, takeover_delay=1.4, on_lost=on_lost)
    try:
        await asyncio.wait_for(lock.acquire(), 10)
        assert terminate_lock_sessions(postgres_url) == 1
        ended = time.monotonic()
        await asyncio.wait_for(told.wait(), 5)
        assert time.monotonic() - ended < 2 * 0.2 + 0.3  # within two checks
        assert lost and "lock connection failed" in lost[0]
        assert not lock.held
    finally:
        lock.release()


def test_a_holder_that_does_not_stop_in_time_ends_its_process(
    postgres_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "holder.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            from bot.standby import LeaderLock

            async def main() -> None:
                lock = LeaderLock({postgres_url!r}, check_every=0.2, takeover_delay=1.4,
                                  on_lost=lambda reason: None)  # never quiet(): a stuck app
                await lock.acquire()
                print("held", flush=True)
                await asyncio.sleep(30)

            asyncio.run(main())
            """
        ),
        encoding="utf-8",
    )
    holder = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        assert terminate_lock_sessions(postgres_url) == 1
        ended = time.monotonic()
        assert holder.wait(timeout=10) == EXIT_STUCK
        # Gone before a standby could start: two checks, the grace, well within the delay.
        assert time.monotonic() - ended < 1.4
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
