"""Frame parsing (bot.ticks): the official example, malformed input, and properties."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.ticks import (
    COLUMNS,
    KST,
    RECORD_WIDTH,
    Frame,
    FrameError,
    Tick,
    hhmmss_seconds,
    parse_frame,
    parse_records,
    split_frame,
)

DAY = date(2025, 3, 14)
# KIS's own example frame (H0STPGM0 has the same 11 columns as H0UNPGM0).
OFFICIAL = (
    "0|H0STPGM0|001|005930^092237^1413444^109159646900^1189408^91931710200^-224036"
    "^-17227936700^65033^15475^-49558"
)


def test_the_official_example_frame() -> None:
    (tick,) = parse_frame(OFFICIAL, DAY)
    assert tick == Tick(
        ticker="005930",
        day=DAY,
        hhmmss="092237",
        seconds=9 * 3600 + 22 * 60 + 37,
        seln_cnqn=1413444,
        seln_tr_pbmn=109159646900,
        shnu_cnqn=1189408,
        shnu_tr_pbmn=91931710200,
        ntby_cnqn=-224036,
        ntby_tr_pbmn=-17227936700,
        seln_rsqn=65033,
        shnu_rsqn=15475,
        whol_ntby_qty=-49558,
    )
    assert tick.time == datetime(2025, 3, 14, 9, 22, 37, tzinfo=KST)
    assert tick.value("NTBY_TR_PBMN") == -17227936700
    assert tick.columns()["MKSC_SHRN_ISCD"] == "005930"
    assert list(tick.columns()) == list(COLUMNS)
    # The units follow from the arithmetic: value / volume is about the share price.
    assert 70_000 < tick.seln_tr_pbmn / tick.seln_cnqn < 80_000
    assert tick.ntby_cnqn == tick.shnu_cnqn - tick.seln_cnqn
    assert tick.whol_ntby_qty == tick.shnu_rsqn - tick.seln_rsqn


def test_split_frame() -> None:
    assert split_frame("1|H0UNPGM0|003|abc|def") == Frame(True, "H0UNPGM0", 3, "abc|def")


@pytest.mark.parametrize(
    "text",
    [
        "0|H0UNPGM0",
        "0|H0UNPGM0|001",
        "2|H0UNPGM0|001|x",
        '{"header": {}}',
        "",
        "0|H0UNPGM0|000|x",
        "0|H0UNPGM0|-01|x",
        "0|H0UNPGM0|abc|x",
        "0|H0UNPGM0||x",
    ],
)
def test_split_frame_refuses_bad_envelopes(text: str) -> None:
    with pytest.raises(FrameError) as caught:
        split_frame(text)
    assert caught.value.kind == "envelope"


def test_encrypted_frames_must_be_decrypted_first() -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame("1|H0UNPGM0|001|c2VjcmV0", DAY)
    assert caught.value.kind == "encrypted"


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        ("005930^092237^1^2^3", 1),  # too few fields
        (OFFICIAL.split("|")[3], 2),  # count says 2, one record
        ("^".join([OFFICIAL.split("|")[3]] * 2), 3),  # 22 fields do not make 3 records
        (OFFICIAL.split("|")[3] + "^1", 2),  # 12 fields: two records of 6
    ],
)
def test_field_count_must_make_whole_records(payload: str, count: int) -> None:
    with pytest.raises(FrameError) as caught:
        parse_records(payload, count, DAY)
    assert caught.value.kind == "fields"


def test_wider_records_use_the_first_eleven_fields() -> None:
    base = OFFICIAL.split("|")[3].split("^")
    payload = "^".join([*base, "extra", *base, "more"])
    ticks = parse_records(payload, 2, DAY)
    assert ticks == parse_frame(OFFICIAL, DAY) * 2


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        ("005930^092237^abc^2^3^4^1^2^5^6^1", "number"),
        ("005930^092237^^2^3^4^1^2^5^6^1", "number"),  # empty strings are kept, then refused
        ("005930^092237^1.5^2^3^4^1^2^5^6^1", "number"),
        ("005930^256199^1^2^3^4^1^2^5^6^1", "time"),
        ("005930^0922^1^2^3^4^1^2^5^6^1", "time"),
        ("005930^09223a^1^2^3^4^1^2^5^6^1", "time"),
        ("^092237^1^2^3^4^1^2^5^6^1", "ticker"),
    ],
)
def test_a_bad_record_is_skipped_and_reported(record: str, kind: str) -> None:
    good = OFFICIAL.split("|")[3]
    errors: list[FrameError] = []
    ticks = parse_records(f"{good}^{record}^{good}", 3, DAY, errors)
    assert ticks == parse_frame(OFFICIAL, DAY) * 2
    assert [error.kind for error in errors] == [kind]
    assert parse_records(record, 1, DAY) == []  # no error list: skipped silently


@pytest.mark.parametrize(
    ("hhmmss", "seconds"), [("000000", 0), ("235959", 86399), ("090000", 32400)]
)
def test_hhmmss_seconds(hhmmss: str, seconds: int) -> None:
    assert hhmmss_seconds(hhmmss) == seconds


@pytest.mark.parametrize("hhmmss", ["240000", "236000", "235960", "12345", "1234567", "-12345"])
def test_hhmmss_seconds_refuses_impossible_times(hhmmss: str) -> None:
    with pytest.raises(FrameError):
        hhmmss_seconds(hhmmss)


# -- properties ----------------------------------------------------------------------------

tickers = st.from_regex(r"[0-9A-Z]{6}", fullmatch=True)
times = st.builds(
    lambda h, m, s: f"{h:02d}{m:02d}{s:02d}",
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
values = st.lists(st.integers(-(10**15), 10**15), min_size=9, max_size=9)
records = st.tuples(tickers, times, values)


def record_text(record: tuple[str, str, list[int]]) -> str:
    ticker, hhmmss, numbers = record
    return "^".join([ticker, hhmmss, *map(str, numbers)])


def frame_text(records_: list[tuple[str, str, list[int]]], tr_id: str = "H0UNPGM0") -> str:
    return f"0|{tr_id}|{len(records_):03d}|" + "^".join(map(record_text, records_))


@given(st.lists(records, min_size=1, max_size=20))
def test_a_multi_record_frame_is_its_single_record_frames(
    batch: list[tuple[str, str, list[int]]],
) -> None:
    whole = parse_frame(frame_text(batch), DAY)
    assert whole == [tick for record in batch for tick in parse_frame(frame_text([record]), DAY)]
    assert [(t.ticker, t.hhmmss, list(t[4:])) for t in whole] == [
        (ticker, hhmmss, numbers) for ticker, hhmmss, numbers in batch
    ]


@given(
    st.lists(records, min_size=1, max_size=10),
    st.integers(1, 20),
)
def test_a_wrong_stride_is_refused(batch: list[tuple[str, str, list[int]]], claimed: int) -> None:
    fields = len(batch) * RECORD_WIDTH
    payload = "^".join(map(record_text, batch))
    if fields % claimed == 0 and fields // claimed >= RECORD_WIDTH:
        return  # a whole stride (the right one, or a wider one KIS might add)
    with pytest.raises(FrameError):
        parse_records(payload, claimed, DAY)


@given(
    st.lists(
        st.tuples(records, st.sampled_from([None, "value", "time", "ticker"])),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 8),
)
def test_bad_values_are_refused_per_record(
    batch: list[tuple[tuple[str, str, list[int]], str | None]], column: int
) -> None:
    texts, good = [], []
    for record, damage in batch:
        ticker, hhmmss, numbers = record
        fields = [ticker, hhmmss, *map(str, numbers)]
        if damage == "value":
            fields[2 + column] = "1e5"
        elif damage == "time":
            fields[1] = "99" + hhmmss[2:]
        elif damage == "ticker":
            fields[0] = ""
        else:
            good.append(record)
        texts.append("^".join(fields))
    errors: list[FrameError] = []
    ticks = parse_records("^".join(texts), len(texts), DAY, errors)
    assert [(t.ticker, t.hhmmss, list(t[4:])) for t in ticks] == [
        (ticker, hhmmss, numbers) for ticker, hhmmss, numbers in good
    ]
    assert len(errors) == len(batch) - len(good)
