"""Master files over loopback HTTP (the simulator's REST server): download, cache, fallback."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.kis.simulator import Simulator
from bot.market.calendar import MarketCalendar
from bot.market.download import MAX_DOWNLOAD, MAX_FILE, MasterFiles
from bot.market.names import Listing
from bot.ticks import KST

CALENDAR = MarketCalendar()


def masters(
    sim: Simulator,
    cache: Path | None,
    told: list[str],
    max_download: int = MAX_DOWNLOAD,
    max_file: int = MAX_FILE,
) -> MasterFiles:
    return MasterFiles(
        sim.master_url,
        cache,
        CALENDAR,
        tell_admins=told.append,
        no_names_text="no names",
        max_download=max_download,
        max_file=max_file,
    )


async def test_the_files_download_and_a_failing_server_falls_back_to_the_cache(
    tmp_path: Path,
) -> None:
    told: list[str] = []
    async with Simulator() as sim:
        first = masters(sim, tmp_path, told)
        assert await first.refresh()
        assert first.directory.label("005930") == "삼성전자(005930)"
        assert first.directory.get("196170") is not None  # KOSDAQ too
        assert first.directory.get("0126Z0") is not None  # a code with a letter
        assert first.sources == {"KOSPI": "download", "KOSDAQ": "download"}
        assert (tmp_path / "kospi_code.mst.zip").is_file()
        assert (tmp_path / "kosdaq_code.mst.zip").is_file()

        sim.master.fault = 503
        again = masters(sim, tmp_path, told)  # a restart while the server is down
        assert not await again.refresh()
        assert again.sources == {"KOSPI": "cache", "KOSDAQ": "cache"}
        assert again.directory.name("005930") == "삼성전자"
        assert again.directory.complete
        assert told == []


async def test_a_truncated_download_never_replaces_the_good_copy(tmp_path: Path) -> None:
    told: list[str] = []
    async with Simulator() as sim:
        assert await masters(sim, tmp_path, told).refresh()
        good = (tmp_path / "kospi_code.mst.zip").read_bytes()
        sim.master.listings = [
            Listing("005930", "바뀐이름", "KOSPI"),
            Listing("196170", "알테오젠", "KOSDAQ"),
        ]
        sim.master.truncate = True
        files = masters(sim, tmp_path, told)
        assert not await files.refresh()
        assert (tmp_path / "kospi_code.mst.zip").read_bytes() == good
        assert files.directory.name("005930") == "삼성전자"
        sim.master.truncate = False
        assert await files.refresh()
        assert files.directory.name("005930") == "바뀐이름"  # a good file does replace it
        assert files.directory.get("247540") is None


async def test_without_server_or_cache_the_bot_runs_on_codes_and_says_so_once(
    tmp_path: Path,
) -> None:
    told: list[str] = []
    async with Simulator() as sim:
        sim.master.fault = 500
        files = masters(sim, tmp_path / "empty", told)
        assert not await files.refresh()
        assert not await files.refresh()
        assert not files.directory.loaded and files.loaded.is_set()
        assert files.directory.resolve("999999").code == "999999"  # not refused: no names
        assert told == ["no names"]
        sim.master.fault = None
        assert await files.refresh()
        assert files.directory.loaded


async def test_downloads_and_inflated_files_are_bounded(tmp_path: Path) -> None:
    told: list[str] = []
    async with Simulator() as sim:
        small = masters(sim, None, told, max_download=200)
        assert not await small.refresh()
        assert not small.directory.loaded
        bomb = masters(sim, None, told, max_file=1000)  # the KOSPI file inflates past that
        assert not await bomb.refresh()
        assert bomb.sources["KOSPI"] == "none"


async def test_a_damaged_cache_is_ignored_and_a_cache_alone_loads_at_start(tmp_path: Path) -> None:
    told: list[str] = []
    async with Simulator() as sim:
        assert await masters(sim, tmp_path, told).refresh()
    (tmp_path / "kosdaq_code.mst.zip").write_bytes(b"PK\x03\x04 not a zip")
    files = MasterFiles("http://127.0.0.1:9", tmp_path, CALENDAR)
    await files.load_cache()
    assert files.directory.name("005930") == "삼성전자"
    assert not files.directory.complete  # KOSDAQ is missing: unlisted codes are not refused
    assert files.directory.resolve("999999").code == "999999"


def test_the_refresh_comes_before_each_trading_morning() -> None:
    files = MasterFiles("http://127.0.0.1:9", None, CALENDAR)
    wednesday_night = datetime(2026, 12, 2, 21, 0, tzinfo=KST)
    assert files.next_refresh(wednesday_night) == datetime(2026, 12, 3, 7, 30, tzinfo=KST)
    early = datetime(2026, 12, 3, 6, 0, tzinfo=KST)
    assert files.next_refresh(early) == datetime(2026, 12, 3, 7, 30, tzinfo=KST)
    friday = datetime(2026, 12, 4, 9, 0, tzinfo=KST)
    assert files.next_refresh(friday) == datetime(2026, 12, 7, 7, 30, tzinfo=KST)
    failed = files.next_refresh(friday, failed=True)
    assert failed == datetime(2026, 12, 4, 9, 15, tzinfo=KST)
