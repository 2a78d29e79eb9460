"""The market: master files (read and written), name lookup, the KRX calendar."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.codes import is_stock_code
from bot.market.calendar import MarketCalendar
from bot.market.master import (
    KOSDAQ,
    KOSPI,
    MasterError,
    isin_of,
    parse_master,
    unzip_master,
    write_master,
    zip_master,
)
from bot.market.names import Directory, Found, Listing
from bot.market.sessions import MinuteRange
from bot.ticks import KST

SAMSUNG = Listing("005930", "삼성전자", "KOSPI", market_cap=4_000_000)
SAMSUNG_PREF = Listing("005935", "삼성전자우", "KOSPI", market_cap=400_000)
SAMSUNG_BIO = Listing("207940", "삼성바이오로직스", "KOSPI", market_cap=700_000)
HYNIX = Listing("000660", "SK하이닉스", "KOSPI", market_cap=1_500_000)
EPIS = Listing("0126Z0", "삼성에피스홀딩스", "KOSPI", market_cap=100_000)
KODEX = Listing("069500", "KODEX 200", "KOSPI", group="EF", market_cap=90_000)
ALTEO = Listing("196170", "알테오젠", "KOSDAQ", warning="투자경고", market_cap=200_000)
HALTED = Listing("123456", "거래정지기업", "KOSDAQ", halted=True, warning="관리종목")


# -- master files --------------------------------------------------------------------------------


def test_a_kospi_file_round_trips_with_letters_in_codes_and_cp949_names() -> None:
    listings = [SAMSUNG, HYNIX, EPIS, KODEX]
    data = write_master(listings, KOSPI)
    line = data.split(b"\n")[0]
    assert line.startswith(b"005930   KR7005930003")
    assert line[21:-227].decode("cp949").strip() == "삼성전자"
    parsed = parse_master(data, KOSPI)
    assert [(p.code, p.name, p.group) for p in parsed] == [
        ("005930", "삼성전자", "ST"),
        ("000660", "SK하이닉스", "ST"),
        ("0126Z0", "삼성에피스홀딩스", "ST"),
        ("069500", "KODEX 200", "EF"),
    ]
    assert parsed[0].isin == "KR7005930003" and parsed[0].market_cap == 4_000_000
    assert all(p.market == "KOSPI" and not p.halted and p.warning is None for p in parsed)


def test_a_kosdaq_file_carries_its_halt_and_warning_flags() -> None:
    data = write_master([ALTEO, HALTED], KOSDAQ)
    assert len(data.split(b"\n")[0]) == 21 + len("알테오젠".encode("cp949")) + 1 + 221
    alteo, halted = parse_master(data, KOSDAQ)
    assert (alteo.market, alteo.warning, alteo.halted) == ("KOSDAQ", "투자경고", False)
    assert (halted.warning, halted.halted) == ("관리종목", True)


def test_the_two_layouts_are_not_confused() -> None:
    with pytest.raises(MasterError, match="KOSDAQ layout"):
        parse_master(write_master([SAMSUNG], KOSPI), KOSDAQ)


def test_crlf_lines_are_read_and_codes_the_feed_cannot_take_are_skipped() -> None:
    etn = Listing("Q50000", "X", "KOSPI")  # six characters, but read below with a 7th
    data = write_master([SAMSUNG, etn], KOSPI).replace(b"Q50000 ", b"Q500001")
    data = data.replace(b"\n", b"\r\n")
    assert [p.code for p in parse_master(data, KOSPI)] == ["005930"]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: d[:-40], "truncated"),
        (lambda d: d[: d.index(b"\n") + 100] + b"\n", "line 2: 99 bytes"),
        (lambda d: d.replace("삼성전자".encode("cp949"), b"\xff\xfe\xff\xfe", 1), "cp949"),
        (lambda d: d.replace(b"KR7005930003", b"kr7005930003"), "not a record"),
        (lambda d: b"", "no stock"),
    ],
)
def test_a_damaged_or_truncated_file_is_refused_with_where(damage: object, says: str) -> None:
    data = write_master([SAMSUNG, HYNIX], KOSPI)
    assert callable(damage)
    with pytest.raises(MasterError, match=says):
        parse_master(damage(data), KOSPI)


def test_zips_are_bounded_and_checked() -> None:
    data = write_master([SAMSUNG], KOSPI)
    blob = zip_master(data, KOSPI)
    assert unzip_master(blob, KOSPI, 10_000) == data
    with pytest.raises(MasterError, match="more than the 100 allowed"):
        unzip_master(blob, KOSPI, 100)
    with pytest.raises(MasterError, match=r"no kosdaq_code\.mst inside"):
        unzip_master(blob, KOSDAQ, 10_000)
    with pytest.raises(MasterError, match="not a usable zip"):
        unzip_master(blob[: len(blob) // 2], KOSPI, 10_000)
    bomb = zip_master(b"0" * 5_000_000, KOSPI)
    assert len(bomb) < 10_000
    with pytest.raises(MasterError, match="more than"):
        unzip_master(bomb, KOSPI, 1_000_000)


def test_isin_check_digits_are_krx_s() -> None:
    assert isin_of("005930") == "KR7005930003"
    assert isin_of("000660") == "KR7000660001"


# -- lookup --------------------------------------------------------------------------------------

DIRECTORY = Directory([SAMSUNG, SAMSUNG_PREF, SAMSUNG_BIO, HYNIX, EPIS, KODEX, ALTEO])


def test_an_exact_code_or_name_resolves() -> None:
    assert DIRECTORY.resolve("005930").code == "005930"
    assert DIRECTORY.resolve("0126z0").listing == EPIS
    exact = DIRECTORY.resolve("삼성전자")  # also the start of 삼성전자우: exact wins
    assert (exact.found, exact.code) == (Found.STOCK, "005930")
    assert DIRECTORY.resolve("sk하이닉스").code == "000660"  # case and spaces do not matter
    assert DIRECTORY.resolve("kodex200").code == "069500"


def test_a_unique_prefix_resolves_and_an_ambiguous_one_lists_candidates() -> None:
    assert DIRECTORY.resolve("알테").code == "196170"
    ambiguous = DIRECTORY.resolve("삼성")
    assert ambiguous.found is Found.AMBIGUOUS and ambiguous.code is None
    # Biggest first.
    assert [c.code for c in ambiguous.candidates] == ["005930", "207940", "005935", "0126Z0"]
    assert len(DIRECTORY.resolve("삼성", limit=2).candidates) == 2


def test_unknown_names_and_unlisted_codes() -> None:
    assert DIRECTORY.resolve("없는회사").found is Found.UNKNOWN
    inside = DIRECTORY.resolve("바이오")  # no name starts so, one holds it: a candidate
    assert inside.found is Found.AMBIGUOUS and inside.candidates == (SAMSUNG_BIO,)
    assert DIRECTORY.resolve("999999").found is Found.UNLISTED
    empty = Directory()
    assert empty.resolve("999999").found is Found.STOCK  # codes alone: not refused
    assert empty.resolve("삼성전자").found is Found.NOT_A_CODE


def test_search_puts_names_that_start_with_the_text_first() -> None:
    assert [s.code for s in DIRECTORY.search("삼성")] == ["005930", "207940", "005935", "0126Z0"]
    assert [s.code for s in DIRECTORY.search("로직")] == ["207940"]
    assert [s.code for s in DIRECTORY.search("5930")] == ["005930"]
    assert DIRECTORY.search("삼성", limit=1) == [SAMSUNG]
    assert DIRECTORY.search("  ") == []
    assert (
        DIRECTORY.label("005930") == "삼성전자(005930)" and DIRECTORY.label("111111") == "111111"
    )


# -- calendar ------------------------------------------------------------------------------------


def kst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KST)


CALENDAR = MarketCalendar()


def test_weekends_and_krx_holidays_do_not_trade() -> None:
    assert CALENDAR.is_trading_day(date(2026, 12, 2))  # a Wednesday
    assert not CALENDAR.is_trading_day(date(2026, 12, 5))  # Saturday
    assert not CALENDAR.is_trading_day(date(2026, 9, 25))  # Chuseok
    assert not CALENDAR.is_trading_day(date(2026, 12, 31))  # KRX's year-end closing day
    assert CALENDAR.session_at(kst("2026-09-25T10:00")) is None


def test_configured_exceptions_win_over_the_calendar() -> None:
    calendar = MarketCalendar(closed_days=[date(2026, 12, 2)], open_days=[date(2026, 12, 5)])
    assert not calendar.is_trading_day(date(2026, 12, 2))
    assert calendar.is_trading_day(date(2026, 12, 5))
    assert calendar.session_at(kst("2026-12-05T10:00")) == "regular"


@pytest.mark.parametrize(
    ("moment", "session"),
    [
        ("2026-12-02T07:59:59", None),
        ("2026-12-02T08:00:00", "pre"),
        ("2026-12-02T08:59:59", "pre"),
        ("2026-12-02T09:00:00", "regular"),
        ("2026-12-02T15:30:59", "regular"),
        ("2026-12-02T15:31:00", "after"),
        ("2026-12-02T20:00:59", "after"),
        ("2026-12-02T20:01:00", None),
    ],
)
def test_session_boundaries(moment: str, session: str | None) -> None:
    assert CALENDAR.session_at(kst(moment)) == session


def test_where_the_market_stands_and_when_it_opens_next() -> None:
    night = CALENDAR.state(kst("2026-12-02T21:00"))
    assert not night.is_open and night.next_open == kst("2026-12-03T08:00")
    friday = CALENDAR.state(kst("2026-12-04T20:30"))
    assert friday.next_open == kst("2026-12-07T08:00")  # over the weekend
    assert CALENDAR.next_open(kst("2026-12-30T21:00")) == kst("2027-01-04T08:00")
    morning = CALENDAR.state(kst("2026-12-02T07:00"))
    assert morning.trading_day and morning.next_open == kst("2026-12-02T08:00")
    open_ = CALENDAR.state(datetime.fromisoformat("2026-12-02T01:00+00:00"))  # 10:00 KST
    assert open_.session == "regular" and open_.session_end == kst("2026-12-02T15:31")


def test_configured_sessions_with_a_gap() -> None:
    sessions = {
        "regular": MinuteRange.parse("09:00-12:00"),
        "late": MinuteRange.parse("13:00-14:00"),
    }
    calendar = MarketCalendar(sessions)
    assert calendar.session_at(kst("2026-12-02T12:30")) is None
    assert calendar.next_open(kst("2026-12-02T12:30")) == kst("2026-12-02T13:00")
    assert calendar.session_at(kst("2026-12-02T13:30")) == "late"


@given(st.binary(max_size=2000))
def test_any_bytes_are_a_master_file_or_a_clear_error(data: bytes) -> None:
    for layout in (KOSPI, KOSDAQ):
        try:
            listings = parse_master(data, layout)
        except MasterError:
            continue
        assert all(is_stock_code(listing.code) and listing.name for listing in listings)


def test_list_and_find_replies_show_halts_and_warnings() -> None:
    from bot.kis.status import SubState, SubStatus
    from bot.notify.replies import found, watch_list
    from bot.notify.voice import Voice
    from bot.service import FindResult, WatchedStock

    halted = Listing("123450", "거래정지기업", "KOSDAQ", halted=True, warning="투자경고")
    voice = Voice()
    lines = watch_list(voice, [WatchedStock(SubStatus("123450", SubState.LIVE), halted)])
    assert lines[1].endswith("⚠️ 거래정지 · 투자경고")
    shown = found(voice, FindResult("거래", [halted], True))
    assert shown[1] == "<code>거래정지기업(123450)</code> KOSDAQ ⚠️ 거래정지 · 투자경고"
    assert found(voice, FindResult("x", [], False)) == [
        "종목 마스터 파일이 없어 이름으로 찾을 수 없습니다. 종목 코드로 보내 주세요."
    ]
