"""Frame parsing (bot.ticks): the official example, malformed input, and properties."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.ticks import (
    COLUMNS,
    INT64_MAX,
    INT64_MIN,
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
    # The parser says how wide the records were (the feed warns about wider ones).
    widths: list[int] = []
    assert parse_records(payload, 2, DAY, widths=widths) == ticks
    assert widths == [RECORD_WIDTH + 1]
    parse_records(OFFICIAL.split("|")[3], 1, DAY, widths=widths)
    assert widths == [RECORD_WIDTH + 1]  # 11 wide: nothing to say


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


# What int() forgives and a number the database cannot hold are malformed values.
NOT_NUMBERS = [
    "\u0661\u0662\u0663",  # Arabic-Indic digits
    "\uff11\uff12\uff13",  # full-width digits
    "1_000",
    " 5",
    "5 ",
    "\t5",
    "5\n",
    "+5",
    "--5",
    "5-",
    "-",
    "0x10",
    str(10**30),
    str(INT64_MAX + 1),
    str(INT64_MIN - 1),
    "9" * 5000,  # beyond int()'s own digit limit: refused, not a ValueError traceback
]


@pytest.mark.parametrize("value", NOT_NUMBERS)
@pytest.mark.parametrize("column", [0, 5, 8])
def test_numbers_are_ascii_digits_within_int64(value: str, column: int) -> None:
    good = OFFICIAL.split("|")[3]
    fields = good.split("^")
    fields[2 + column] = value
    errors: list[FrameError] = []
    ticks = parse_records(f"{good}^{'^'.join(fields)}^{good}", 3, DAY, errors)
    assert ticks == parse_frame(OFFICIAL, DAY) * 2
    assert [error.kind for error in errors] == ["number"]
    assert len(str(errors[0])) < 120  # a huge value is quoted by its start only


@pytest.mark.parametrize("value", [INT64_MAX, INT64_MIN, 0, -1, 10**18, -(10**18)])
def test_int64_bounds_and_long_numbers_are_kept(value: int) -> None:
    fields = OFFICIAL.split("|")[3].split("^")
    fields[2:] = [str(value)] * 9
    (tick,) = parse_records("^".join(fields), 1, DAY)
    assert list(tick[4:]) == [value] * 9
    assert parse_records("^".join(fields[:2] + ["007"] * 9), 1, DAY)[0].seln_cnqn == 7


@pytest.mark.parametrize(
    "hhmmss", ["\u0660\u0669\u0662\u0662\u0663\u0667", "\uff10\uff19\uff12\uff12\uff13\uff17"]
)
def test_times_are_ascii_digits(hhmmss: str) -> None:
    errors: list[FrameError] = []
    assert parse_records(f"005930^{hhmmss}^1^2^3^4^1^2^5^6^1", 1, DAY, errors) == []
    assert [error.kind for error in errors] == ["time"]


def test_a_record_count_is_ascii_digits() -> None:
    with pytest.raises(FrameError):
        split_frame("0|H0UNPGM0|\u0661|" + OFFICIAL.split("|")[3])


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


ASCII_INTEGER = re.compile(r"-?[0-9]+")
odd_texts = st.text(
    alphabet=st.sampled_from("0123456789-+_ \t\n\u0661\uff15\u00b2x^"), max_size=25
).filter(lambda text: "^" not in text)
numbers_as_text = st.integers(INT64_MIN * 4, INT64_MAX * 4).map(str)


@example("")
@example(str(INT64_MAX + 1))
@example("\u0663")
@given(st.one_of(odd_texts, numbers_as_text))
def test_a_value_is_kept_exactly_when_it_is_an_ascii_int64(text: str) -> None:
    """A value is kept, as that number, exactly when it is ``-?[0-9]+`` within int64, else it is
    a "number" error; whatever else the frame holds (a '+' elsewhere means the strict path)."""
    fields = OFFICIAL.split("|")[3].split("^")
    fields[3] = text
    odd = fields.copy()
    odd[0] = "+05930"  # not a number field: parsed all the same, on the strict path
    expected = ASCII_INTEGER.fullmatch(text) is not None and INT64_MIN <= int(text) <= INT64_MAX
    for record in (fields, odd):
        errors: list[FrameError] = []
        ticks = parse_records("^".join(record), 1, DAY, errors)
        assert bool(ticks) is expected
        if expected:
            assert ticks[0].seln_tr_pbmn == int(text)
        else:
            assert [error.kind for error in errors] == ["number"]
