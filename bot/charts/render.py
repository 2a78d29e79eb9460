"""A stock's day as a PNG: program net buying in 억 above, the whole net-bid remainder below.

Drawn with matplotlib's object API (``Figure`` on an Agg canvas, never pyplot and its global
figures), so charts can be drawn in worker threads while the event loop runs. Korean text uses
NanumGothic from the ``koreanize-matplotlib`` wheel, loaded from the package's folder without
importing it (its import changes matplotlib's global settings); DejaVu Sans, which matplotlib
ships, stands in for the few glyphs NanumGothic lacks.

    top panel      cumulative program net-buy value (NTBY_TR_PBMN) in 억: red above zero, blue
                   below (the Korean convention); buy and sell value as thin lines (right axis);
                   thresholds of the stock's threshold rules as dashed lines; alerts as markers
                   labelled with their rule; the sessions shaded
    lower panel    WHOL_NTBY_QTY (전체순매수호가잔량) in 주
"""

from __future__ import annotations

import importlib.util
import io
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from bot.charts.levels import NoData, Threshold, thresholds
from bot.charts.series import DayFigures
from bot.market.sessions import DEFAULT_SESSIONS, MinuteRange
from bot.messages import KOREAN, Catalogue

WIDTH, HEIGHT, DPI = 1000, 640, 100  # pixels of the PNG
FONT_FILES = ("NanumGothic.ttf", "NanumGothicBold.ttf")  # regular, and bold for the title
FAMILIES = ["NanumGothic", "DejaVu Sans"]  # the second for glyphs the first lacks
EOK = 100_000_000
RED, BLUE, GREY = "#d62728", "#1f5fbf", "#555555"
MAX_LABELS = 30  # alert markers labelled with their rule; beyond, markers only
#: The columns drawn, and on which axis a threshold of a rule on them goes.
NET, BUY, SELL, WHOLE = "NTBY_TR_PBMN", "SHNU_TR_PBMN", "SELN_TR_PBMN", "WHOL_NTBY_QTY"
_SHADES = {"pre": "#eeeeee", "regular": "#ffffff", "after": "#e6eef7"}

_font_lock = threading.Lock()
_font_loaded = False


def font_path(name: str = FONT_FILES[0]) -> Path:
    """A NanumGothic file of the koreanize-matplotlib package (not imported)."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("koreanize-matplotlib is not installed (pip install pgmbot)")
    return Path(next(iter(spec.submodule_search_locations))) / "fonts" / name


def _load_font() -> None:
    """Make NanumGothic known to matplotlib's font manager, once."""
    global _font_loaded
    with _font_lock:
        if not _font_loaded:
            for name in FONT_FILES:
                font_manager.fontManager.addfont(str(font_path(name)))
            _font_loaded = True


def _hhmm(minute: float, _position: object = None) -> str:
    whole = round(minute)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _eok(value: float, _position: object = None) -> str:
    """An axis tick in 억: ``12``, ``2.5``, ``-5``, with an ASCII minus (every font has it;
    matplotlib's own is U+2212)."""
    size = abs(value)
    text = f"{size:,.0f}" if size >= 10 else f"{size:,.1f}".rstrip("0").rstrip(".")
    return f"-{text}" if value < 0 and text != "0" else text


def _shares(value: float, _position: object = None) -> str:
    text = f"{abs(value):,.0f}"
    return f"-{text}" if value < 0 and text != "0" else text


def render_day(
    figures: DayFigures,
    *,
    label: str,
    levels: Iterable[Threshold] = (),
    sessions: Mapping[str, MinuteRange] = DEFAULT_SESSIONS,
    say: Catalogue = KOREAN,
) -> bytes:
    """The PNG of one stock's day (``label`` names it, e.g. 삼성전자(005930)). Raises NoData for
    a day without figures. Thread-safe: call it from a worker thread."""
    figure = draw_day(figures, label=label, levels=levels, sessions=sessions, say=say)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return out.getvalue()


