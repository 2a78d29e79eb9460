"""Recorded frames: ``ISO-8601-timestamp<TAB>raw frame`` per line, one file per KST day.

Written by ``pgmbot run --record DIR`` (and by the live bot, to rebuild engine state after a
restart); read by ``pgmbot replay`` and the simulator's replay mode. Lines without a tab are raw
frames with no timestamp. Gzip files are read transparently.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO

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


class _PutBack(io.RawIOBase):
    """A stream whose first bytes were read to look at them, and are served again first."""

    def __init__(self, head: bytes, rest: io.BufferedReader) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._head[: len(buffer)] or self._rest.read1(len(buffer))
        self._head = self._head[len(data) :]
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._rest.close()
        finally:
            super().close()


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
    gzip file raises EOFError, OSError or zlib.error when read. Closing it leaves stdin open."""
    stdin = str(path) == "-"  # file descriptor 0, left open on close
    raw = open(0 if stdin else path, "rb", closefd=not stdin)  # noqa: SIM115
    head = raw.read(2)  # a pipe may hand over one byte at a time: read, then put back
    stream: BinaryIO = io.BufferedReader(_PutBack(head, raw), 1 << 16)
    data: BinaryIO | gzip.GzipFile = _OwnedGzip(stream) if head == _GZIP_MAGIC else stream
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
