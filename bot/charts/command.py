"""`pgmbot chart FILE --ticker CODE [--out day.png] [--rules PATH]`: a recorded day's chart.

The same picture as the bot's /chart, from a recording (``DAY.tsv`` or ``DAY.tsv.gz``), for
people who study past days. With ``--rules``, the rules are run over the stock's ticks (as
`pgmbot replay` runs them) to mark their alerts and draw their thresholds.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

from bot.charts.levels import NoData, Threshold, thresholds
from bot.charts.render import render_day
from bot.charts.series import DayFigures, Series
from bot.checkpoint import recorded_ticks
from bot.codes import stock_code
from bot.config import command_rules
from bot.engine.evaluate import Engine
from bot.engine.rule_types import RuleSet


def chart_of_recording(
    recording: Path, ticker: str, ruleset: RuleSet | None = None
) -> tuple[DayFigures | None, list[Threshold]]:
    """One stock's day from a recording, with the alerts and thresholds of ``ruleset``."""
    series = Series()
    engine = Engine(ruleset) if ruleset is not None else None
    for _received, ticks in recorded_ticks(recording, containing=ticker):
        mine = [tick for tick in ticks if tick.ticker == ticker]
        if mine:
            series.on_ticks(mine)
            if engine is not None:
                series.on_alerts(engine.on_ticks(mine))
    levels = thresholds(ruleset.enabled, ticker) if ruleset is not None else []
    return series.figures(ticker), levels


def chart_command(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        ticker = stock_code(args.ticker)
    except ValueError:
        print(
            f"--ticker {args.ticker!r}: give a 6-character stock code such as 005930",
            file=sys.stderr,
        )
        return 2
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 2
    ruleset = None
    if args.rules is not None:
        ruleset = command_rules(args.rules, args.config)
        if ruleset is None:
            return 2
    try:
        figures, levels = chart_of_recording(path, ticker, ruleset)
    except (OSError, EOFError, zlib.error) as exc:
        print(f"{path}: cannot read it: {exc}", file=sys.stderr)
        return 2
    if figures is None:
        print(f"{path}: no program trading of {ticker} in it", file=sys.stderr)
        return 1
    out = Path(args.out or f"{ticker}-{figures.day.isoformat()}.png")
    try:
        out.write_bytes(render_day(figures, label=ticker, levels=levels))
    except NoData as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{out}: cannot write it: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{out}: {len(figures)} minutes, {len(figures.alerts)} alerts of {ticker}")
    return 0