def draw_day(
    figures: DayFigures,
    *,
    label: str,
    levels: Iterable[Threshold] = (),
    sessions: Mapping[str, MinuteRange] = DEFAULT_SESSIONS,
    say: Catalogue = KOREAN,
) -> Figure:
    """The chart as a matplotlib Figure, not drawn yet (``render_day`` makes the PNG)."""
    if not len(figures):
        raise NoData(say("charts.no_data", stock=label, day=figures.day.isoformat()))
    _load_font()
    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    top, low = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.08}
    )
    minutes = np.asarray(figures.minutes, dtype=float)
    first = min(minutes[0], *(r.first for r in sessions.values()))
    last = max(minutes[-1], *(r.last + 1 for r in sessions.values()))
    levels = list(levels)
    right = _draw_values(top, figures, minutes, say)
    _draw_levels(top, right, low, levels)
    _draw_alerts(top, figures, minutes)
    _draw_whole(low, figures, minutes, say)
    for axes in (top, low):
        _shade_sessions(axes, sessions, say, labelled=axes is top)
        axes.set_xlim(first, last)
        axes.grid(True, color="#dddddd", linewidth=0.5)
        axes.tick_params(labelfontfamily=FAMILIES, labelsize=8)
    right.tick_params(labelfontfamily=FAMILIES, labelsize=8)
    low.xaxis.set_major_locator(MultipleLocator(60))
    low.xaxis.set_major_formatter(FuncFormatter(_hhmm))
    title = say("charts.title", stock=label, day=figures.day.isoformat())
    # NanumGothicBold is of weight 600: asked for as such, no font lookup warns.
    figure.suptitle(title, fontfamily="NanumGothic", fontsize=13, fontweight=600)
    top.legend(
        handles=[*top.get_lines()[:1], *right.get_lines()[:2]],
        loc="upper left",
        prop={"family": FAMILIES, "size": 8},
        framealpha=0.8,
    )
    figure.subplots_adjust(left=0.08, right=0.92, top=0.92, bottom=0.07)
    return figure


def render_top(
    stocks: Sequence[tuple[str, DayFigures]],
    *,
    day: str,
    sessions: Mapping[str, MinuteRange] = DEFAULT_SESSIONS,
    say: Catalogue = KOREAN,
) -> bytes:
    """One picture of several stocks' net-buy curves (the digest's top stocks), labelled by
    ``stocks``' first items. Raises NoData when none has a figure."""
    stocks = [(label, figures) for label, figures in stocks if len(figures)]
    if not stocks:
        raise NoData(say("charts.no_data", stock="-", day=day))
    _load_font()
    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    first = min(min(f.minutes[0] for _, f in stocks), *(r.first for r in sessions.values()))
    last = max(max(f.minutes[-1] for _, f in stocks), *(r.last + 1 for r in sessions.values()))
    for label, figures in stocks:
        net = np.asarray(figures.columns[NET], dtype=float) / EOK
        dot = "o" if len(net) == 1 else None
        axes.plot(np.asarray(figures.minutes, dtype=float), net, linewidth=1.2, label=label,
                  marker=dot)  # fmt: skip
    axes.axhline(0, color=GREY, linewidth=0.8)
    _shade_sessions(axes, sessions, say, labelled=True)
    axes.set_xlim(first, last)
    axes.grid(True, color="#dddddd", linewidth=0.5)
    axes.tick_params(labelfontfamily=FAMILIES, labelsize=8)
    axes.xaxis.set_major_locator(MultipleLocator(60))
    axes.xaxis.set_major_formatter(FuncFormatter(_hhmm))
    axes.yaxis.set_major_formatter(FuncFormatter(_eok))
    axes.set_ylabel(say("charts.axis_net"), fontfamily=FAMILIES, fontsize=9)
    axes.legend(loc="upper left", prop={"family": FAMILIES, "size": 8}, framealpha=0.8)
    figure.suptitle(say("charts.top_title", day=day), fontfamily="NanumGothic", fontsize=13,
                    fontweight=600)  # fmt: skip
    figure.subplots_adjust(left=0.08, right=0.97, top=0.92, bottom=0.07)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return out.getvalue()


