"""`pgmbot replay`: recorded frames through the same engine the live bot runs.

Input lines are raw KIS data frames or ``ISO-8601-timestamp<TAB>frame`` (as `run --record`
writes them). The trading date is the timestamp's KST date, or ``--date`` (default: today, KST).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from bot.alerts import Alert
from bot.config import command_rules
from bot.engine.evaluate import Engine
from bot.kis.recording import open_text
from bot.ticks import KST, FrameError, Tick, envelope, parse_records, today_kst

Report = Callable[[str, int, str], None]  # (source, line number, problem)
PROGRESS_EVERY = 200_000  # lines between two progress lines on a terminal
BATCH = 256  # frames parsed before the engine runs them


@dataclass
class ReplayStats:
    lines: int = 0
    frames: int = 0
    ticks: int = 0
    control: int = 0  # JSON control messages (acks, PINGPONG): not data, skipped quietly
    bad: int = 0  # malformed lines or records, reported and skipped
    undated: int = 0  # data lines without a timestamp: dated by --date (or today)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, ticker) -> fired
    resolved: Counter[tuple[str, str]] = field(default_factory=Counter)  # ... -> resolved events


class _Days:
    """The trading date of a timestamp, cached by its text (lines of a day share a prefix)."""

    def __init__(self) -> None:
        self._cache: dict[str, date] = {}

    def of(self, stamp: str) -> date:
        key = stamp[:10] if stamp.endswith("+09:00") else stamp
        day = self._cache.get(key)
        if day is None:
            try:
                day = (
                    datetime.fromisoformat(stamp).astimezone(KST).date()
                    if key == stamp
                    else (date.fromisoformat(key))
                )
            except ValueError:
                raise ValueError(
                    f"bad timestamp {stamp[:40]!r} (expected ISO 8601, "
                    "e.g. 2026-11-20T09:00:01+09:00)"
                ) from None
            self._cache[key] = day
        return day


def replay_lines(
    lines: Iterable[str],
    engine: Engine,
    default_day: date,
    stats: ReplayStats,
    report: Report,
    source: str = "-",
    progress: Callable[[ReplayStats], None] | None = None,
    progress_every: int = PROGRESS_EVERY,
) -> Iterator[Alert]:
    """Yield the alerts of every tick of ``lines``, in firing order; report bad lines."""
    day_of = _Days().of
    on_ticks = engine.on_ticks
    errors: list[FrameError] = []
    counts = {"fired": stats.alerts, "resolved": stats.resolved}
    # Counted in locals (the hot path: a few attribute writes per line cost more than the
    # engine's check of a rule), written to ``stats`` before each progress line and at the end.
    number = frames = ticks = control = undated = 0
    dated, day = "", default_day  # the date part of the last KST stamp, and its trading date
    start = (stats.lines, stats.frames, stats.ticks, stats.control, stats.undated)

    def counted() -> None:
        stats.lines, stats.frames, stats.ticks, stats.control, stats.undated = (
            a + b for a, b in zip(start, (number, frames, ticks, control, undated), strict=True)
        )

    # Frames are parsed a batch at a time, then evaluated: the interpreter runs each of the two
    # large bodies of code many times in a row (a tenth quicker than one frame of each in turn).
    batch: list[list[Tick]] = []

    def evaluated(frames: list[list[Tick]]) -> Iterator[Alert]:
        for parsed in frames:
            for alert in on_ticks(parsed):
                counts[alert.kind][alert.rule, alert.ticker] += 1
                yield alert
        frames.clear()

    try:
        for number, line in enumerate(lines, start=1):
            if progress is not None and number % progress_every == 0:
                yield from evaluated(batch)  # the lines so far, all of them counted
                counted()
                progress(stats)
            stamp, tab, frame = line.rstrip("\r\n").partition("\t")
            if not tab:
                frame, stamp = stamp, ""
            if not frame or frame[0] == "{":
                control += frame[:1] == "{"  # acks and PINGPONG: not data
                continue
            try:
                if stamp[:10] != dated or not stamp.endswith("+09:00"):  # a line of another day
                    day = day_of(stamp) if stamp else default_day
                    dated = stamp[:10] if stamp.endswith("+09:00") else ""
                encrypted, _tr_id, records, payload = envelope(frame)
                if encrypted:
                    raise FrameError(
                        "encrypted", "encrypted frame (recordings hold decrypted frames)"
                    )
                parsed = parse_records(payload, records, day, errors)
            except (FrameError, ValueError) as exc:
                stats.bad += 1
                report(source, number, str(exc))
                continue
            if errors:
                stats.bad += len(errors)
                for error in errors:
                    report(source, number, str(error))
                errors.clear()
            frames += 1
            undated += not stamp
            ticks += len(parsed)
            batch.append(parsed)
            if len(batch) == BATCH:
                yield from evaluated(batch)
        yield from evaluated(batch)
    finally:
        counted()


def _progress(stats: ReplayStats, stream: TextIO = sys.stderr) -> None:
    alerts, resolved = sum(stats.alerts.values()), sum(stats.resolved.values())
    stream.write(
        f"\r{stats.lines:,} lines  {stats.ticks:,} ticks  {alerts:,} alerts  "
        f"{resolved:,} resolved "
    )
    stream.flush()


def _summary(stats: ReplayStats, rules: list[str], out: TextIO) -> None:
    resolved = sum(stats.resolved.values())
    out.write(
        f"\n{stats.lines:,} lines, {stats.frames:,} frames, {stats.ticks:,} ticks, "
        f"{sum(stats.alerts.values()):,} alerts, {resolved:,} resolved, "
        f"{stats.bad:,} malformed skipped\n"
    )
    if stats.alerts:
        width = max(len("rule"), *(len(rule) for rule, _ in stats.alerts))
        out.write(f"\n{'rule':<{width}}  ticker  alerts" + ("  resolved" if resolved else ""))
        out.write("\n")
        for (rule, ticker), count in sorted(stats.alerts.items()):
            ended = f"  {stats.resolved[rule, ticker]:>8}" if resolved else ""
            out.write(f"{rule:<{width}}  {ticker}  {count:>6}{ended}\n")
    fired = {rule for rule, _ in stats.alerts}
    silent = [rule for rule in rules if rule not in fired]
    if silent:
        out.write(f"\nno alerts: {', '.join(silent)}\n")


def _shown(alert: Alert, as_json: bool) -> str:
    if as_json:
        return json.dumps(alert.as_json(), ensure_ascii=False) + "\n"
    message = " ".join(alert.message.split())  # one line
    kind = " resolved" if alert.kind == "resolved" else ""
    return f"{alert.time:%Y-%m-%d %H:%M:%S} {alert.ticker} {alert.rule}{kind}  {message}\n"


#: What reading an input can raise: the OS, and gzip on a file cut short or damaged.
_READ_ERRORS = (OSError, EOFError, zlib.error)


def _read_problem(exc: Exception) -> str:
    if isinstance(exc, EOFError):  # gzip's word for a file cut short
        return "compressed data ends early (truncated file?)"
    if isinstance(exc, zlib.error):
        return f"damaged compressed data ({exc})"
    return getattr(exc, "strerror", None) or str(exc)


def _replay_file(
    name: str,
    alerts_of: Callable[[Iterable[str], str], Iterator[Alert]],
    write: Callable[[Alert], None],
) -> str | None:
    """Replay one input, writing its alerts; the problem if it could not be read to its end.
    Errors of the output are not the input's: they propagate."""
    try:
        handle = open_text(name)
    except OSError as exc:
        return _read_problem(exc)
    with handle:
        alerts = alerts_of(handle, name)
        while True:
            try:
                alert = next(alerts)
            except StopIteration:
                return None
            except _READ_ERRORS as exc:
                return _read_problem(exc)
            write(alert)


