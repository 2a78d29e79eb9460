"""/now, /top and /chart replies as Telegram HTML, from what the chart service returns."""

from __future__ import annotations

from collections.abc import Sequence

from bot.amounts import format_field
from bot.charts.series import DayFigures
from bot.charts.service import Chart, Ranked
from bot.messages import Catalogue
from bot.notify.format import esc

NET, NET_QTY = "NTBY_TR_PBMN", "NTBY_CNQN"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def signed(field: str, change: int | None) -> str:
    """``+2.1억``, ``-1,000주``, or ``–`` when there is no history that long yet."""
    if change is None:
        return "–"
    return ("+" if change > 0 else "") + format_field(field, change)


def _moved(figures: DayFigures, field: str, say: Catalogue) -> str:
    return say(
        "charts.now.moved",
        five=signed(field, figures.change(field, 5)),
        thirty=signed(field, figures.change(field, 30)),
    )


def now(label: str, figures: DayFigures, say: Catalogue) -> list[str]:
    """The stock's latest figures, with the change over 5 and 30 minutes where it matters."""
    value = figures.last

    def amount(field: str) -> str:
        return esc(format_field(field, value(field)))

    head = say("charts.now.head", stock=esc(label), time=_hhmm(figures.minutes[-1]))
    return [
        f"<b>{head}</b>",
        say("charts.now.net_value", value=amount(NET), moved=esc(_moved(figures, NET, say))),
        say("charts.now.net_qty", value=amount(NET_QTY), moved=esc(_moved(figures, NET_QTY, say))),
        say("charts.now.trade", buy=amount("SHNU_TR_PBMN"), sell=amount("SELN_TR_PBMN")),
        say("charts.now.book", buy=amount("SHNU_RSQN"), sell=amount("SELN_RSQN")),
        say(
            "charts.now.whole",
            value=amount("WHOL_NTBY_QTY"),
            moved=esc(_moved(figures, "WHOL_NTBY_QTY", say)),
        ),
    ]


def top(rows: Sequence[Ranked], say: Catalogue) -> list[str]:
    """The chat's stocks by today's net-buy value, with the last 30 minutes' change."""
    if not rows:
        return [say("charts.top.empty")]
    lines = [f"<b>{say('charts.top.head')}</b>"]
    for place, row in enumerate(rows, start=1):
        if row.figures is None:
            lines.append(say("charts.top.no_data", place=place, stock=esc(row.label)))
            continue
        lines.append(
            say(
                "charts.top.row",
                place=place,
                stock=esc(row.label),
                value=esc(format_field(NET, row.figures.last(NET))),
                thirty=esc(signed(NET, row.figures.change(NET, 30))),
            )
        )
    return lines


def caption(chart: Chart, say: Catalogue) -> str:
    return say("charts.caption", stock=esc(chart.label), day=chart.day.isoformat())
