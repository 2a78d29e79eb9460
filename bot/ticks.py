"""Ticks and KIS real-time frame parsing: pure, no I/O.

A data frame is ``flag|tr_id|count|payload``; the payload holds ``count`` records of 11 fields
each, all joined by ``^`` (KIS protocol §4-5). A numeric field is ASCII digits with an optional
leading ``-``, within int64 (what the database stores); anything else makes its record malformed.

Parsing is on the hot path, so the usual frame costs a split, a few substring checks over the
whole payload, then per record nine length checks, nine ``int()`` calls and a tuple. Whatever
that fast path is not sure of (a new time, a long or odd number) is parsed again by the strict
path, which alone decides what is malformed and says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple

KST = timezone(timedelta(hours=9), "KST")

#: The 11 columns of H0UNPGM0 / H0STPGM0 / H0NXPGM0, in wire order.
COLUMNS: tuple[str, ...] = (
    "MKSC_SHRN_ISCD",  # ticker
    "STCK_CNTG_HOUR",  # HHMMSS, KST
    "SELN_CNQN",  # program sell volume, day-cumulative
    "SELN_TR_PBMN",  # program sell value (KRW), day-cumulative
    "SHNU_CNQN",  # program buy volume
    "SHNU_TR_PBMN",  # program buy value (KRW)
    "NTBY_CNQN",  # net-buy volume = SHNU_CNQN - SELN_CNQN
    "NTBY_TR_PBMN",  # net-buy value = SHNU_TR_PBMN - SELN_TR_PBMN
    "SELN_RSQN",  # program sell order-book remainder
    "SHNU_RSQN",  # program buy order-book remainder
    "WHOL_NTBY_QTY",  # whole net-bid remainder = SHNU_RSQN - SELN_RSQN
)
RECORD_WIDTH = len(COLUMNS)
#: The nine numeric columns, by KIS name, in wire order.
NUMERIC_FIELDS: tuple[str, ...] = COLUMNS[2:]
#: Columns whose unit is KRW (formatted as 억/조), the rest are shares.
VALUE_FIELDS = frozenset({"SELN_TR_PBMN", "SHNU_TR_PBMN", "NTBY_TR_PBMN"})
TR_IDS = ("H0UNPGM0", "H0STPGM0", "H0NXPGM0")

_FIRST_NUMERIC = 4  # index in Tick of SELN_CNQN
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Tick(NamedTuple):
    """One program-trading record, typed. Numeric fields keep KIS's names, lower-cased."""

    ticker: str
    day: date  # trading date, KST
    hhmmss: str  # STCK_CNTG_HOUR as received
    seconds: int  # seconds since midnight KST of `day`
    seln_cnqn: int
    seln_tr_pbmn: int
    shnu_cnqn: int
    shnu_tr_pbmn: int
    ntby_cnqn: int
    ntby_tr_pbmn: int
    seln_rsqn: int
    shnu_rsqn: int
    whol_ntby_qty: int

    @property
    def time(self) -> datetime:
        """The tick's time: trading date + STCK_CNTG_HOUR, in KST."""
        return datetime.combine(self.day, time(), KST) + timedelta(seconds=self.seconds)

    def value(self, field: str) -> int:
        """A numeric column by its KIS name (e.g. ``NTBY_TR_PBMN``)."""
        return self[FIELD_INDEX[field]]  # type: ignore[return-value]  # a numeric column

    def columns(self) -> dict[str, int | str]:
        """All 11 columns by KIS name, as received (numbers as ints)."""
        numbers: tuple[int, ...] = self[_FIRST_NUMERIC:]  # type: ignore[assignment]
        return dict(zip(COLUMNS, (self.ticker, self.hhmmss, *numbers), strict=True))


#: KIS numeric column name -> index into Tick.
FIELD_INDEX: dict[str, int] = {name: _FIRST_NUMERIC + i for i, name in enumerate(NUMERIC_FIELDS)}


