"""Today's program figures per watched stock, one row a minute, and the day's alerts.

A row is the last value of each numeric column in its minute (the columns are day-cumulative, so
the last value is the minute's close). The live bot feeds the ``Series`` from the pipeline, on the
path of the engine (``on_ticks``, ``on_alerts``); at a restart the day's recording is read again
in a worker thread (``read_series``, the rebuild's reading of it) and the rows the live feed made
meanwhile are laid over it (``adopt``), so a restarted bot holds what a bot that never stopped
would hold. Past days come from the recordings on disk (``DAY.tsv`` or ``DAY.tsv.gz``).

Bounded: at most one row a minute a stock (1,440 a day) and ``MAX_ALERTS`` markers a stock; a new
trading day starts empty. Rows are packed in ``array`` columns (8 bytes a value): 205 stocks over
a 12-hour day take about 9 MB. The minute still being filled holds its last Tick itself, so a tick
costs a comparison and an assignment on the hot path.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from bot.alerts import Alert
from bot.checkpoint import recorded_ticks
from bot.kis.recording import day_path
from bot.ticks import NUMERIC_FIELDS, Tick

MAX_ALERTS = 1000  # markers kept per stock and day (a rule firing every tick must not grow it)
MINUTES_A_DAY = 24 * 60
_FIRST_NUMERIC = 4  # index in Tick of SELN_CNQN


@dataclass(frozen=True, slots=True)
class Marker:
    """An alert on the chart: when (seconds after midnight KST), which rule, its value."""

    seconds: int
    rule: str
    value: int
    kind: str = "fired"
    seq: int = 0


class AlertLike(Protocol):
    """An alert as the engine emits it or the store keeps it (``kind`` when it has one)."""

    @property
    def rule(self) -> str: ...
    @property
    def ticker(self) -> str: ...
    @property
    def tick(self) -> Tick: ...
    @property
    def value(self) -> int: ...
    @property
    def seq(self) -> int: ...


@dataclass(frozen=True)
class DayFigures:
    """One stock's day, copied out of the series (safe to hand to a worker thread)."""

    ticker: str
    day: date
    minutes: tuple[int, ...]  # minute of the day (0 = 00:00), ascending
    columns: Mapping[str, tuple[int, ...]]  # KIS column name -> the value of each minute
    alerts: tuple[Marker, ...] = ()

    def __len__(self) -> int:
        return len(self.minutes)

    def last(self, field: str) -> int:
        return self.columns[field][-1]

    def at_or_before(self, field: str, minute: int) -> int | None:
        """The column's value in the last row at or before ``minute``, None before the first."""
        index = bisect.bisect_right(self.minutes, minute) - 1
        return self.columns[field][index] if index >= 0 else None

    def change(self, field: str, minutes: int) -> int | None:
        """How much the column moved over the last ``minutes`` minutes (None: not that long
        a history yet)."""
        if not self.minutes:
            return None
        before = self.at_or_before(field, self.minutes[-1] - minutes)
        return None if before is None else self.last(field) - before


class StockDay:
    """One stock's rows of one day: packed columns, plus the minute still being filled."""

    __slots__ = ("_alert_keys", "_columns", "_last", "_minute", "_minutes", "alerts", "ticker")

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self._minutes = array("H")  # packed rows' minutes, ascending
        self._columns = [array("q") for _ in NUMERIC_FIELDS]
        self._minute = -1  # the minute being filled (its row is _last), -1 before any tick
        self._last: Tick | None = None
        self.alerts: list[Marker] = []
        self._alert_keys: set[tuple[str, int, int, str]] = set()

    def add(self, tick: Tick) -> None:
        minute = tick.seconds // 60
        if minute == self._minute:
            self._last = tick
        elif minute > self._minute:
            if self._last is not None:
                self._pack(self._minute, self._last[_FIRST_NUMERIC:])
            self._minute, self._last = minute, tick
        else:  # a late tick of an earlier minute: its row takes it
            self._put(minute, tick[_FIRST_NUMERIC:])

    def _pack(self, minute: int, values: Sequence[object]) -> None:
        self._minutes.append(minute)
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)  # type: ignore[arg-type]  # the numeric columns of a Tick

    def _put(self, minute: int, values: Sequence[object]) -> None:
        index = bisect.bisect_left(self._minutes, minute)
        if index < len(self._minutes) and self._minutes[index] == minute:
            for column, value in zip(self._columns, values, strict=True):
                column[index] = value  # type: ignore[call-overload]
            return
        self._minutes.insert(index, minute)
        for column, value in zip(self._columns, values, strict=True):
            column.insert(index, value)  # type: ignore[arg-type]

    def add_alert(self, marker: Marker) -> None:
        key = (marker.rule, marker.seconds, marker.seq, marker.kind)
        if key in self._alert_keys or len(self.alerts) >= MAX_ALERTS:
            return
        self._alert_keys.add(key)
        bisect.insort(self.alerts, marker, key=lambda m: m.seconds)

    def rows(self) -> int:
        return len(self._minutes) + (self._last is not None)

    @property
    def latest(self) -> Tick | None:
        return self._last

    def figures(self, day: date) -> DayFigures:
        minutes = list(self._minutes)
        columns = [list(column) for column in self._columns]
        if self._last is not None:
            minutes.append(self._minute)
            for column, value in zip(columns, self._last[_FIRST_NUMERIC:], strict=True):
                column.append(value)  # type: ignore[arg-type]
        return DayFigures(
            self.ticker,
            day,
            tuple(minutes),
            {name: tuple(column) for name, column in zip(NUMERIC_FIELDS, columns, strict=True)},
            tuple(self.alerts),
        )

    def under(self, later: StockDay) -> None:
        """Keep this day's rows before ``later``'s first minute, then ``later``'s rows (what
        the live feed made while this one was read from the recording); alerts of both."""
        first = later._minutes[0] if later._minutes else later._minute
        if first >= 0:
            if self._last is not None:
                self._pack(self._minute, self._last[_FIRST_NUMERIC:])
            keep = bisect.bisect_left(self._minutes, first)
            self._minutes = self._minutes[:keep] + later._minutes
            self._columns = [
                mine[:keep] + theirs
                for mine, theirs in zip(self._columns, later._columns, strict=True)
            ]
            self._minute, self._last = later._minute, later._last
        for marker in later.alerts:
            self.add_alert(marker)


