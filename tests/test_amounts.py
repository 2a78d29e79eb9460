"""Korean-readable amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.amounts import format_field, format_krw, format_shares, parse_korean


@pytest.mark.parametrize(
    ("won", "text"),
    [
        (12_350_000_000, "123.5억"),
        (10_000_000_000, "100억"),
        (-17_227_936_700, "-172.3억"),
        (1_234_000_000_000, "1.23조"),
        (55_000, "5.5만원"),
        (900, "900원"),
        (0, "0원"),
    ],
)
def test_format_krw(won: int, text: str) -> None:
    assert format_krw(won) == text


def test_fields_use_their_unit() -> None:
    assert format_field("NTBY_TR_PBMN", 10_000_000_000) == "100억"
    assert format_field("WHOL_NTBY_QTY", -49_558) == "-49,558주"
    assert format_shares(1_413_444) == "1,413,444주"


@given(st.integers(min_value=-(10**16), max_value=10**16))
def test_sign_is_kept(won: int) -> None:
    assert format_krw(won).startswith("-") == (won < 0)


@pytest.mark.parametrize(
    ("text", "number", "unit"),
    [
        ("100억", 10**10, None),
        ("1.5조", 15 * 10**11, None),
        ("1억5000만", 150_000_000, None),
        ("1억 5천만원", 150_000_000, "원"),
        ("3천만", 30_000_000, None),
        ("5천억", 5 * 10**11, None),
        ("1조2000억", 12 * 10**11, None),
        ("-100억", -(10**10), None),
        ("억", 10**8, None),
        ("10_000_000_000", 10**10, None),
        ("12,345주", 12_345, "주"),
        ("9007199254740993", 9_007_199_254_740_993, None),  # exact beyond float's 2**53
        ("1234567890123456789012345678901234", 1234567890123456789012345678901234, None),
        ("1조2천3백4십5억6천7백8십9만1234", 1_2345_6789_1234, None),
    ],
)
def test_korean_amounts_are_read_as_written(text: str, number: int, unit: str | None) -> None:
    assert parse_korean(text) == (Decimal(number), unit)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1만1억", "from big to small"),
        ("천천", "from big to small"),
        ("1,5억", "not a number"),  # a decimal comma would make it 15억: refused
        ("1,,0", "not a number"),
        ("5십3백", "from big to small"),
        ("1 2", "two numbers"),
        ("lots", "not a number"),
        ("", "not a number"),
    ],
)
def test_what_is_not_an_amount_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_korean(text)


digits = st.integers(min_value=0, max_value=9999)


@given(digits, digits, digits, digits, st.booleans())
def test_any_amount_written_in_groups_of_four_digits_reads_back(
    jo: int, eok: int, man: int, rest: int, spaced: bool
) -> None:
    parts = [f"{n}{unit}" for n, unit in ((jo, "조"), (eok, "억"), (man, "만")) if n]
    text = (" " if spaced else "").join([*parts, str(rest)] if rest or not parts else parts)
    assert parse_korean(text)[0] == jo * 10**12 + eok * 10**8 + man * 10**4 + rest


@given(digits, digits, st.sampled_from(["", "천", "백", "십"]))
def test_units_within_a_group_of_four_digits_read_as_spoken(
    eok: int, man: int, small: str
) -> None:
    # "3천만" is 3 x 1000 x 10^4; "2억7천" is 2 x 10^8 + 7 x 1000.
    size = {"": 1, "천": 1000, "백": 100, "십": 10}[small]
    assert parse_korean(f"{eok}{small}억{man}")[0] == eok * size * 10**8 + man