def _unusable_inputs(names: list[str]) -> list[str]:
    """What is wrong with the inputs, before any is read. Not regular files are fine
    (``<(cmd)``, a FIFO); stdin can be read only once."""
    problems = []
    for name in (name for name in names if name != "-"):
        if not Path(name).exists():
            problems.append(f"{name}: no such file")
        elif Path(name).is_dir():
            problems.append(f"{name}: is a directory")
    if names.count("-") > 1:
        problems.append("-: standard input can be read only once")
    return problems


def replay_command(args: argparse.Namespace) -> int:
    """`pgmbot replay FILE... --rules PATH [--date YYYY-MM-DD] [--json]`."""
    ruleset = command_rules(args.rules, args.config)
    if ruleset is None:
        return 2
    engine = Engine(ruleset)
    try:
        default_day = date.fromisoformat(args.date) if args.date else today_kst()
    except ValueError:
        print(f"--date {args.date!r}: write the trading date as YYYY-MM-DD", file=sys.stderr)
        return 2
    unusable = _unusable_inputs(args.files)
    if unusable:
        print(*unusable, sep="\n", file=sys.stderr)
        return 2
    out, err = sys.stdout, sys.stderr
    show_progress = err.isatty()

    def report(source: str, number: int, problem: str) -> None:
        if show_progress:
            err.write("\r")
        err.write(f"{source}:{number}: skipped: {problem}\n")

    stats = ReplayStats()
    progress = _progress if show_progress else None
    every = max(1, args.progress_every or PROGRESS_EVERY)

    def alerts_of(lines: Iterable[str], name: str) -> Iterator[Alert]:
        return replay_lines(lines, engine, default_day, stats, report, name, progress, every)

    def write(alert: Alert) -> None:
        out.write(_shown(alert, args.json))

    unread = 0  # inputs that could not be read to their end
    try:
        for name in args.files:
            problem = _replay_file(name, alerts_of, write)
            if problem is not None:
                unread += 1
                err.write(f"{name}: cannot read further: {problem}\n")
        if show_progress:
            _progress(stats, err)
            err.write("\n")
        if not args.json:
            _summary(stats, [rule.id for rule in engine.ruleset.enabled], out)
        out.flush()
    except BrokenPipeError:
        raise  # the reader stopped (| head): main() ends quietly
    except OSError as exc:
        err.write(f"cannot write the output: {exc.strerror or exc}\n")
        return 2
    if stats.undated and not args.date:
        err.write(
            f"note: {stats.undated:,} lines without a timestamp were taken as of today, "
            f"{default_day} (KST); give --date for another day\n"
        )
    if args.json and stats.bad:
        err.write(f"{stats.bad:,} malformed lines or records skipped\n")
    if unread:
        return 2
    if stats.bad and not stats.frames:
        err.write("no data frame in the input, only malformed lines: is it a KIS recording?\n")
        return 1
    return 0
