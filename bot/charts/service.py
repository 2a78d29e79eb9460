"""The operations behind /chart, /now and /top: today's figures from the series, past days from
the recordings on disk, pictures from the chart worker. Plain values out; the commands format.

A stock is named by its code (``005930``) or, when the bot has a directory of listed stocks, by
its name (``삼성전자``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from bot.charts.digest_store import AsyncDigests
from bot.charts.levels import NoData, thresholds
from bot.charts.series import MAX_ALERTS, DayFigures, Marker, Series, day_recording, marker_of
from bot.charts.worker import ChartWorker
from bot.clock import utc_now
from bot.engine.rule_types import RuleSet
from bot.market.names import Names
from bot.market.sessions import DEFAULT_SESSIONS, MinuteRange
from bot.messages import KOREAN, Catalogue, Locale
from bot.service import CommandError, shown, stock_of
from bot.store.outbox import StoredAlert
from bot.ticks import today_kst

MAX_TOP = 30  # most stocks one /top lists
DEFAULT_TOP = 10
_PAST_ALERTS = 5 * MAX_ALERTS  # alerts of a stock read back to find a past day's
_DAY = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


class RulesSource(Protocol):
    @property
    def ruleset(self) -> RuleSet: ...


class ChartStore(Protocol):
    """What the charts read of the store (``bot.store.facade.AsyncStore`` has it)."""

    async def watches(self, chat_id: int) -> list[str]: ...
    async def recent_alerts(
        self, *, ticker: str | None = None, limit: int = 10, chat_id: int | None = None
    ) -> list[StoredAlert]: ...


@dataclass(frozen=True, slots=True)
class Chart:
    png: bytes
    ticker: str
    label: str
    day: date


@dataclass(frozen=True, slots=True)
class Ranked:
    """A stock of /top: today's net-buy value and its change over the last 30 minutes."""

    ticker: str
    label: str
    figures: DayFigures | None  # None: no figure today


def parse_day(text: str, today: date) -> date:
    """``2026-11-23``, ``20261123``, or ``-1`` (days back). CommandError saying why not."""
    word = text.strip()
    if re.fullmatch(r"-\d{1,3}", word):
        return today - timedelta(days=int(word[1:]))
    match = _DAY.fullmatch(word)
    try:
        if match is None:
            raise ValueError
        day = date(*(int(part) for part in match.groups()))
    except ValueError:
        raise CommandError("charts.bad_date", word=shown(text)) from None
    if day > today:
        raise CommandError("charts.future_date", day=day.isoformat())
    return day


class ChartService:
    """Charts, latest figures and rankings of the watched stocks."""

    def __init__(
        self,
        series: Series,
        rules: RulesSource,
        store: ChartStore,
        worker: ChartWorker,
        *,
        record_dir: Path | None = None,
        names: Names | None = None,
        sessions: dict[str, MinuteRange] | None = None,
        today: Callable[[], date] = today_kst,
        say: Catalogue = KOREAN,
    ) -> None:
        self.series = series
        self.rules = rules
        self.store = store
        self.worker = worker
        self.record_dir = record_dir
        self.names = names or Names()  # the app's holder: a fresh directory shows at once
        self.sessions = sessions or dict(DEFAULT_SESSIONS)
        self.today = today
        self.say = say
        self.locale: Locale = say.locale
        self.digests: AsyncDigests | None = None  # /digest on|off, when digests are on

    async def digest(self, chat_id: int, word: str | None = None) -> bool:
        """Turn this chat's daily digest on or off (``word``), or just say; True when on."""
        store = self.digests
        if store is None:
            raise CommandError("charts.digest.unavailable")
        if word is not None:
            wanted = {"on": True, "off": False, "켜기": True, "끄기": False}.get(word.lower())
            if wanted is None:
                raise CommandError("charts.digest.bad_word", word=shown(word))
            await store.turn(chat_id, wanted, utc_now())
        return chat_id not in await store.turned_off()

    def resolve(self, text: str) -> str:
        """The stock code ``text`` names: a code, or a listed name. CommandError otherwise."""
        return stock_of(self.names.directory, text)

    def label(self, code: str) -> str:
        return self.names.label(code)

    async def chart(self, stock: str, day_text: str | None = None) -> Chart:
        """The PNG of a stock's day (today by default). NoData when there is nothing to draw."""
        code = self.resolve(stock)
        today = self.today()
        day = parse_day(day_text, today) if day_text else today
        label = self.label(code)
        levels = thresholds(self.rules.ruleset.enabled, code)
        if day == today or day == self.series.day:
            figures = self.series.figures(code) if day == self.series.day else None
            if figures is None:
                raise NoData(self.say("charts.no_data", stock=label, day=day.isoformat()))
            png = await self.worker.render(
                figures, label=label, levels=levels, sessions=self.sessions, locale=self.locale
            )
            return Chart(png, code, label, day)
        recording = None
        if self.record_dir is not None:
            recording = await asyncio.to_thread(day_recording, self.record_dir, day)
        if recording is None:
            raise NoData(self.say("charts.no_recording", stock=label, day=day.isoformat()))
        markers = await self._past_alerts(code, day)
        png = await self.worker.render_recording(
            recording,
            code,
            label=label,
            markers=markers,
            levels=levels,
            sessions=self.sessions,
            locale=self.locale,
        )
        return Chart(png, code, label, day)

    async def _past_alerts(self, code: str, day: date) -> list[Marker]:
        stored = await self.store.recent_alerts(ticker=code, limit=_PAST_ALERTS)
        return [marker_of(alert) for alert in stored if alert.tick.day == day][:MAX_ALERTS]

    def now(self, stock: str) -> tuple[str, DayFigures]:
        """The stock's label and today's figures. NoData when it has none today."""
        code = self.resolve(stock)
        label = self.label(code)
        figures = self.series.figures(code)
        if figures is None or self.series.day != self.today():
            day = self.today().isoformat()
            raise NoData(self.say("charts.no_data", stock=label, day=day))
        return label, figures

    async def top(self, chat_id: int, n: int = DEFAULT_TOP) -> list[Ranked]:
        """This chat's watched stocks by today's net-buy value, highest first; stocks without
        a figure today come last."""
        if not 1 <= n <= MAX_TOP:
            raise CommandError("charts.bad_count", most=MAX_TOP)
        return self.ranked(await self.store.watches(chat_id))[:n]

    def ranked(self, tickers: Sequence[str]) -> list[Ranked]:
        today = self.today()
        rows = [
            Ranked(code, self.label(code), self.series.figures(code) if self.series.day == today
                   else None)
            for code in tickers
        ]  # fmt: skip
        return sorted(rows, key=_rank)


def _rank(row: Ranked) -> tuple[int, int, str]:
    if row.figures is None:
        return (1, 0, row.ticker)
    return (0, -row.figures.last("NTBY_TR_PBMN"), row.ticker)
