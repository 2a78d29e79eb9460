"""Charts drawn in the worker process: the PNG comes back, NoData comes back as NoData."""

from __future__ import annotations

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
