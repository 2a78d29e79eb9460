"""Recorded frames: ``ISO-8601-timestamp<TAB>raw frame`` per line, one file per KST day.

Written by ``pgmbot run --record DIR`` (and by the live bot, to rebuild engine state after a
restart); read by ``pgmbot replay`` and the simulator's replay mode. Lines without a tab are raw
frames with no timestamp. Gzip files are read transparently.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO, TextIO

from bot.ticks import KST


def recording_path(directory: Path, when: datetime) -> Path:
    """The day file for a receive time: ``DIR/YYYY-MM-DD.tsv`` (KST date)."""
    return directory / f"{when.astimezone(KST).date().isoformat()}.tsv"


class Recorder:
    """Appends raw data frames with their receive time; switches files at KST midnight.

    Lines are buffered by the OS file object and flushed by ``flush()`` (the feed calls it
    periodically) and on ``close()``: a crash loses at most the last unflushed lines.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._path: Path | None = None
        self._file: TextIO | None = None

    def write(self, frame: str, received: datetime) -> None:
        path = recording_path(self.directory, received)
        if path != self._path:
            self.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8", newline="\n")
            self._path = path
        assert self._file is not None
        # A frame never contains a line break; guard anyway so one bad frame cannot split a
        # line (the reader splits at \r too).
        line = frame.replace("\n", " ").replace("\r", " ")
        self._file.write(f"{received.astimezone(KST).isoformat()}\t{line}\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._path = None


_GZIP_MAGIC = b"\x1f\x8b"


class _OwnedGzip(gzip.GzipFile):
    """A GzipFile that also closes the file it reads (GzipFile leaves a given file open)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_text(path: str | Path) -> IO[str]:
    """Open a recording, once (a pipe such as ``<(cmd)`` works): ``-`` is stdin; gzip data,
    known by its first bytes whatever the name, is gunzipped; bad UTF-8 is replaced. A damaged
    gzip file raises EOFError, OSError or zlib.error when read."""
    raw: BinaryIO = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
    packed = isinstance(raw, io.BufferedReader) and raw.peek(2)[:2] == _GZIP_MAGIC
    data: BinaryIO | gzip.GzipFile = _OwnedGzip(raw) if packed else raw
    return io.TextIOWrapper(data, encoding="utf-8", errors="replace")


def parse_line(line: str) -> tuple[datetime | None, str]:
    """``timestamp<TAB>frame`` -> (aware datetime, frame); a raw frame -> (None, frame).

    Raises ValueError when the timestamp is not ISO 8601. Naive timestamps are taken as KST.
    """
    line = line.rstrip("\r\n")
    stamp, tab, frame = line.partition("\t")
    if not tab:
        return None, line
    when = datetime.fromisoformat(stamp)
    return (when if when.tzinfo else when.replace(tzinfo=KST)), frame


def read_recording(path: str | Path) -> Iterator[tuple[int, datetime | None, str]]:
    """Yield ``(line number, receive time or None, raw frame)`` for every non-blank line.

    A line whose timestamp does not parse is yielded with the whole line as the frame and no time,
    so the caller reports it as malformed with its line number.
    """
    with open_text(path) as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                when, frame = parse_line(line)
            except ValueError:
                yield number, None, line.rstrip("\r\n")
                continue
            yield number, when, frame
