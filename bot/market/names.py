"""The listed stocks and their names: what turns ``005930`` into ``삼성전자(005930)``.

A ``Directory`` is immutable; the bot swaps in a new one when a fresh master file is loaded. An
empty directory (no master file yet, or none to be had) labels stocks by their codes alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Listing:
    """One listed stock, as KIS's master files describe it."""

    code: str  # the 6-character short code
    name: str  # the Korean name, e.g. 삼성전자
    market: str  # "KOSPI" or "KOSDAQ"
    group: str = "ST"  # KIS's group code: ST stock, EF ETF, …
    warning: str | None = None  # a market warning, in Korean words, when there is one
    halted: bool = False  # trading halted


class Directory:
    """Listings by code; ``label`` is how a stock is shown to a person."""

    __slots__ = ("_by_code",)

    def __init__(self, listings: Iterable[Listing] = ()) -> None:
        self._by_code = {listing.code: listing for listing in listings}

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterable[Listing]:
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
