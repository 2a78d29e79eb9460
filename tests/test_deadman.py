"""The dead-man notice: a silent feed during a session is told once, and its end once."""

from __future__ import annotations

from datetime import datetime, timedelta

from clocks import WallClock

from bot.kis.status import ConnectionStatus, FeedStats
from bot.market.calendar import MarketCalendar
from bot.market.deadman import SilenceWatch
from bot.ticks import KST


class Feed:
    """What the watch reads of a feed: its stats, moved by the test."""

    def __init__(self) -> None:
        self.ticks = 0
        self.connected = True

    def stats(self) -> FeedStats:
        connection = ConnectionStatus(
            "main", self.connected, 3, 41, None if self.connected else "silence"
        )
        return FeedStats([connection], ticks=self.ticks)


def watch_at(moment: str, wanted: bool = True) -> tuple[SilenceWatch, Feed, WallClock, list[str]]:
    clock = WallClock(datetime.fromisoformat(moment).replace(tzinfo=KST))
    feed, told = Feed(), list[str]()
    watch = SilenceWatch(MarketCalendar(), feed.stats, lambda: wanted, told.append, clock=clock)
    return watch, feed, clock, told


def step(watch: SilenceWatch, clock: WallClock, seconds: int) -> None:
    for _ in range(seconds // 15):
        clock.now += timedelta(seconds=15)
        watch.check()


def test_a_silence_during_a_session_is_told_once_and_its_end_once() -> None:
    watch, feed, clock, told = watch_at("2026-12-02T10:00:00")
    watch.check()
    step(watch, clock, 105)
    feed.ticks += 5  # 10:01:45: the last ticks
    step(watch, clock, 15)
    assert told == []
    feed.connected = False
    step(watch, clock, 120)  # two minutes without a tick
    assert told == ["10:02 이후 체결 데이터 없음 · 연결 상태: main 끊김 (silence)"]
    step(watch, clock, 600)
    assert len(told) == 1 and watch.silent
    feed.ticks += 1
    step(watch, clock, 15)
    assert told[1] == "체결 데이터가 다시 들어옵니다 (10:02부터 12분간 끊김)."
    assert not watch.silent
    step(watch, clock, 60)
    assert len(told) == 2


def test_no_notice_outside_sessions_on_weekends_holidays_or_with_nothing_wanted() -> None:
    for moment, wanted in [
        ("2026-12-02T20:01:00", True),  # after the after-market
        ("2026-12-05T10:00:00", True),  # Saturday
        ("2026-09-25T10:00:00", True),  # Chuseok
        ("2026-12-02T10:00:00", False),  # a session, but nothing to watch
    ]:
        watch, _, clock, told = watch_at(moment, wanted)
        watch.check()
        step(watch, clock, 3600)
        assert told == [], moment


def test_counting_starts_when_the_session_opens() -> None:
    watch, feed, clock, told = watch_at("2026-12-02T07:50:00")
    watch.check()
    feed.ticks += 1  # a tick before the pre-market must not date the silence
    step(watch, clock, 600)  # 08:00: the pre-market opens
    assert told == []
    step(watch, clock, 120)
    assert told == ["08:00 이후 체결 데이터 없음 · 연결 상태: main 연결됨"]
