"""The per-minute series: bucketing, restart rebuild equal to a bot that never stopped, bounds."""

from __future__ import annotations

import gzip
import random
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

from test_checkpoint import frame_line

from bot.alerts import Alert
from bot.charts.series import MAX_ALERTS, Series, day_recording, read_series
from bot.ticks import Tick

DAY = date(2026, 11, 23)


def tick(ticker: str, seconds: int, net: int, day: date = DAY, whole: int = 0) -> Tick:
    hhmmss = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    return Tick(ticker, day, hhmmss, seconds, 1, 2, 3, 4, 5, net, 7, 8, whole)


def day_ticks(count: int, seed: int = 3, start: int = 9 * 3600) -> list[Tick]:
    rng = random.Random(seed)
    ticks, t, net = [], start, 0
    for _ in range(count):
        t += rng.choice((0, 1, 7, 31))
        net += rng.randint(-(10**8), 10**8)
        ticks.append(tick(rng.choice(("005930", "000660", "373220")), t, net))
    return ticks


def rows(series: Series, ticker: str) -> list[tuple[int, int]]:
    figures = series.figures(ticker)
    assert figures is not None
    return list(zip(figures.minutes, figures.columns["NTBY_TR_PBMN"], strict=True))


def test_each_minute_keeps_the_last_value_of_its_ticks() -> None:
    series = Series()
    series.on_ticks([tick("005930", 9 * 3600, 10), tick("005930", 9 * 3600 + 59, 20)])
    series.on_ticks([tick("005930", 9 * 3600 + 60, 30), tick("005930", 9 * 3600 + 61, 40)])
    series.on_ticks([tick("005930", 9 * 3600 + 300, 50)])
    assert rows(series, "005930") == [(540, 20), (541, 40), (545, 50)]
    figures = series.figures("005930")
    assert figures is not None
    assert figures.change("NTBY_TR_PBMN", 5) == 30  # 09:05 against 09:00
    assert figures.change("NTBY_TR_PBMN", 30) is None  # not half an hour of history yet
    assert figures.columns["SELN_CNQN"] == (1, 1, 1)


def test_a_late_tick_lands_in_its_own_minute() -> None:
    series = Series()
    series.on_ticks([tick("005930", 540 * 60, 1), tick("005930", 545 * 60, 5)])
    series.on_ticks([tick("005930", 540 * 60 + 30, 2), tick("005930", 542 * 60, 3)])
    assert rows(series, "005930") == [(540, 2), (542, 3), (545, 5)]


def test_a_new_trading_day_starts_over_and_an_old_one_is_ignored() -> None:
    series = Series()
    series.on_ticks([tick("005930", 540 * 60, 1)])
    series.on_ticks([tick("000660", 541 * 60, 2, day=DAY + timedelta(days=1))])
    assert series.day == DAY + timedelta(days=1)
    assert series.figures("005930") is None
    series.on_ticks([tick("005930", 542 * 60, 3)])  # yesterday's, late
    assert series.figures("005930") is None
    assert rows(series, "000660") == [(541, 2)]


def test_alerts_become_markers_once_each() -> None:
    series = Series()
    fired = tick("005930", 540 * 60 + 5, 10)
    alert = Alert("net-buy", "005930", fired, 10, "m")
    series.on_alerts([alert, alert])
    series.on_ticks([fired])
    figures = series.figures("005930")
    assert figures is not None
    assert [(m.rule, m.seconds, m.value) for m in figures.alerts] == [("net-buy", 32405, 10)]


def write(path: Path, ticks: list[Tick], per_frame: int = 2) -> list[int]:
    lines = [frame_line(ticks[i : i + per_frame]) for i in range(0, len(ticks), per_frame)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8", newline="\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()))
    return offsets


def test_a_restart_at_any_line_rebuilds_what_live_ticks_built(tmp_path: Path) -> None:
    ticks = day_ticks(600)
    recording = tmp_path / f"{DAY}.tsv"
    offsets = write(recording, ticks)
    live = Series()
    live.on_ticks(ticks)
    expected = {t: rows(live, t) for t in live.tickers()}
    for line in random.Random(5).sample(range(len(offsets)), 25):
        rebuilt = read_series(recording, end=offsets[line])
        restarted = Series()
        restarted.on_ticks(ticks[line * 2 :])  # the frames after the offset come live
        restarted.adopt(rebuilt)
        assert {t: rows(restarted, t) for t in restarted.tickers()} == expected, line


def test_a_past_day_reads_from_its_gzipped_recording(tmp_path: Path) -> None:
    ticks = day_ticks(200)
    plain = tmp_path / f"{DAY}.tsv"
    write(plain, ticks)
    packed = tmp_path / f"{DAY}.tsv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    assert day_recording(tmp_path, DAY) == packed
    assert day_recording(tmp_path, DAY + timedelta(days=1)) is None
    live = Series()
    live.on_ticks(ticks)
    read = read_series(packed, tickers=["005930"])
    assert read.tickers() == ["005930"]
    assert rows(read, "005930") == rows(live, "005930")


def test_a_long_day_of_ticks_keeps_one_row_a_minute() -> None:
    series = Series()
    codes = [f"{i:06d}" for i in range(20)]
    tracemalloc.start()
    for second in range(8 * 3600, 20 * 3600, 15):
        series.on_ticks([tick(code, second, second) for code in codes])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert series.rows() == 20 * 12 * 60  # 08:00-20:00, one row a minute a stock
    assert peak < 3 << 20  # about 80 bytes a row, not a tick's worth of objects
    alert = Alert("r", codes[0], tick(codes[0], 9 * 3600, 1), 1, "m")
    series.on_alerts(
        Alert("r", codes[0], tick(codes[0], 9 * 3600 + i, 1), 1, "m") for i in range(3000)
    )
    series.on_alerts([alert])
    figures = series.figures(codes[0])
    assert figures is not None and len(figures.alerts) == MAX_ALERTS


def test_a_restart_takes_the_days_alerts_from_the_store(tmp_path: Path) -> None:
    from bot.charts.series import rebuild_series
    from bot.store.migrate import upgrade
    from bot.store.repo import Store

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    store = Store(url, allowed_chat_ids=[1])
    ticks = day_ticks(300)
    recording = tmp_path / f"{DAY}.tsv"
    offsets = write(recording, ticks)
    fired = [Alert("r", t.ticker, t, t.ntby_tr_pbmn, "m") for t in ticks[::40]]
    yesterday = tick("005930", 9 * 3600, 1, day=DAY - timedelta(days=1))
    store.add_alerts([*fired, Alert("r", "005930", yesterday, 1, "m")])
    live = Series()
    live.on_ticks(ticks)
    live.on_alerts(fired)
    half = len(offsets) // 2
    restarted = Series()
    restarted.on_ticks(ticks[half * 2 :])
    restarted.on_alerts(fired[-2:])  # fired again live after the restart: one marker each
    restarted.adopt(rebuild_series(store, recording, DAY, end=offsets[half]))
    for ticker in live.tickers():
        assert restarted.figures(ticker) == live.figures(ticker)
    store.close()