class FrameError(ValueError):
    """A frame or record that cannot be used. ``kind`` groups errors for rate-limited logging."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_new = tuple.__new__  # builds NamedTuples without their Python-level __new__ (hot path)


class Frame(NamedTuple):
    """A data frame's envelope: ``flag|tr_id|count|payload``."""

    encrypted: bool
    tr_id: str
    records: int  # how many records the payload holds
    payload: str

    def text(self) -> str:
        """The frame on the wire, as ``split_frame`` reads it."""
        return f"{int(self.encrypted)}|{self.tr_id}|{self.records:03d}|{self.payload}"


_COUNTS: dict[str, int] = {}  # record counts seen -> their value: at most 11,110 entries


def split_frame(text: str) -> Frame:
    """Split a data frame (first character 0 or 1) into its envelope. Raises FrameError."""
    return _new(Frame, envelope(text))


def envelope(text: str) -> tuple[bool, str, int, str]:
    """``split_frame``'s fields as a plain tuple (a replay's hot path: a NamedTuple costs as
    much to make as the split). Raises FrameError."""
    parts = text.split("|", 3)
    if len(parts) != 4 or parts[0] not in ("0", "1"):
        raise FrameError("envelope", f"not a data frame: {text[:60]!r}")
    flag, tr_id, count_text, payload = parts
    return flag == "1", tr_id, _COUNTS.get(count_text) or _record_count(count_text), payload


def _record_count(count_text: str) -> int:
    """ "003" -> 3 (remembered: int() is dear on the hot path). Raises FrameError."""
    count = int(count_text) if count_text.isascii() and count_text.isdigit() else 0
    if count < 1:
        raise FrameError("envelope", f"bad record count {count_text[:10]!r}")
    if len(count_text) <= 4:
        _COUNTS[count_text] = count
    return count


_SECONDS: dict[str, int] = {}  # valid HHMMSS -> seconds: at most 86,400 entries


def hhmmss_seconds(hhmmss: str) -> int:
    """``"092237"`` -> seconds since midnight. Raises FrameError when it is not a valid time."""
    seconds = _SECONDS.get(hhmmss)
    if seconds is not None:
        return seconds
    if len(hhmmss) != 6 or not (hhmmss.isascii() and hhmmss.isdigit()):
        raise FrameError("time", f"bad time {hhmmss[:10]!r}")
    h, m, s = int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:])
    if h > 23 or m > 59 or s > 59:
        raise FrameError("time", f"bad time {hhmmss!r}")
    seconds = _SECONDS[hhmmss] = h * 3600 + m * 60 + s
    return seconds


_NUMBER = re.compile(r"-?[0-9]+")  # in a str pattern, [0-9] is ASCII only
_SAFE_LENGTH = 18  # a number of at most 18 characters fits int64, whatever its digits
_INT64_LENGTH = len(str(INT64_MIN))
_SHOWN = 24  # characters of a bad value quoted in an error


def parse_number(text: str, ticker: str = "") -> int:
    """A numeric field: ASCII digits with an optional leading ``-``, within int64.

    Raises FrameError("number") for anything else, e.g. what ``int()`` forgives: non-ASCII
    digits, ``_``, ``+`` and surrounding spaces.
    """
    if not _NUMBER.fullmatch(text):
        raise FrameError("number", f"not an integer in {ticker!r}: {text[:_SHOWN]!r}")
    # Longer than "-9223372036854775808" is out of range: no int() of a huge text.
    value = int(text) if len(text) <= _INT64_LENGTH else None
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        raise FrameError("number", f"value beyond int64 in {ticker!r}: {text[:_SHOWN]!r}")
    return value


def parse_record(fields: Sequence[str], day: date) -> Tick:
    """One record's first 11 fields -> a Tick, checked strictly. Raises FrameError."""
    ticker, hhmmss, *numbers = fields[:RECORD_WIDTH]
    if not ticker:
        raise FrameError("ticker", "empty ticker")
    seconds = hhmmss_seconds(hhmmss)
    values = [parse_number(text, ticker) for text in numbers]
    return _new(Tick, (ticker, day, hhmmss, seconds, *values))


