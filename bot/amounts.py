"""Numbers as a Korean trader reads them: won in 억/조, shares with thousands separators."""

from __future__ import annotations

from bot.ticks import VALUE_FIELDS

_EOK = 100_000_000  # 1억 = 10^8 won
_JO = 10_000 * _EOK  # 1조 = 10^12 won


def _trim(number: float, decimals: int) -> str:
    text = f"{number:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_krw(value: int) -> str:
    """Won as a trader reads them: ``12_350_000_000`` -> ``123.5억``, 1.23조, 5.5만원, 900원."""
    sign = "-" if value < 0 else ""
    size = abs(value)
    if size >= _JO:
        return f"{sign}{_trim(size / _JO, 2)}조"
    if size >= _EOK:
        return f"{sign}{_trim(size / _EOK, 1)}억"
    if size >= 10_000:
        return f"{sign}{_trim(size / 10_000, 1)}만원"
    return f"{sign}{size:,}원"


def format_shares(value: int) -> str:
    """``-224036`` -> ``-224,036주``."""
    return f"{value:,}주"


def format_field(field: str, value: int) -> str:
    """A column's value in its unit: won fields as 억/조, the rest as shares."""
    return format_krw(value) if field in VALUE_FIELDS else format_shares(value)
