"""The one duration grammar (bot/durations.py): what is printed reads back the same, in Latin
and Korean units; a chat's mute also takes 오늘 (until the trading day's end) and at most 30
days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.durations import MAX_SECONDS, format_duration, is_today, parse_duration
from bot.market.calendar import MarketCalendar
from bot.service import CommandError, mute_length, trading_day_end
from bot.ticks import KST

SECONDS = st.integers(0, MAX_SECONDS)


@given(SECONDS)
def test_what_is_printed_parses_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(SECONDS)
def test_what_is_printed_in_korean_parses_back(seconds: int) -> None:
    text = format_duration(seconds, korean=True)
    assert parse_duration(text) == seconds
    assert not any(c in text for c in "dhms")


@given(st.integers(1, 30 * 86400))
def test_a_printed_mute_length_is_the_same_mute(seconds: int) -> None:
    for korean in (False, True):
        assert mute_length(format_duration(seconds, korean=korean)) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30분", 1800), ("2시간", 7200), ("1시간 30분", 5400), ("1일", 86400), ("30m", 1800)],
)
def test_korean_units(text: str, seconds: int) -> None:
    assert mute_length(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["31d", "30d1s", "721h", "44641m", "31일"])
def test_a_mute_longer_than_30_days_is_refused(text: str) -> None:
    with pytest.raises(CommandError) as error:
        mute_length(text)
    assert error.value.key == "error.duration_max"


def test_today_is_a_word_not_a_length() -> None:
    assert is_today("오늘") and is_today(" Today ") and not is_today("1d")


CALENDAR = MarketCalendar()  # the default sessions: the day's last ends 20:00 KST
MONDAY = date(2024, 6, 3)


def kst(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KST)


@pytest.mark.parametrize(
    ("now", "end"),
    [
        (kst(MONDAY, 9, 30), kst(MONDAY, 20, 1)),  # 20:00 is the after-market's last minute
        (kst(MONDAY, 7, 0), kst(MONDAY, 20, 1)),
        (kst(MONDAY, 21, 0), kst(MONDAY + timedelta(days=1), 0)),  # over: the calendar day
        (kst(date(2024, 6, 1), 10), kst(date(2024, 6, 2), 0)),  # Saturday
        (kst(date(2024, 6, 6), 10), kst(date(2024, 6, 7), 0)),  # Memorial Day, a holiday
    ],
)
def test_today_ends_with_the_trading_day(now: datetime, end: datetime) -> None:
    assert trading_day_end(CALENDAR, now.astimezone(UTC)) == end
