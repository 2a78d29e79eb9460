"""Numbers as a Korean trader writes and reads them: won in 억/조, shares with separators."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

from bot.ticks import VALUE_FIELDS

_BIG = {"조": 10**12, "억": 10**8, "만": 10**4}  # each closes a group of four digits
_SMALL = {"천": 1000, "백": 100, "십": 10}  # within a group: 3천만 = 3,000 x 만
_TOKEN = re.compile(  # commas only between groups of three digits: 1,5억 is a mistake, not 15억
    r"(?P<num>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9](?:_?[0-9])*)(?:\.[0-9]+)?)"
    r"|(?P<unit>[조억만천백십])|\s+"
)
UNIT_WORDS = {"원": "won", "주": "shares"}


class NotAnAmount(ValueError):
    """Text that is no number at all (other ValueErrors say what is wrong with an amount)."""


def unit_of(text: str) -> str | None:
    """The unit word an amount ends with (원 or 주), if any."""
    last = text.strip()[-1:]
    return last if last in UNIT_WORDS else None


def parse_korean(text: str) -> tuple[Decimal, str | None]:
    """``"1억5000만원"`` -> (150000000, "원"); ``"-3천만"``, ``"1.5조"``, ``"10_000"`` too.

    Returns the number and its trailing unit word (원, 주) if any. Raises NotAnAmount, or
    ValueError for an amount written wrong (units out of order).
    """
    unit = unit_of(text)
    body = text.strip().removesuffix(unit or "").strip()
    sign = -1 if body.startswith("-") else 1
    body = body[1:].strip() if body[:1] in ("+", "-") else body
    total, position = Decimal(0), 0
    group: Decimal | None = None  # the current group's value before its big unit, if written
    pending: Decimal | None = None  # a number not yet followed by a unit
    last_big = last_small = 10**13  # units must come from big to small
    with localcontext() as exact:
        exact.prec = 60  # whole numbers stay exact (the default keeps 28 digits)
        for token in _TOKEN.finditer(body):
            if token.start() != position:
                break  # something that is neither a number nor a unit
            position = token.end()
            number, word = token.group("num"), token.group("unit")
            if number is not None:
                if pending is not None:
                    raise ValueError(f"{text!r}: two numbers in a row")
                pending = Decimal(number.replace(",", "").replace("_", ""))
                continue
            if word is None:
                continue  # blanks between the parts
            size = _SMALL.get(word) or _BIG[word]
            if size >= (last_small if word in _SMALL else last_big):
                raise ValueError(
                    f"{text!r}: write the units from big to small (조 억 만, 천 백 십)"
                )
            if word in _SMALL:  # 3천 = 3 x 1000; 천 alone = 1000
                group = (group or 0) + (Decimal(1) if pending is None else pending) * size
                last_small = size
            else:  # 5억 = 5 x 10^8; 억 alone = 10^8
                written = group is not None or pending is not None
                total += ((group or 0) + (pending or 0) if written else 1) * size
                group, last_big, last_small = None, size, 10**13
            pending = None
        if position != len(body) or not body:
            raise NotAnAmount(f"{text!r} is not a number")
        return sign * (total + (group or 0) + (pending or 0)), unit


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
