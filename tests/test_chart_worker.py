"""Charts drawn in the worker process: the PNG comes back, NoData comes back as NoData, and the
worker does not outlive a killed bot."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_charts_render import LABEL, one_tick, png_size

from bot.charts.render import HEIGHT, WIDTH, NoData
from bot.charts.series import DayFigures
from bot.charts.worker import ChartWorker


@pytest.mark.parametrize("processes", [True, False])
async def test_a_worker_draws_the_chart_and_says_when_there_is_nothing(processes: bool) -> None:
    worker = ChartWorker(processes=processes)
    try:
        png = await worker.render(one_tick(), label=LABEL, locale="en")
        assert png_size(png) == (WIDTH, HEIGHT)
        empty = DayFigures("005930", one_tick().day, (), {})
        with pytest.raises(NoData):
            await worker.render(empty, label=LABEL)
    finally:
        worker.close()


# Starts a worker with its first chart, says the worker's pid, then waits to be killed.
_BOT = """
import asyncio, multiprocessing, sys, time
sys.path.insert(0, {tests!r})
from test_charts_render import LABEL, one_tick
from bot.charts.worker import ChartWorker

async def main():
    worker = ChartWorker()
    await worker.render(one_tick(), label=LABEL)
    print(*(child.pid for child in multiprocessing.active_children()), flush=True)
    time.sleep(600)

asyncio.run(main())
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_the_worker_process_ends_when_the_bot_is_killed_with_sigkill() -> None:
    script = _BOT.format(tests=str(Path(__file__).parent))
    bot = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert bot.stdout is not None
        workers = [int(pid) for pid in bot.stdout.readline().split()]
        assert len(workers) == 1 and _running(workers[0])
    finally:
        bot.kill()  # SIGKILL: no close(), no atexit
        bot.wait()
    deadline = time.monotonic() + 30
    while _running(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(workers[0]), "the chart worker outlived the killed bot"
