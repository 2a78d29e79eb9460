"""A full disk under the database and the recording: alerts wait, none is lost, none is sent twice,
and everything goes on once there is room (a real small file system, where the machine allows)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from botapi import FakeBotApi
from telegram import Bot

from bot.alerts import Alert
from bot.kis.recording import Recorder, recording_path
from bot.notify.sender import Sender, SenderSettings
from bot.notify.telegram_bot import TelegramTransport
from bot.store import AlertWriter, AsyncStore, Store, upgrade
from bot.ticks import KST, Tick

AT = datetime(2024, 6, 3, 9, 0, tzinfo=KST)
CHAT = 5


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs, or a skip saying why there is none."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip() or 'no mount'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Take every free byte of the file system under ``path``."""
    with path.open("wb") as filler:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                filler.write(chunk)
                filler.flush()
        with contextlib.suppress(OSError):
            while True:  # the last bytes, one at a time
                os.write(filler.fileno(), b"\0")


def alert(n: int) -> Alert:
    tick = Tick("005930", AT.date(), "090000", 9 * 3600 + n, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    return Alert("net-buy", "005930", tick, n, f"순매수 #A{n}#", seq=0)


async def test_a_full_disk_delays_alerts_and_loses_or_repeats_none(small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'pgmbot.db'}"
    upgrade(url)
    store = Store(url, allowed_chat_ids=[CHAT], busy_timeout=0.2)
    store.add_watches(CHAT, ["005930"])
    recorder = Recorder(small_disk / "rec")
    writer = AlertWriter(store, journal=recorder.flush, retry_min=0.01, retry_max=0.05)
    aio = AsyncStore(store)
    settings = SenderSettings(poll_interval=0.05, chat_interval=0.01, backoff_min=0.05)
    async with FakeBotApi() as api, Bot(api.token, base_url=api.base_url) as bot:
        sender = Sender(aio, TelegramTransport(bot), settings)
        writer.on_commit(lambda _alerts: sender.wake())
        tasks = [asyncio.create_task(writer.run()), asyncio.create_task(sender.run())]
        for n in range(5):  # stored and on their way before the disk fills
            recorder.write(f"frame {n}", AT)
            writer.submit([alert(n)])
        await writer.flush()
        fill(small_disk / "filler")
        for n in range(5, 40):
            recorder.write(f"frame {n}", AT)
            writer.submit([alert(n)])
        await api.wait_until(lambda: writer.retries >= 3, timeout=10)
        assert writer.queued > 0  # waiting, not dropped
        await asyncio.sleep(0.5)  # the sender looks again and again meanwhile
        (small_disk / "filler").unlink()  # room again
        await writer.flush()
        await api.wait_until(lambda: store.pending_count() == 0, timeout=10)
        await writer.close()
        await sender.close()
        await asyncio.gather(*tasks)
    aio.close()
    sent = Counter(n for m in api.sent for n in m.text.split("#A")[1:])
    assert sorted(int(n.split("#")[0]) for n in sent) == list(range(40))
    assert all(count == 1 for count in sent.values()), "an alert was sent twice"
    lines = recording_path(small_disk / "rec", AT).read_text().splitlines()
    assert [line.split("\t")[1] for line in lines] == [f"frame {n}" for n in range(40)]
    assert len(store.recent_alerts(limit=100)) == 40
    store.close()
    recorder.close()
