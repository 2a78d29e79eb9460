"""The day chart: a valid PNG of the expected size, Korean text in a font that has it, and the
alerts and thresholds drawn (asserted on the figure's artists, not on pixels)."""

from __future__ import annotations

import random
import struct
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.lines import Line2D
from matplotlib.text import Annotation

from bot.charts.render import (
    DPI,
    HEIGHT,
    WIDTH,
    NoData,
    Threshold,
    draw_day,
    font_path,
    render_day,
    render_top,
    thresholds,
)
from bot.charts.series import DayFigures, Marker, Series
from bot.engine.rule_types import RULE
from bot.messages import Catalogue
from bot.ticks import Tick

# Any glyph missing from the fonts (a Korean text drawn as boxes) fails the test.
pytestmark = [
    pytest.mark.filterwarnings("error:.*missing from font"),
    pytest.mark.filterwarnings("error:Glyph .* missing"),
    pytest.mark.filterwarnings("error::UserWarning:matplotlib"),
]

DAY = date(2026, 11, 23)
LABEL = "삼성전자(005930)"


def full_day(seed: int = 1) -> DayFigures:
    """08:00-20:00, a tick every minute: the longest day the bot records."""
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
    return figures


def one_tick() -> DayFigures:
    series = Series()
    series.on_ticks([Tick("005930", DAY, "093000", 34200, 1, 2, 3, 4, 5, -3 * 10**9, 7, 8, -9)])
    figures = series.figures("005930")
    assert figures is not None
    return figures


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82")
    return width, height


def test_a_full_day_renders_a_png_of_the_expected_size() -> None:
    assert png_size(render_day(full_day(), label=LABEL)) == (WIDTH, HEIGHT)


def test_a_day_of_one_tick_renders_too() -> None:
    figures = one_tick()
    assert png_size(render_day(figures, label=LABEL)) == (WIDTH, HEIGHT)
    figure = draw_day(figures, label=LABEL)
    net = figure.axes[0].get_lines()[0]
    assert net.get_marker() == "o"  # a single minute shows as a point


def test_a_day_without_figures_is_an_error_that_says_so() -> None:
    empty = DayFigures("005930", DAY, (), {})
    with pytest.raises(NoData, match=r"005930.*2026-11-23"):
        render_day(empty, label=LABEL)


def test_korean_text_is_drawn_in_nanum_gothic_in_both_languages() -> None:
    assert font_path().is_file()
    figure = draw_day(full_day(), label=LABEL)
    title = figure.get_suptitle()
    assert title == f"{LABEL} 프로그램 매매 · 2026-11-23"
    assert figure.axes[0].get_ylabel() == "순매수 대금 (억)"
    assert figure.axes[1].get_ylabel() == "전체순매수호가잔량 (주)"
    assert findfont(FontProperties(family="NanumGothic")).endswith("NanumGothic.ttf")
    for say in (Catalogue("ko"), Catalogue("en")):  # drawing it warns of any missing glyph
        png_size(render_day(full_day(), label=LABEL, say=say))


def test_alerts_are_markers_named_by_their_rule_and_thresholds_dashed_lines() -> None:
    markers = (Marker(600 * 60, "net-buy-100eok", 1), Marker(700 * 60 + 5, "whole-flip", 3))
    figures = replace(full_day(), alerts=markers)
    levels = [
        Threshold("net-buy-100eok", "NTBY_TR_PBMN", 100e8),
        Threshold("bid-high", "WHOL_NTBY_QTY", 50_000),
        Threshold("volume", "NTBY_CNQN", 10),  # not on the chart: not drawn
    ]
    figure = draw_day(figures, label=LABEL, levels=levels)
    top, low = figure.axes[0], figure.axes[1]
    (scatter,) = [c for c in top.collections if c.get_gid() == "alerts"]
    assert isinstance(scatter, PathCollection)
    assert np.asarray(scatter.get_offsets())[:, 0].tolist() == [600, 700 + 5 / 60]
    labels = [a.get_text() for a in top.texts if isinstance(a, Annotation)]
    assert "net-buy-100eok" in labels and "whole-flip" in labels
    dashed = {
        line.get_gid(): (line.get_ydata()[0], axes)  # type: ignore[index]
        for axes in figure.axes
        for line in axes.get_lines()
        if isinstance(line, Line2D) and str(line.get_gid()).startswith("level:")
    }
    assert dashed == {"level:net-buy-100eok": (100.0, top), "level:bid-high": (50_000, low)}
    sessions = {p.get_gid() for p in top.patches}
    assert {"session:pre", "session:regular", "session:after"} <= sessions


def test_thresholds_are_read_from_the_rules_that_apply_to_the_stock() -> None:
    rules = [
        RULE.validate_python(fields)
        for fields in (
            {"id": "up", "type": "threshold", "field": "NTBY_TR_PBMN", "crosses_above": "100억"},
            {"id": "down", "type": "threshold", "field": "NTBY_TR_PBMN", "crosses_below": -5e9},
            {
                "id": "other",
                "type": "threshold",
                "field": "NTBY_TR_PBMN",
                "above": 1,
                "tickers": ["000660"],
            },
            {
                "id": "off",
                "type": "threshold",
                "field": "NTBY_TR_PBMN",
                "above": 1,
                "enabled": False,
            },
            {"id": "flip", "type": "sign_flip", "field": "WHOL_NTBY_QTY", "min_abs": 5000},
        )
    ]
    assert thresholds(rules, "005930") == [
        Threshold("up", "NTBY_TR_PBMN", 10_000_000_000),
        Threshold("down", "NTBY_TR_PBMN", -5e9),
    ]
    assert [t.rule for t in thresholds(rules, "000660")] == ["up", "down", "other"]
    assert DPI == 100


def test_the_digest_picture_draws_one_curve_a_stock() -> None:
    stocks = [("삼성전자(005930)", full_day(1)), ("SK하이닉스(000660)", full_day(2))]
    png = render_top([*stocks, ("empty", DayFigures("1", DAY, (), {}))], day="2026-11-23")
    assert png_size(png) == (WIDTH, HEIGHT)
    with pytest.raises(NoData):
        render_top([], day="2026-11-23")
