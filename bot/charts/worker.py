"""Charts drawn off the event loop: in a worker process by default, or a worker thread.

Drawing a chart is about half a second of CPU, most of it Python code and C calls holding the
GIL (text layout, PNG encoding). In a thread of the bot's own process, that GIL keeps the event
loop waiting: on a loaded 2-core machine the loop stalled 200+ ms per chart (benchmarks/
bench_chart.py). A worker process has a GIL of its own: the loop only pickles the figures (a few
KB) and receives the PNG. The process is started at the first chart (``spawn``: never a fork of
a threaded process) and keeps matplotlib loaded for the next ones; ``close()`` ends it, and
the worker ends itself when the bot's process is gone (killed with SIGKILL, or by the OOM killer):
an orphan would otherwise sleep forever with its 100 MB.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool as BrokenExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

from bot.charts.levels import NoData, Threshold
from bot.charts.series import DayFigures, Marker
from bot.market.sessions import DEFAULT_SESSIONS, MinuteRange
from bot.messages import Catalogue, Locale


def draw_png(
    figures: DayFigures,
    label: str,
    levels: tuple[Threshold, ...],
    sessions: Mapping[str, MinuteRange],
    locale: Locale,
) -> bytes:
    """What the worker runs (a module-level function: a process can import it)."""
    from bot.charts.render import render_day  # matplotlib is loaded in the worker only

    return render_day(
        figures, label=label, levels=levels, sessions=dict(sessions), say=Catalogue(locale)
    )


def draw_recording_png(
    recording: Path,
    ticker: str,
    markers: tuple[Marker, ...],
    label: str,
    levels: tuple[Threshold, ...],
    sessions: Mapping[str, MinuteRange],
    locale: Locale,
) -> bytes:
    """A past day: the stock's rows read from its recording (in the worker: a busy day's file
    takes seconds to read), with the alerts the store kept."""
    from bot.charts.command import chart_of_recording

    figures, _ = chart_of_recording(recording, ticker)
    if figures is None:
        raise NoData(Catalogue(locale)("charts.no_data", stock=label, day=_day_of(recording)))
    figures = replace(figures, alerts=markers)
    return draw_png(figures, label, levels, sessions, locale)


def draw_top_png(
    stocks: tuple[tuple[str, DayFigures], ...],
    day: str,
    sessions: Mapping[str, MinuteRange],
    locale: Locale,
) -> bytes:
    from bot.charts.render import render_top

    return render_top(stocks, day=day, sessions=dict(sessions), say=Catalogue(locale))


def _day_of(recording: Path) -> str:
    return recording.name.partition(".")[0]


def _exit_with_parent() -> None:
    """The worker's initializer: a thread that ends the process when its parent has gone. The
    pool's own queue never tells it (the worker holds both ends of its pipe); the parent's
    sentinel, a pipe only the parent writes to, reads EOF then."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        watch = threading.Thread(target=_wait_for, args=(parent,), name="parent", daemon=True)
        watch.start()


def _wait_for(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(0)  # no cleanup to run: the worker holds nothing but matplotlib


class ChartWorker:
    """Renders charts one at a time in a worker (``processes=False``: a thread)."""

    def __init__(self, *, processes: bool = True) -> None:
        self._processes = processes
        self._executor: Executor | None = None
        self._lock = asyncio.Lock()  # one chart at a time: a burst of /chart queues here

    def _pool(self) -> Executor:
        if self._executor is None:
            if self._processes:
                context = multiprocessing.get_context("spawn")
                self._executor = ProcessPoolExecutor(
                    1, mp_context=context, initializer=_exit_with_parent
                )
            else:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="chart")
        return self._executor

    async def render(
        self,
        figures: DayFigures,
        *,
        label: str,
        levels: Iterable[Threshold] = (),
        sessions: Mapping[str, MinuteRange] = DEFAULT_SESSIONS,
        locale: Locale = "ko",
    ) -> bytes:
        """The PNG; raises NoData for a day without figures (as render_day does)."""
        work = partial(draw_png, figures, label, tuple(levels), dict(sessions), locale)
        return await self._run(work)

    async def _run(self, work: Callable[[], bytes]) -> bytes:
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._pool(), work)
            except BrokenExecutor:  # the worker died (killed, out of memory): a new one next
                self.close()
                raise

    async def render_recording(
        self,
        recording: Path,
        ticker: str,
        *,
        label: str,
        markers: Iterable[Marker] = (),
        levels: Iterable[Threshold] = (),
        sessions: Mapping[str, MinuteRange] = DEFAULT_SESSIONS,
        locale: Locale = "ko",
    ) -> bytes:
        """A past day's PNG from its recording; NoData when the stock is not in it."""
        work = partial(
            draw_recording_png,
            recording,
            ticker,
            tuple(markers),
            label,
            tuple(levels),
            dict(sessions),
            locale,
        )
        return await self._run(work)

    async def render_top(
        self,
        stocks: Iterable[tuple[str, DayFigures]],
        *,
        day: str,
        sessions: Mapping[str, MinuteRange] = DEFAULT_SESSIONS,
        locale: Locale = "ko",
    ) -> bytes:
        """Several stocks' net-buy curves in one picture (the digest's)."""
        work = partial(draw_top_png, tuple(stocks), day, dict(sessions), locale)
        return await self._run(work)

    def close(self) -> None:
        """End the worker (waits for a chart being drawn)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