def marker_of(alert: AlertLike) -> Marker:
    kind = getattr(alert, "kind", "fired")
    return Marker(alert.tick.seconds, alert.rule, alert.value, str(kind), alert.seq)


class Series:
    """Every stock's rows of the current trading day (the day of the newest tick seen)."""

    def __init__(self, day: date | None = None) -> None:
        self.day = day
        self._stocks: dict[str, StockDay] = {}

    def on_ticks(self, ticks: Iterable[Tick]) -> None:
        """The pipeline's ticks (on the loop, the engine's path): each one in its minute."""
        stocks = self._stocks
        for tick in ticks:
            stock = stocks.get(tick.ticker)
            if stock is None or tick.day != self.day:
                stock = self._stock(tick.ticker, tick.day)
                if stock is None:
                    continue
            stock.add(tick)

    def on_alerts(self, alerts: Iterable[Alert | AlertLike]) -> None:
        """Alerts fired (or stored) today: markers on their stock's chart."""
        for alert in alerts:
            stock = self._stock(alert.ticker, alert.tick.day)
            if stock is not None:
                stock.add_alert(marker_of(alert))

    def _stock(self, ticker: str, day: date) -> StockDay | None:
        """The stock's rows of ``day``; a later day starts the series over, an earlier one has
        none (None)."""
        if self.day is None or day > self.day:
            self.day, self._stocks = day, {}
        elif day < self.day:
            return None
        stock = self._stocks.get(ticker)
        if stock is None:
            stock = self._stocks[ticker] = StockDay(ticker)
        return stock

    def tickers(self) -> list[str]:
        return sorted(self._stocks)

    def rows(self) -> int:
        """Rows held, every stock (the bound: 1,440 a stock)."""
        return sum(stock.rows() for stock in self._stocks.values())

    def latest(self, ticker: str) -> Tick | None:
        stock = self._stocks.get(ticker)
        return None if stock is None else stock.latest

    def figures(self, ticker: str) -> DayFigures | None:
        """A copy of the stock's day, or None when it has no row."""
        stock = self._stocks.get(ticker)
        if stock is None or self.day is None or not stock.rows():
            return None
        return stock.figures(self.day)

    def adopt(self, rebuilt: Series) -> None:
        """Take the rows read from the recording (``read_series``, up to the recording's size
        at start) under the rows the live feed made since: on the loop, between two frames."""
        if rebuilt.day is None or (self.day is not None and rebuilt.day < self.day):
            return  # the recording is of an earlier day: the live series is the whole day
        if self.day is not None and rebuilt.day > self.day:
            self.day, self._stocks = rebuilt.day, {}
        self.day = rebuilt.day
        for ticker, old in rebuilt._stocks.items():
            live = self._stocks.get(ticker)
            if live is not None:
                old.under(live)
            self._stocks[ticker] = old


def read_series(
    recording: Path,
    *,
    end: int | None = None,
    day: date | None = None,
    tickers: Iterable[str] | None = None,
) -> Series:
    """The series of a recording (plain up to byte ``end``, or gzipped), read as a restart's
    rebuild reads it; only ``tickers`` when given. In a worker thread: a busy day takes
    seconds."""
    wanted = None if tickers is None else frozenset(tickers)
    only = next(iter(wanted)) if wanted is not None and len(wanted) == 1 else None
    series = Series()
    for _received, ticks in recorded_ticks(recording, end=end, day=day, containing=only):
        if wanted is not None:
            ticks = [tick for tick in ticks if tick.ticker in wanted]
        series.on_ticks(ticks)
    if day is not None and series.day is None:
        series.day = day
    return series


def day_recording(directory: Path, day: date) -> Path | None:
    """The recording of ``day`` in ``directory``: ``DAY.tsv``, else ``DAY.tsv.gz``. Looks at
    the disk: in a worker thread."""
    plain = day_path(directory, day)
    for path in (plain, plain.with_name(plain.name + ".gz")):
        if path.is_file():
            return path
    return None


class StoredAlerts(Protocol):
    """What the rebuild reads of the store (``bot.store.repo.Store`` has it)."""

    def recent_alerts(
        self, *, ticker: str | None = None, limit: int = 10, chat_id: int | None = None
    ) -> Sequence[AlertLike]: ...


def rebuild_series(store: StoredAlerts, recording: Path, day: date, *, end: int) -> Series:
    """A restart's series: the recording's rows up to ``end`` and the day's alerts the store
    holds (those fired before the restart too). In a worker thread. No recording yet (the
    day's first start): nothing to rebuild."""
    if end == 0 or not recording.exists():
        return Series()
    series = read_series(recording, end=end, day=day)
    for ticker in series.tickers():
        stored = store.recent_alerts(ticker=ticker, limit=MAX_ALERTS)
        series.on_alerts(alert for alert in stored if alert.tick.day == day)
    return series
