"""Korean-readable amounts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.amounts import format_field, format_krw, format_shares


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
