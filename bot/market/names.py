"""The listed stocks and their names: what turns ``005930`` into ``삼성전자(005930)``.

A ``Directory`` is immutable; the bot swaps in a new one when a fresh master file is loaded. An
empty directory (no master file yet, or none to be had) labels stocks by their codes alone.

``resolve`` is what /watch and /unwatch do with a word: an exact code, an exact name, else the
one name that starts with it, else a short list of candidates. Names are compared without
spaces and case (``sk하이닉스`` is SK하이닉스). ``search`` is /find.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from bot.codes import as_stock_code

CANDIDATES = 8  # most candidates an ambiguous word lists


@dataclass(frozen=True, slots=True)
class Listing:
    """One listed stock, as KIS's master files describe it."""

    code: str  # the 6-character short code
    name: str  # the Korean name, e.g. 삼성전자
    market: str  # "KOSPI" or "KOSDAQ"
    group: str = "ST"  # KIS's group code: ST stock, EF ETF, …
    warning: str | None = None  # a market warning, in Korean words, when there is one
    halted: bool = False  # trading halted
    isin: str = ""  # KR7005930003
    market_cap: int | None = None  # the previous day's, in 억 won


class Directory:
    """Listings by code; ``label`` is how a stock is shown to a person."""

    __slots__ = ("_by_code", "_by_key", "complete")

    def __init__(self, listings: Iterable[Listing] = (), *, complete: bool = True) -> None:
        # complete: every market's file is behind it, so a code it lacks is not listed at all
        # (with one market missing, such a code may well be listed there: it is not refused).
        self.complete = complete
        self._by_code = {listing.code: listing for listing in listings}
        # Biggest first: where several names match, the one a trader most likely means leads.
        ranked = sorted(self._by_code.values(), key=_rank)
        self._by_key = [(name_key(listing.name), listing) for listing in ranked]

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Listing]:
        return iter(self._by_code.values())

    @property
    def loaded(self) -> bool:
        """Whether a master file is behind it (else codes are all the bot knows)."""
        return bool(self._by_code)

    def get(self, code: str) -> Listing | None:
        return self._by_code.get(code)

    def name(self, code: str) -> str | None:
        listing = self._by_code.get(code)
        return None if listing is None else listing.name

    def label(self, code: str) -> str:
        """``삼성전자(005930)``, or the code alone when its name is not known."""
        listing = self._by_code.get(code)
        return code if listing is None else f"{listing.name}({code})"

    def resolve(self, text: str, limit: int = CANDIDATES) -> Resolution:
        """What a word of /watch or /unwatch means (see the module docstring)."""
        word = text.strip()
        code = as_stock_code(word)
        if code is not None:
            listing = self._by_code.get(code)
            if listing is not None or not (self.loaded and self.complete):
                return Resolution(word, Found.STOCK, code, listing)
            return Resolution(word, Found.UNLISTED, code)
        key = name_key(word)
        if not self.loaded or not key:
            return Resolution(word, Found.NOT_A_CODE)
        exact = [listing for name, listing in self._by_key if name == key]
        starting = exact or [listing for name, listing in self._by_key if name.startswith(key)]
        if len(starting) == 1:
            return Resolution(word, Found.STOCK, starting[0].code, starting[0])
        candidates = tuple(starting[:limit]) or tuple(self.search(word, limit))
        if candidates:
            return Resolution(word, Found.AMBIGUOUS, candidates=candidates)
        return Resolution(word, Found.UNKNOWN)

    def search(self, text: str, limit: int = 20) -> list[Listing]:
        """Listings whose name or code holds ``text``: names that start with it first, then
        the others, each biggest first."""
        key = name_key(text)
        if not key:
            return []
        code = key.upper()
        starting: list[Listing] = []
        holding: list[Listing] = []
        for name, listing in self._by_key:
            if name.startswith(key) or listing.code == code:
                starting.append(listing)
            elif key in name or code in listing.code:
                holding.append(listing)
            if len(starting) >= limit:
                break
        return (starting + holding)[:limit]


class Found(Enum):
    """What a word turned out to be."""

    STOCK = "stock"  # ``code`` (and ``listing`` when names are known)
    UNLISTED = "unlisted"  # a well-formed code no master file lists
    AMBIGUOUS = "ambiguous"  # several names fit: ``candidates``
    UNKNOWN = "unknown"  # no name fits
    NOT_A_CODE = "not_a_code"  # no master file loaded, and the word is no code


@dataclass(frozen=True, slots=True)
class Resolution:
    """The answer of ``Directory.resolve``."""

    text: str  # the word as typed (stripped)
    found: Found
    code: str | None = None
    listing: Listing | None = None
    candidates: tuple[Listing, ...] = ()


def name_key(text: str) -> str:
    """A name as compared: without spaces, case folded."""
    return "".join(text.split()).casefold()


def _rank(listing: Listing) -> tuple[int, str]:
    return (-(listing.market_cap or 0), listing.code)


class Names:
    """The directory in use now, one holder shared by everything that shows stocks to people
    (replies, alerts, the console): the app swaps in a fresh Directory when a master file loads,
    and every label after that uses it. Until then labels are bare codes."""

    __slots__ = ("directory",)

    def __init__(self, directory: Directory | None = None) -> None:
        self.directory = directory if directory is not None else Directory()

    def replace(self, directory: Directory) -> None:
        self.directory = directory

    def label(self, code: str) -> str:
        """``삼성전자(005930)``, or the code alone when the current directory does not know it."""
        return self.directory.label(code)