def parse_records(
    payload: str,
    count: int,
    day: date,
    errors: list[FrameError] | None = None,
    widths: list[int] | None = None,
) -> list[Tick]:
    """Turn a plain payload of ``count`` records into ticks.

    A bad record is skipped (and appended to ``errors`` when given); a payload whose field count
    is not a multiple of ``count`` raises FrameError. When the stride is wider than 11 (KIS added
    columns), the first 11 fields of each record are used, and the stride is appended to
    ``widths`` when given.

    This is the hot path: what it is not sure of goes to parse_record, which decides.
    """
    fields = payload.split("^")
    stride = len(fields) // count  # no divmod(): a call and a tuple less, per frame
    if stride * count != len(fields) or stride < RECORD_WIDTH:
        raise FrameError(
            "fields", f"{len(fields)} fields do not make {count} records of {RECORD_WIDTH}"
        )
    records: Iterable[Sequence[str]]
    if stride == RECORD_WIDTH:
        # zip builds the 11-tuples in C (the length is a whole multiple: no strict=, whose
        # keyword costs as much as a few records' checks)
        field = iter(fields)
        records = zip(field, field, field, field, field, field, field, field, field, field, field)  # noqa: B905
    else:
        records = (fields[start : start + RECORD_WIDTH] for start in range(0, len(fields), stride))
        if widths is not None:
            widths.append(stride)
    ticks: list[Tick] = []
    append = ticks.append
    # In ASCII text (isascii() is free: CPython knows it), int() forgives only "+", "_" and
    # whitespace besides -?[0-9]+. Without any, a number of at most _SAFE_LENGTH characters is
    # exactly what int() reads, and it fits int64: only longer ones need a closer look.
    if not (
        payload.isascii()
        and "_" not in payload
        and "+" not in payload
        and " " not in payload
        and "\t" not in payload
        and "\n" not in payload
        and "\r" not in payload
        and "\v" not in payload
        and "\f" not in payload
    ):
        for record in records:
            _append_checked(record, day, append, errors)
        return ticks
    new, seconds, size, safe = _new, _SECONDS, len, _SAFE_LENGTH  # bound once: the hot loop
    for ticker, hhmmss, a, b, c, d, e, f, g, h, i in records:
        try:
            if (
                not ticker
                or size(a) > safe
                or size(b) > safe
                or size(c) > safe
                or size(d) > safe
                or size(e) > safe
                or size(f) > safe
                or size(g) > safe
                or size(h) > safe
                or size(i) > safe
            ):
                raise _Recheck
            append(new(Tick, (ticker, day, hhmmss, seconds[hhmmss], int(a), int(b), int(c),
                              int(d), int(e), int(f), int(g), int(h), int(i))))  # fmt: skip
        except (_Recheck, KeyError, ValueError):  # a time not seen yet, or something odd
            _append_checked((ticker, hhmmss, a, b, c, d, e, f, g, h, i), day, append, errors)
    return ticks


class _Recheck(Exception):
    """The fast path is not sure of a record: parse_record looks at it."""


def _append_checked(
    record: Sequence[str],
    day: date,
    append: Callable[[Tick], None],
    errors: list[FrameError] | None,
) -> None:
    try:
        append(parse_record(record, day))
    except FrameError as exc:
        if errors is not None:
            errors.append(exc)


def parse_frame(text: str, day: date, errors: list[FrameError] | None = None) -> list[Tick]:
    """Parse a plain data frame into ticks of trading date ``day``.

    Encrypted frames (flag 1) need the subscription's key: decrypt the payload first
    (bot.kis.crypto) and call parse_records.
    """
    frame = split_frame(text)
    if frame.encrypted:
        raise FrameError("encrypted", "encrypted frame: decrypt the payload before parsing")
    return parse_records(frame.payload, frame.records, day, errors)


def today_kst() -> date:
    """The current date in Korea."""
    return datetime.now(KST).date()
