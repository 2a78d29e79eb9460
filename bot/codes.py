"""Stock codes: the one place that says what a KRX short code is.

A code is six characters, digits and capital letters (``005930``, ``0167A0``). People type
``5930``, `` 005930 ``, ``0167a0`` and YAML reads ``005930`` unquoted as the number 5930: all of
them mean one code, and ``stock_code`` says which, or why none.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_CODE = re.compile(r"[0-9A-Z]{6}")


def stock_code(value: Any) -> str:
    """The 6-character code ``value`` means; ValueError saying why it is none.

    Unquoted YAML numbers are zero-padded (5930 -> 005930); letters are upper-cased.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1_000_000:
        value = f"{value:06d}"
    if not isinstance(value, str) or not _CODE.fullmatch(value.strip().upper()):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
        raise ValueError(f"{shown} is not a 6-character stock code such as 005930")
    return value.strip().upper()


def is_stock_code(value: str) -> bool:
    """Already a code as stored (no padding or case to fix)."""
    return bool(_CODE.fullmatch(value))


def as_stock_code(word: str) -> str | None:
    """The code ``word`` means, or None."""
    try:
        return stock_code(word)
    except ValueError:
        return None


StockCode = Annotated[str, BeforeValidator(stock_code)]
"""A pydantic field holding a stock code (config ``watch``, rule ``tickers``, rule tests)."""
