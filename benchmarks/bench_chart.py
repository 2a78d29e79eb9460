"""A full day's chart: render time, peak memory, and the event loop's longest stall meanwhile.

    python benchmarks/bench_chart.py [--rounds 5] [--alerts 60]

A stock's day of 08:00-20:00 at one-minute resolution (721 rows: the regular session plus the NXT
hours), ``--alerts`` alert markers and four threshold lines, drawn by bot.charts.render:
  cold     the first chart of the process (font loading, matplotlib's caches)
  warm     the median and worst of ``--rounds`` more, wall and CPU time
  memory   the process's peak RSS after all of them (imports included), and the peak of Python
           and numpy allocations while one chart is drawn (tracemalloc)
  stall    charts drawn in a worker thread (asyncio.to_thread, as /chart does) while a task
           on the loop ticks every millisecond: the longest gap between two of its wake-ups
Targets: under 1 s a chart, under 150 MB, a stall under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import time
import tracemalloc
from dataclasses import replace
from datetime import date

from bot.charts.render import Threshold, render_day
from bot.charts.series import DayFigures, Marker, Series
from bot.charts.worker import ChartWorker
from bot.ticks import Tick

DAY = date(2026, 11, 23)
LABEL = "삼성전자(005930)"
LEVELS = [
    Threshold("net-buy-100eok", "NTBY_TR_PBMN", 100e8),
    Threshold("net-sell-100eok", "NTBY_TR_PBMN", -100e8),
    Threshold("bid-high", "WHOL_NTBY_QTY", 50_000),
    Threshold("buy-3000eok", "SHNU_TR_PBMN", 3000e8),
]


def full_day(alerts: int, seed: int = 1) -> DayFigures:
    rng = random.Random(seed)
    series = Series()
    buy = sell = whole = 0
    for minute in range(8 * 60, 20 * 60 + 1):
        buy += rng.randint(0, 10**9)
        sell += rng.randint(0, 10**9)
        whole += rng.randint(-5000, 5000)
        series.on_ticks(
            [Tick("005930", DAY, "", minute * 60, 0, sell, 0, buy, 0, buy - sell, 0, 0, whole)]
        )
    figures = series.figures("005930")
    assert figures is not None
    seconds = sorted(rng.randrange(8 * 3600, 20 * 3600) for _ in range(alerts))
    markers = tuple(Marker(s, rng.choice(("net-buy", "flip", "surge")), 0) for s in seconds)
    return replace(figures, alerts=markers)


def draw(figures: DayFigures) -> int:
    return len(render_day(figures, label=LABEL, levels=LEVELS))


def timed(figures: DayFigures) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    draw(figures)
    return time.perf_counter() - wall, time.process_time() - cpu


async def longest_stall(
    figures: DayFigures | None, charts: int, seconds: float = 0, *, processes: bool = False
) -> float:
    """The longest gap between two wake-ups of a 1 ms ticker while ``charts`` charts are drawn,
    one after the other, by a ChartWorker (a thread, or a warm worker process); None: while
    nothing else runs for ``seconds``, the machine's own noise."""
    worker = ChartWorker(processes=processes)
    if figures is not None:
        await worker.render(figures, label=LABEL, levels=LEVELS)  # started, matplotlib loaded
    stop = asyncio.Event()
    worst = 0.0

    async def tick() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    if figures is None:
        await asyncio.sleep(seconds)
    for _ in range(charts if figures is not None else 0):
        await worker.render(figures, label=LABEL, levels=LEVELS)  # type: ignore[arg-type]
    stop.set()
    await ticker
    worker.close()
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--alerts", type=int, default=60)
    args = parser.parse_args()
    figures = full_day(args.alerts)
    print(f"day: {len(figures)} minutes, {len(figures.alerts)} alerts, {len(LEVELS)} thresholds")
    cold, cold_cpu = timed(figures)
    print(f"cold: {cold * 1000:.0f} ms (cpu {cold_cpu * 1000:.0f} ms)")
    rounds = [timed(figures) for _ in range(args.rounds)]
    walls, cpus = [w for w, _ in rounds], [c for _, c in rounds]
    print(
        f"warm: median {statistics.median(walls) * 1000:.0f} ms, worst {max(walls) * 1000:.0f} ms"
        f" (cpu median {statistics.median(cpus) * 1000:.0f} ms); png {draw(figures):,} bytes"
    )
    tracemalloc.start()
    draw(figures)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    mb = traced / 2**20
    print(f"memory: peak RSS {rss:.0f} MB (process, imports included); one chart {mb:.1f} MB")
    began = time.perf_counter()
    thread = asyncio.run(longest_stall(figures, args.rounds))
    process = asyncio.run(longest_stall(figures, args.rounds, processes=True))
    idle = asyncio.run(longest_stall(None, 0, (time.perf_counter() - began) / 2))
    print(
        f"stall: the loop's longest gap while {args.rounds} charts render: in the worker "
        f"process {process * 1000:.1f} ms, in a thread {thread * 1000:.1f} ms; with nothing "
        f"else running: {idle * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
