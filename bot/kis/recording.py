"""Recorded frames: ``ISO-8601-timestamp<TAB>raw frame`` per line, one file per KST day.

Written by the live bot (its write-ahead log: a restart rebuilds the engine's state from it) and by
``pgmbot run --record DIR``; read by ``pgmbot replay`` and the simulator's replay mode. Lines
without a tab are raw frames with no timestamp. Gzip files are read transparently.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from bot.ticks import KST

log = logging.getLogger(__name__)

MAX_UNWRITTEN = 256 << 20  # bytes of frames held while the disk refuses them, then given up


def recording_path(directory: Path, when: datetime) -> Path:
    """The day file for a receive time: ``DIR/YYYY-MM-DD.tsv`` (KST date)."""
    return day_path(directory, when.astimezone(KST).date())


def day_path(directory: Path, day: date) -> Path:
    """A trading day's recording while it is written: ``DIR/YYYY-MM-DD.tsv`` (housekeeping
    gzips it to ``.tsv.gz`` after the day)."""
    return Path(directory) / f"{day.isoformat()}.tsv"


def record_line(frame: str, received: datetime) -> str:
    """One recording line. A frame never holds a line break; guard anyway so that one bad frame
    cannot split a line (the reader splits at \\r too)."""
    line = frame.replace("\n", " ").replace("\r", " ")
    return f"{received.astimezone(KST).isoformat()}\t{line}\n"


@dataclass
class _Day:
    """One day file: lines not yet handed to the OS, and the file's size once they are."""

    path: Path
    size: int  # bytes in the file plus bytes buffered: the offset after the last line
    lines: list[str] = field(default_factory=list)
    head: bytes = b""  # what a failed write left over, written before ``lines``
    pending: int = 0  # bytes of ``head`` and ``lines``


class RecordingError(OSError):
    """Frames could not be handed to the OS (disk full, directory gone); they are kept."""


class Recorder:
    """Appends raw data frames with their receive time; a new file at each KST midnight.

    The recording is the engine's write-ahead log. ``write()`` runs on the event loop and only
    buffers; ``flush()``, from any thread, hands what is buffered to the OS (``os.write``, no
    fsync: it survives a crash of the process, not a power cut). The alert writer calls
    ``flush()`` in its thread before every commit, so no alert is stored before the frames it
    came from are recorded, and a rebuild reproduces exactly what was fired. A failed write keeps
    the frames (``RecordingError``) and is tried again by the next flush; beyond
    ``max_unwritten`` bytes they are given up (logged): the day's recording then has a gap.
    """

    def __init__(self, directory: Path, *, max_unwritten: int = MAX_UNWRITTEN) -> None:
        self.directory = Path(directory)
        self.max_unwritten = max_unwritten
        self._lock = threading.Lock()  # guards _days and _sizes (the loop and flushers)
        self._flushing = threading.Lock()  # one flusher at a time, so lines keep their order
        self._days: list[_Day] = []  # oldest first; the last one takes new lines
        self._sizes: dict[Path, int] = {}  # the file sizes seen, for days no longer buffered
        self._fds: dict[Path, int] = {}  # open files, used by flushers only
        self.given_up = 0  # bytes of frames dropped after the disk refused them too long

    def write(self, frame: str, received: datetime) -> None:
        """Buffer one frame (on the loop: no I/O but a stat at the first line of a day)."""
        line = record_line(frame, received)
        size = len(line) if line.isascii() else len(line.encode())
        path = recording_path(self.directory, received)
        with self._lock:
            day = self._days[-1] if self._days else None
            if day is None or day.path != path:
                day = _Day(path, self._sizes.get(path) or _file_size(path))
                self._days.append(day)
            day.lines.append(line)
            day.size += size
            day.pending += size
            self._sizes[path] = day.size

    def end_offset(self, path: Path) -> int:
        """The size ``path`` has once everything written so far is flushed."""
        with self._lock:
            return self._sizes.get(path) or _file_size(path)

    def flush(self) -> None:
        """Hand every buffered line to the OS, in order; raises RecordingError when it cannot
        (the lines stay buffered), unless they are beyond ``max_unwritten`` and given up."""
        with self._flushing:
            with self._lock:
                days, self._days = self._days, []
            try:
                while days:
                    self._write_day(days[0])
                    days.pop(0)
            except OSError as exc:
                self._keep(days, exc)
                raise RecordingError(exc.errno, f"cannot record frames: {exc.strerror}") from exc

    def _write_day(self, day: _Day) -> None:
        data = day.head + "".join(day.lines).encode()
        day.lines, day.head, day.pending = [], data, len(data)
        fd = self._fd(day.path)
        while day.head:
            written = os.write(fd, day.head)
            day.head = day.head[written:]
            day.pending = len(day.head)

    def _keep(self, days: list[_Day], exc: OSError) -> None:
        """A write failed: put the unwritten days back in front of what came since."""
        with self._lock:
            self._days = _merge(days, self._days)
            unwritten = sum(day.pending for day in self._days)
            if unwritten > self.max_unwritten:
                self.given_up += unwritten
                log.error(
                    "recording gave up frames bytes=%d error=%r: the day's recording has a gap",
                    unwritten,
                    str(exc),
                )
                self._days = []
                self._sizes.clear()  # measured again from the files

    @property
    def unwritten(self) -> int:
        """Bytes buffered, not yet handed to the OS."""
        with self._lock:
            return sum(day.pending for day in self._days)

    def _fd(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is None:
            for old in self._fds.values():  # a new day: the old file is done
                os.close(old)
            self._fds.clear()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._fds[path] = fd
        return fd

    def close(self) -> None:
        """Flush what can be, close the file. Never raises: what cannot be written is logged."""
        try:
            self.flush()
        except RecordingError as exc:
            log.error("recording lost on close bytes=%d error=%r", self.unwritten, str(exc))
        with self._flushing:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def _merge(first: list[_Day], then: list[_Day]) -> list[_Day]:
    """``first``'s days, then ``then``'s, one entry per file."""
    if first and then and first[-1].path == then[0].path:
        first[-1].lines += then[0].lines
        first[-1].size = then[0].size
        first[-1].pending += then[0].pending
        then = then[1:]
    return first + then


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # not there (yet): the flush that creates it reports any real problem
        return 0


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