def _draw_values(top: Axes, figures: DayFigures, minutes: np.ndarray, say: Catalogue) -> Axes:
    """Net buying filled red/blue about zero; buy and sell on a right axis. Returns it."""
    net = np.asarray(figures.columns[NET], dtype=float) / EOK
    dot = "o" if len(net) == 1 else None  # one minute: a point, not an invisible line
    top.plot(minutes, net, color="#222222", linewidth=1.2, label=say("charts.net"), marker=dot)
    top.fill_between(minutes, net, 0, where=net >= 0, color=RED, alpha=0.35, interpolate=True)
    top.fill_between(minutes, net, 0, where=net <= 0, color=BLUE, alpha=0.35, interpolate=True)
    top.axhline(0, color=GREY, linewidth=0.8)
    top.set_ylabel(say("charts.axis_net"), fontfamily=FAMILIES, fontsize=9)
    top.yaxis.set_major_formatter(FuncFormatter(_eok))
    right = top.twinx()
    for field, color, key in ((BUY, RED, "charts.buy"), (SELL, BLUE, "charts.sell")):
        values = np.asarray(figures.columns[field], dtype=float) / EOK
        right.plot(minutes, values, color=color, linewidth=0.6, label=say(key), marker=dot)
    right.set_ylabel(say("charts.axis_trade"), fontfamily=FAMILIES, fontsize=9)
    right.yaxis.set_major_formatter(FuncFormatter(_eok))
    right.set_ylim(bottom=0)
    return right


def _draw_levels(top: Axes, right: Axes, low: Axes, levels: list[Threshold]) -> None:
    """Each threshold as a dashed line on the axis of its column (others are not drawn)."""
    for level in levels:
        axes, scale = {NET: (top, EOK), BUY: (right, EOK), SELL: (right, EOK)}.get(
            level.field, (low, 1) if level.field == WHOLE else (None, 1)
        )
        if axes is None:
            continue
        y = level.value / scale
        axes.axhline(y, color="#7f3fbf", linestyle="--", linewidth=0.9, gid=f"level:{level.rule}")
        axes.annotate(
            level.rule,
            (1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 2),
            textcoords="offset points",
            ha="right",
            fontsize=7,
            color="#7f3fbf",
            fontfamily=FAMILIES,
        )


def _draw_alerts(top: Axes, figures: DayFigures, minutes: np.ndarray) -> None:
    """The day's alerts on the net curve, at their minute; the first ones named by rule."""
    if not figures.alerts:
        return
    xs = [marker.seconds / 60 for marker in figures.alerts]
    ys = [
        (figures.at_or_before(NET, marker.seconds // 60) or figures.columns[NET][0]) / EOK
        for marker in figures.alerts
    ]
    top.scatter(xs, ys, s=28, marker="v", color="#ff7f0e", zorder=5, gid="alerts")
    for marker, x, y in list(zip(figures.alerts, xs, ys, strict=True))[:MAX_LABELS]:
        top.annotate(
            marker.rule,
            (x, y),
            xytext=(3, 6),
            textcoords="offset points",
            fontsize=7,
            color="#a0522d",
            fontfamily=FAMILIES,
            gid=f"alert:{marker.rule}",
        )


def _draw_whole(low: Axes, figures: DayFigures, minutes: np.ndarray, say: Catalogue) -> None:
    whole = np.asarray(figures.columns[WHOLE], dtype=float)
    dot = "o" if len(whole) == 1 else None
    low.plot(minutes, whole, color="#2f4f4f", linewidth=0.9, marker=dot)
    low.fill_between(minutes, whole, 0, where=whole >= 0, color=RED, alpha=0.2, interpolate=True)
    low.fill_between(minutes, whole, 0, where=whole <= 0, color=BLUE, alpha=0.2, interpolate=True)
    low.axhline(0, color=GREY, linewidth=0.6)
    low.set_ylabel(say("charts.axis_whole"), fontfamily=FAMILIES, fontsize=9)
    low.yaxis.set_major_formatter(FuncFormatter(_shares))


def _shade_sessions(
    axes: Axes, sessions: Mapping[str, MinuteRange], say: Catalogue, *, labelled: bool
) -> None:
    for name, minutes in sessions.items():
        axes.axvspan(
            minutes.first,
            minutes.last + 1,
            color=_SHADES.get(name, "#f4f4f4"),
            zorder=0,
            gid=f"session:{name}",
        )
        if labelled:
            axes.annotate(
                say(f"charts.session.{name}") if name in _SHADES else name,
                ((minutes.first + minutes.last + 1) / 2, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -10),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color=GREY,
                fontfamily=FAMILIES,
            )


__all__ = [
    "NoData",
    "Threshold",
    "draw_day",
    "font_path",
    "render_day",
    "render_top",
    "thresholds",
]
