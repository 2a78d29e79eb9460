"""Getting KIS's master files: downloaded, checked, kept on disk, swapped in as a new Directory.

``MasterFiles.run()`` downloads both files at start and again each trading morning before the
first session (``REFRESH_LEAD`` before it), with httpx's async client, so neither the feed nor a
command waits for it; unzipping and parsing run in a worker thread. A file that downloads and
parses is written to ``cache_dir`` (atomically: a temporary file renamed) and replaces the last
good copy; one that fails is logged and the copy on disk is used instead; with neither, the bot
runs on codes alone and the admins are told once (until a file loads again). Sizes are bounded
twice: the download (``max_download``) and what a zip may inflate to (``max_file``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from bot.market.calendar import MarketCalendar
from bot.market.master import LAYOUTS, Layout, MasterError, parse_master, unzip_master
from bot.market.names import Directory, Listing, Names
from bot.ticks import KST

log = logging.getLogger(__name__)

MAX_DOWNLOAD = 16 << 20  # a zip is ~0.3 MB today
MAX_FILE = 64 << 20  # a master file ~1 MB today
REFRESH_LEAD = timedelta(minutes=30)  # before the day's first session
RETRY = timedelta(minutes=15)  # after a failed download, until the morning's refresh
TIMEOUT = 30.0

Tell = Callable[[str], None]


class DownloadError(Exception):
    """A master file that could not be had from the server."""


class MasterFiles:
    """The current ``Directory`` and how it is kept fresh."""

    def __init__(
        self,
        url: str,
        cache_dir: Path | None,
        calendar: MarketCalendar,
        *,
        tell_admins: Tell | None = None,
        names: Names | None = None,
        no_names_text: str = "",
        max_download: int = MAX_DOWNLOAD,
        max_file: int = MAX_FILE,
        timeout: float = TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(KST),
    ) -> None:
        self.url = url.rstrip("/")
        self.cache_dir = cache_dir
        self.calendar = calendar
        self.tell_admins = tell_admins
        self.no_names_text = no_names_text
        self.max_download = max_download
        self.max_file = max_file
        self.timeout = timeout
        self.clock = clock
        # The holder every label reads; a directory that loads replaces the one it holds.
        self.names = names if names is not None else Names()
        self.loaded = asyncio.Event()  # set once the first refresh is over (names or not)
        self.sources: dict[str, str] = {}  # market -> "download" | "cache" | "none"
        self._told = False
        self._stop = asyncio.Event()

    @property
    def directory(self) -> Directory:
        return self.names.directory

    # -- the task ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Refresh now, then each trading morning, until ``stop()``."""
        while not self._stop.is_set():
            ok = await self.refresh()
            wait = self.next_refresh(self.clock(), failed=not ok) - self.clock()
            log.info("master files next refresh in_seconds=%d", int(wait.total_seconds()))
            try:
                await asyncio.wait_for(self._stop.wait(), max(wait.total_seconds(), 1.0))
            except TimeoutError:
                continue

    def stop(self) -> None:
        self._stop.set()

    def next_refresh(self, now: datetime, *, failed: bool = False) -> datetime:
        """``REFRESH_LEAD`` before the next trading day's first session (today's if still to
        come); after a failure, ``RETRY`` from now if that comes sooner."""
        local = now.astimezone(KST)
        day = local.date()
        candidates = [day, self.calendar.next_trading_day(day)]
        planned = local + timedelta(days=1)
        for candidate in candidates:
            opens = self.calendar.first_open(candidate) if candidate is not None else None
            if opens is not None and opens - REFRESH_LEAD > local:
                planned = opens - REFRESH_LEAD
                break
        return min(planned, local + RETRY) if failed else planned

    # -- one refresh -------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Download both files (the cache for any that fails); swap in the new directory.
        True when both came from the server."""
        listings: list[Listing] = []
        downloaded = 0
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as http:
            for layout in LAYOUTS:
                found, source = await self._one(http, layout)
                self.sources[layout.market] = source
                listings += found
                downloaded += source == "download"
        if listings:
            complete = all(source != "none" for source in self.sources.values())
            self.names.replace(Directory(listings, complete=complete))
            log.info(
                "master files loaded stocks=%d %s",
                len(self.directory),
                " ".join(f"{market}={source}" for market, source in self.sources.items()),
            )
            self._told = False
        elif not self.directory.loaded:
            self._codes_alone()
        self.loaded.set()
        return downloaded == len(LAYOUTS)

    async def load_cache(self) -> None:
        """Names from the copies on disk, at once (the download follows in ``run``)."""
        listings: list[Listing] = []
        complete = True
        for layout in LAYOUTS:
            cached = await asyncio.to_thread(self._cached, layout)
            complete = complete and cached is not None
            listings += cached or []
        if listings:
            self.names.replace(Directory(listings, complete=complete))
            log.info("master files from the cache stocks=%d", len(listings))

    async def _one(self, http: httpx.AsyncClient, layout: Layout) -> tuple[list[Listing], str]:
        url = f"{self.url}/{layout.zip_name}"
        try:
            blob = await self._download(http, url)
            listings = await asyncio.to_thread(self._parse, blob, layout)
        except (DownloadError, MasterError) as exc:
            log.warning(
                "master file not usable market=%s url=%s error=%s", layout.market, url, exc
            )
        else:
            if self.cache_dir is not None:
                try:
                    await asyncio.to_thread(self._store, blob, layout)
                except OSError as exc:
                    log.warning("master file not cached market=%s error=%s", layout.market, exc)
            return listings, "download"
        cached = await asyncio.to_thread(self._cached, layout)
        if cached is not None:
            return cached, "cache"
        current = [s for s in self.directory if s.market == layout.market]
        return current, "memory" if current else "none"

    async def _download(self, http: httpx.AsyncClient, url: str) -> bytes:
        try:
            async with http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise DownloadError(f"HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_download:
                        raise DownloadError(f"more than {self.max_download} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise DownloadError(f"{type(exc).__name__}: {exc}") from None
        return b"".join(chunks)

    def _parse(self, blob: bytes, layout: Layout) -> list[Listing]:
        return parse_master(unzip_master(blob, layout, self.max_file), layout)

    def _store(self, blob: bytes, layout: Layout) -> None:
        assert self.cache_dir is not None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        target = self.cache_dir / layout.zip_name
        partial = target.with_name(target.name + ".part")
        with partial.open("wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)

    def _cached(self, layout: Layout) -> list[Listing] | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / layout.zip_name
        try:
            blob = path.read_bytes()
            return self._parse(blob, layout)
        except FileNotFoundError:
            return None
        except (OSError, MasterError) as exc:
            log.warning("cached master file not usable file=%s error=%s", path, exc)
            return None

    def _codes_alone(self) -> None:
        log.warning("no master file: stocks are known by their codes alone")
        if not self._told and self.tell_admins is not None:
            self._told = True
            self.tell_admins(self.no_names_text)
