"""KIS's stock master files (``kospi_code.mst``, ``kosdaq_code.mst``): read and written.

The layout, as KIS's own samples read it (koreainvestment/open-trading-api, stocks_info/): cp949
text, one record a line, lines split on ``\\n`` only. A record is the short code (9 characters:
the 6-character code, padded), the ISIN (12), the Korean name (whatever lies between), then a
fixed tail (227 characters for KOSPI, 221 for KOSDAQ) of fixed-width fields: the group code
first (ST stock, EF ETF, …), the halt and warning flags, the previous day's market cap.

The tail is ASCII, so it is cut by bytes from the line's end and the name alone is decoded.
A record that does not fit the layout makes the whole file unusable (``MasterError``, with the
line): a damaged file must never replace a good one. Records whose code is no 6-character code
(ETNs' ``Q`` codes, say) are skipped: the bot cannot watch them anyway.

``write_master`` produces the same layout (the simulator serves it; tests generate files).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from bot.codes import is_stock_code
from bot.market.names import Listing

ENCODING = "cp949"
_CODE_FIELD = 9
_ISIN_FIELD = 12
_HEAD = _CODE_FIELD + _ISIN_FIELD
_ISIN = re.compile(rb"[A-Z]{2}[0-9A-Z]{10}")
_GROUP = re.compile(rb"[0-9A-Z]{2}")
_FLAG = frozenset(b"YN ")

#: Market warning codes (시장경고구분): 00 none.
WARNINGS = {"01": "투자주의", "02": "투자경고", "03": "투자위험"}


class MasterError(ValueError):
    """A master file that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the fields this bot reads sit in one market's tail (offsets into the tail)."""

    market: str
    member: str  # the file inside the zip, and the zip's name without ``.zip``
    tail: int
    halted: int
    liquidation: int  # 정리매매: the last days before delisting
    administrative: int  # 관리종목
    warning: int  # two characters, WARNINGS
    market_cap: int  # nine digits, 억 won

    @property
    def zip_name(self) -> str:
        return f"{self.member}.zip"


KOSPI = Layout("KOSPI", "kospi_code.mst", 227, 60, 61, 62, 63, 212)
KOSDAQ = Layout("KOSDAQ", "kosdaq_code.mst", 221, 55, 56, 57, 58, 206)
LAYOUTS = (KOSPI, KOSDAQ)


def parse_master(data: bytes, layout: Layout) -> list[Listing]:
    """Every listing of one master file; MasterError for a damaged or truncated one."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        raise MasterError(f"{layout.member}: the last line has no end: the file is truncated")
    listings = [
        listing
        for number, line in enumerate(lines, 1)
        if (listing := _record(line.removesuffix(b"\r"), layout, number)) is not None
    ]
    if not listings:
        raise MasterError(f"{layout.member}: no stock in the file")
    return listings


def _record(line: bytes, layout: Layout, number: int) -> Listing | None:
    where = f"{layout.member} line {number}"
    if len(line) <= _HEAD + layout.tail:
        raise MasterError(
            f"{where}: {len(line)} bytes, a record has more than {_HEAD + layout.tail}"
        )
    head, tail = line[: -layout.tail], line[-layout.tail :]
    code = head[:_CODE_FIELD].decode("ascii", "replace").strip()
    isin = head[_CODE_FIELD:_HEAD]
    if not _ISIN.fullmatch(isin) or not _GROUP.fullmatch(tail[:2]):
        raise MasterError(f"{where}: not a record of the {layout.market} layout")
    flags = (tail[layout.halted], tail[layout.liquidation], tail[layout.administrative])
    if any(flag not in _FLAG for flag in flags):
        raise MasterError(f"{where}: the halt and warning flags are not Y/N")
    try:
        name = head[_HEAD:].decode(ENCODING).strip()
    except UnicodeDecodeError:
        raise MasterError(f"{where}: the name is not {ENCODING} text") from None
    if not name:
        raise MasterError(f"{where}: the record has no name")
    if not is_stock_code(code):
        return None  # an ETN's Q code and the like: not a code the feed takes
    return Listing(
        code=code,
        name=name,
        market=layout.market,
        group=tail[:2].decode("ascii"),
        warning=_warning(tail, layout),
        halted=tail[layout.halted] == ord("Y"),
        isin=isin.decode("ascii"),
        market_cap=_number(tail[layout.market_cap : layout.market_cap + 9]),
    )


def _warning(tail: bytes, layout: Layout) -> str | None:
    words = []
    warning = WARNINGS.get(tail[layout.warning : layout.warning + 2].decode("ascii", "replace"))
    if warning is not None:
        words.append(warning)
    if tail[layout.administrative] == ord("Y"):
        words.append("관리종목")
    if tail[layout.liquidation] == ord("Y"):
        words.append("정리매매")
    return " · ".join(words) or None


def _number(field: bytes) -> int | None:
    text = field.strip()
    return int(text) if text.isdigit() else None


# -- zips ----------------------------------------------------------------------------------------


def unzip_master(blob: bytes, layout: Layout, max_bytes: int) -> bytes:
    """The master file inside a downloaded zip, at most ``max_bytes`` once uncompressed (a zip
    bomb is refused before it is inflated); MasterError for anything else."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            try:
                info = archive.getinfo(layout.member)
            except KeyError:
                raise MasterError(f"{layout.zip_name}: no {layout.member} inside") from None
            if info.file_size > max_bytes:
                raise MasterError(
                    f"{layout.zip_name}: {layout.member} is {info.file_size} bytes, "
                    f"more than the {max_bytes} allowed"
                )
            with archive.open(info) as member:
                data = member.read(max_bytes + 1)  # the header's size may lie
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, MasterError):
            raise
        raise MasterError(f"{layout.zip_name}: not a usable zip ({exc})") from None
    if len(data) > max_bytes:
        raise MasterError(f"{layout.zip_name}: {layout.member} is more than {max_bytes} bytes")
    return data


def zip_master(data: bytes, layout: Layout) -> bytes:
    """A zip holding one master file, as KIS publishes it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(layout.member, data)
    return out.getvalue()


# -- writing (the simulator, tests) --------------------------------------------------------------


def write_master(listings: Iterable[Listing], layout: Layout) -> bytes:
    """The master file of ``listings`` in ``layout``: what KIS would publish for them."""
    return b"".join(_line(listing, layout) + b"\n" for listing in listings)


def _line(listing: Listing, layout: Layout) -> bytes:
    tail = bytearray(b" " * layout.tail)
    tail[:2] = listing.group.encode("ascii")[:2].ljust(2)
    warning = next(
        (code for code, word in WARNINGS.items() if word in (listing.warning or "")), None
    )
    tail[layout.warning : layout.warning + 2] = (warning or "00").encode()
    words = listing.warning or ""
    for offset, on in (
        (layout.halted, listing.halted),
        (layout.liquidation, "정리매매" in words),
        (layout.administrative, "관리종목" in words),
    ):
        tail[offset] = ord("Y" if on else "N")
    cap = listing.market_cap or 0
    tail[layout.market_cap : layout.market_cap + 9] = f"{cap:09d}".encode()
    isin = listing.isin or isin_of(listing.code)
    head = listing.code.ljust(_CODE_FIELD) + isin.ljust(_ISIN_FIELD)
    return head.encode("ascii") + listing.name.encode(ENCODING) + b" " + bytes(tail)


def isin_of(code: str) -> str:
    """The ISIN KRX gives a common share: KR7 + code + 00 + check digit (Luhn over digits)."""
    body = f"KR7{code}00"
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return body + str((10 - total % 10) % 10)
