"""The KRX calendar: which days trade, which session runs at a moment, when the market opens next.

Trading days are weekdays that are not KRX holidays (the ``holidays`` package's
``financial_holidays("XKRX")``: Lunar New Year, Chuseok, election days, the year-end closing day,
…), except the config's ``market.closed_days`` (a one-off closure: never trades) and
``market.open_days`` (a day that trades although the package says it does not). The sessions
are ``market.sessions`` (defaults: ``bot.market.sessions.DEFAULT_SESSIONS``); all times are KST.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import holidays

from bot.market.sessions import DEFAULT_SESSIONS, MinuteRange
from bot.ticks import KST

_LOOK_AHEAD = 400  # days searched for the next trading day (a year of closures is absurd)


@dataclass(frozen=True, slots=True)
class MarketState:
    """Where the market stands at a moment."""

    at: datetime  # the moment asked about, KST
    trading_day: bool  # ``at``'s date trades
    session: str | None  # the session running, None when closed
    next_open: datetime | None  # closed: when the next session starts (None: none in a year)
    session_end: datetime | None = None  # open: the first second after the session

    @property
    def is_open(self) -> bool:
        return self.session is not None


class MarketCalendar:
    """Trading days and sessions; pure apart from the holidays package's tables."""

    def __init__(
        self,
        sessions: Mapping[str, MinuteRange] = DEFAULT_SESSIONS,
        *,
        closed_days: Collection[date] = (),
        open_days: Collection[date] = (),
    ) -> None:
        self.sessions = dict(sessions)
        self.closed_days = frozenset(closed_days)
        self.open_days = frozenset(open_days) - self.closed_days
        self._holidays = holidays.financial_holidays("XKRX")
        # The sessions in the order of the day (the config may name them in any order).
        self._ordered = sorted(self.sessions.items(), key=lambda item: item[1].first)

    def is_trading_day(self, day: date) -> bool:
        if day in self.closed_days:
            return False
        if day in self.open_days:
            return True
        return day.weekday() < 5 and day not in self._holidays

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name (English, from the package) when ``day`` is one."""
        name = self._holidays.get(day)
        return None if name is None else str(name)

    def session_at(self, moment: datetime) -> str | None:
        """The session running at ``moment`` (any timezone; read in KST), None when closed."""
        local = moment.astimezone(KST)
        if not self.is_trading_day(local.date()):
            return None
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        for name, minutes in self._ordered:
            if minutes.holds(seconds):
                return name
        return None

    def state(self, moment: datetime) -> MarketState:
        local = moment.astimezone(KST)
        trading = self.is_trading_day(local.date())
        session = self.session_at(local)
        if session is not None:
            end = _at(local.date(), self.sessions[session].end_seconds)
            return MarketState(local, trading, session, None, end)
        return MarketState(local, trading, None, self.next_open(local))

    def next_open(self, moment: datetime) -> datetime | None:
        """When the next session starts after ``moment`` (KST), None if none within a year."""
        local = moment.astimezone(KST)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        day = local.date()
        for offset in range(_LOOK_AHEAD):
            current = day + timedelta(days=offset)
            if not self.is_trading_day(current):
                continue
            for _, minutes in self._ordered:
                if offset > 0 or minutes.start_seconds > seconds:
                    return _at(current, minutes.start_seconds)
        return None

    def next_trading_day(self, day: date) -> date | None:
        for offset in range(1, _LOOK_AHEAD):
            current = day + timedelta(days=offset)
            if self.is_trading_day(current):
                return current
        return None

    def first_open(self, day: date) -> datetime | None:
        """When ``day``'s first session starts, None when it does not trade."""
        if not self.is_trading_day(day) or not self._ordered:
            return None
        return _at(day, self._ordered[0][1].start_seconds)


def _at(day: date, seconds: int) -> datetime:
    """``day`` at ``seconds`` after midnight, KST (86,400 is the next midnight)."""
    midnight = datetime.combine(day, time(0), tzinfo=KST)
    return midnight + timedelta(seconds=seconds)
