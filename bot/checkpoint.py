"""Checkpoints: the engine's state saved with the part of the day's recording it covers.

A restart restores the newest checkpoint and replays only the recording's tail after it, instead
of the whole day (minutes for a busy day). A checkpoint file is

    pgmbot-checkpoint <version> <sha256 of the body> <body length>\\n
    <body: one JSON line of what it covers>\\n<the engine snapshot, bot.engine.snapshot.encode>

written atomically (a temporary file in the same directory, fsync, rename, fsync of the
directory): a crash leaves the old checkpoint or the new one, never a mix. A file that is damaged,
cut short, of another version, or of another recording, day or rule set is refused with the
reason, and the caller replays the whole recording instead (``resume`` does both).

The recording is plain text, ``timestamp<TAB>frame\\n`` per line (bot.kis.recording); offsets are
bytes of that file, always at the start of a line.

Taking one, in a live bot: on the event loop, between two frames, ``Engine.snapshot()``, the
recorder's ``end_offset`` and ``rules_key`` of the rules running; then, off the loop, flush the
recorder (the checkpoint reads the bytes before its offset) and write it, but only once the alerts
fired before the snapshot are committed: a restart replays only what comes after the offset, so
an alert still queued when a checkpoint lands would never be fired again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

import pydantic

from bot.alerts import Alert
from bot.engine.evaluate import Engine
from bot.engine.snapshot import EngineSnapshot, SnapshotError, decode, encode
from bot.kis.recording import open_text, parse_line
from bot.ticks import KST, FrameError, Tick, parse_frame

log = logging.getLogger(__name__)

MAGIC = "pgmbot-checkpoint"
VERSION = 1  # of the file's framing and its JSON line; the snapshot has its own LAYOUT
MAX_BYTES = 256 << 20  # 205 stocks' day takes a few MB; a bigger file is not one of ours
_HEADER_MAX = 200  # bytes: magic, version, a hex digest and a length
_FINGERPRINT_BYTES = 4096  # of the recording, just before the offset
_GZIP_MAGIC = b"\x1f\x8b"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    """An engine snapshot and what it covers: ``offset`` bytes of ``recording``, rules of
    ``rules_key`` (bot.engine.evaluate.rules_key)."""

    snapshot: EngineSnapshot
    recording: Path  # absolute
    offset: int
    rules_key: str
    fingerprint: str  # sha256 of the recording's bytes just before ``offset``


class _Covers(pydantic.BaseModel):
    """The body's first line."""

    model_config = pydantic.ConfigDict(strict=True, extra="forbid", frozen=True)

    recording: str
    offset: int = pydantic.Field(ge=0)
    fingerprint: str
    rules_key: str


def write_checkpoint(
    path: Path, snapshot: EngineSnapshot, *, recording: Path, offset: int, rules_key: str
) -> None:
    """Save ``snapshot`` as covering the first ``offset`` bytes of ``recording`` (which must be
    written that far, ending a line), atomically. One writer at a time per ``path``. Raises
    ValueError when the recording does not reach ``offset``, OSError when the file cannot be
    written (the old checkpoint is then left as it was)."""
    recording = Path(recording).resolve()
    covers = _Covers(
        recording=str(recording),
        offset=offset,
        fingerprint=_fingerprint(recording, offset),
        rules_key=rules_key,
    )
    body = covers.model_dump_json().encode() + b"\n" + encode(snapshot)
    header = f"{MAGIC} {VERSION} {hashlib.sha256(body).hexdigest()} {len(body)}\n".encode()
    if len(header) + len(body) > MAX_BYTES:
        raise ValueError(f"a checkpoint of {len(body)} bytes is more than {MAX_BYTES} allow")
    _write_atomically(Path(path), header + body)


def _fingerprint(recording: Path, offset: int) -> str:
    """The digest of the recording's bytes just before ``offset``, which must end a line."""
    start = max(0, offset - _FINGERPRINT_BYTES)
    with recording.open("rb") as file:
        file.seek(start)
        before = file.read(offset - start)
    if len(before) != offset - start:
        raise ValueError(f"{recording} has fewer than {offset} bytes")
    if before and not before.endswith(b"\n"):
        raise ValueError(f"offset {offset} of {recording} is not at the start of a line")
    return hashlib.sha256(before).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in directory.glob(f"{prefix}*.tmp"):  # left by a crash while writing
        stale.unlink(missing_ok=True)
    fd, temp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)  # the rename itself survives a power cut
    finally:
        os.close(directory_fd)


def load_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint in ``path``. Raises CheckpointError saying why it cannot be used (a
    missing file included)."""
    try:
        with Path(path).open("rb") as file:
            if os.fstat(file.fileno()).st_size > MAX_BYTES:
                raise CheckpointError(f"more than {MAX_BYTES} bytes: not a checkpoint")
            data = file.read(MAX_BYTES + 1)  # it may have grown since
    except OSError as exc:
        raise CheckpointError(f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise CheckpointError(f"more than {MAX_BYTES} bytes: not a checkpoint")
    body = _checked_body(data)
    first, _, engine = body.partition(b"\n")
    try:
        covers = _Covers.model_validate_json(first)
        snapshot = decode(engine)
    except pydantic.ValidationError as exc:
        raise CheckpointError(f"what it covers is unreadable: {exc.errors()[0]['msg']}") from None
    except SnapshotError as exc:
        raise CheckpointError(str(exc)) from None
    return Checkpoint(
        snapshot, Path(covers.recording), covers.offset, covers.rules_key, covers.fingerprint
    )


def _checked_body(data: bytes) -> bytes:
    """The body after the header line, once the header says it is whole and undamaged."""
    header, newline, body = data[:_HEADER_MAX].partition(b"\n")
    fields = header.decode("ascii", "replace").split(" ")
    if not newline or len(fields) != 4 or fields[0] != MAGIC:
        raise CheckpointError("not a pgmbot checkpoint file")
    _, version, digest, length = fields
    if version != str(VERSION):
        raise CheckpointError(f"version {version[:10]!r}, this bot reads version {VERSION}")
    if not length.isdigit():
        raise CheckpointError(f"bad length {length[:20]!r} in the header")
    body = data[len(header) + 1 :]
    if len(body) != int(length):
        what = "cut short" if len(body) < int(length) else "longer than written"
        raise CheckpointError(f"{what}: {len(body)} bytes where the header says {length}")
    if hashlib.sha256(body).hexdigest() != digest:
        raise CheckpointError("damaged: the checksum does not match")
    return body


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint in ``path``, or None when there is none or it is refused (logged)."""
    if not Path(path).exists():
        log.info("checkpoint none file=%s", path)
        return None
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        log.warning("checkpoint refused file=%s reason=%r", path, str(exc))
        return None


def checkpoint_mismatch(checkpoint: Checkpoint, *, recording: Path, rules_key: str) -> str | None:
    """Why ``checkpoint`` cannot serve as the start of ``recording`` under rules of
    ``rules_key``, or None when it can."""
    recording = Path(recording).resolve()
    if checkpoint.recording != recording:
        return f"it covers {checkpoint.recording}, not {recording}"
    if checkpoint.rules_key != rules_key:
        return "the rules changed since it was written"
    try:
        fingerprint = _fingerprint(recording, checkpoint.offset)
    except (OSError, ValueError) as exc:
        return f"the recording does not fit it: {exc}"
    if fingerprint != checkpoint.fingerprint:
        return "the recording before its offset is not the one it was written for"
    return None


class Replayed(NamedTuple):
    """What a replay of (part of) a recording did to an engine."""

    ticks: int  # replayed
    fired: list[tuple[Alert, datetime]]  # in order, each with its frame's receive time
    end_offset: int  # the recording's bytes covered now: the end of the last complete line read
    start_offset: int = 0  # where the replay started: a checkpoint's offset, or 0
    refused: str | None = None  # why a checkpoint there was not used

    @property
    def alerts(self) -> list[Alert]:
        return [alert for alert, _ in self.fired]


def replay_tail(
    engine: Engine,
    recording: Path,
    offset: int,
    *,
    end: int | None = None,
    day: date | None = None,
) -> Replayed:
    """Feed the complete lines of ``recording`` from byte ``offset`` (a line start) to ``end``
    (default: the end of the file as it is now) through ``engine``, as a full replay would.

    A last line without its line break is left out: it was cut while being written. ``day`` is
    the trading date of lines without a timestamp (default: the file's name, YYYY-MM-DD.tsv).
    Bad lines and frames are skipped; the feed reported them when they arrived.
    """
    undated = day or _day_of(Path(recording))
    ticks, fired = 0, []
    with Path(recording).open("rb") as file:
        if file.read(2) == _GZIP_MAGIC:
            raise ValueError(f"{recording} is gzipped: byte offsets do not apply to it")
        size = os.fstat(file.fileno()).st_size
        if offset > size:
            raise ValueError(f"{recording} has fewer than {offset} bytes")
        stop = _last_line_end(file, offset, size if end is None else min(end, size))
        file.seek(offset)
        with _text(file, stop - offset) as lines:
            for line in lines:
                received, parsed = _ticks(line, undated)
                if parsed:
                    fired += [(alert, received) for alert in engine.on_ticks(parsed)]
                    ticks += len(parsed)
    return Replayed(ticks, fired, stop, offset)


def recorded_ticks(
    recording: Path,
    *,
    end: int | None = None,
    day: date | None = None,
    containing: str | None = None,
) -> Iterator[tuple[datetime, list[Tick]]]:
    """The receive time and ticks of each good line of ``recording``, read as ``replay_tail``
    reads it: a plain file's complete lines up to byte ``end`` (default: all), or a gzipped
    file (a past day, housekeeping compressed it) whole. ``day`` as for ``replay_tail``; with
    ``containing``, only lines holding that text are parsed (one stock's day: a substring test
    costs a fraction of a parse)."""
    undated = day or _day_of(Path(recording))
    with Path(recording).open("rb") as file:
        if file.read(2) == _GZIP_MAGIC:
            if end is not None:
                raise ValueError(f"{recording} is gzipped: byte offsets do not apply to it")
            lines: IO[str] = open_text(recording)
        else:
            size = os.fstat(file.fileno()).st_size
            stop = _last_line_end(file, 0, size if end is None else min(end, size))
            file.seek(0)
            lines = _text(file, stop)
        with lines:
            for line in lines:
                if containing is not None and containing not in line:
                    continue
                received, parsed = _ticks(line, undated)
                if parsed:
                    yield received, parsed


def _last_line_end(file: BinaryIO, start: int, stop: int) -> int:
    """The offset after the last line break in bytes ``start`` to ``stop``, or ``start``."""
    position = stop
    while position > start:
        begin = max(start, position - (1 << 16))
        file.seek(begin)
        newline = file.read(position - begin).rfind(b"\n")
        if newline >= 0:
            return begin + newline + 1
        position = begin
    return start


class _Bounded(io.RawIOBase):
    """The next ``length`` bytes of a file and no more (the recording may grow meanwhile)."""

    def __init__(self, file: BinaryIO, length: int) -> None:
        super().__init__()
        self._file = file
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._file.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def _text(file: BinaryIO, length: int) -> io.TextIOWrapper:
    """The next ``length`` bytes as bot.kis.recording reads a recording: bad UTF-8 replaced,
    CR, LF and CRLF ending lines. Closing it leaves ``file`` open."""
    bounded = io.BufferedReader(_Bounded(file, length), 1 << 16)
    return io.TextIOWrapper(bounded, encoding="utf-8", errors="replace")


def _day_of(recording: Path) -> date | None:
    try:
        return date.fromisoformat(recording.name.partition(".")[0])
    except ValueError:
        return None


_NOTHING: tuple[datetime, list[Tick]] = (datetime.min, [])


def _ticks(line: str, undated: date | None) -> tuple[datetime, list[Tick]]:
    """The receive time and ticks of one recording line (none when it holds no good frame).
    A line without a time was received at the midnight of ``undated``."""
    if not line.strip():
        return _NOTHING
    try:
        when, frame = parse_line(line)
    except ValueError:
        when, frame = None, line.rstrip("\r\n")  # as read_recording hands it on
    if when is None:
        if undated is None:
            return _NOTHING  # a frame without a time in a file whose name gives no date either
        when = datetime.combine(undated, datetime.min.time(), KST)
    try:
        return when, parse_frame(frame, when.astimezone(KST).date())
    except FrameError:
        return _NOTHING


def resume(
    engine: Engine,
    *,
    recording: Path,
    checkpoint: Path,
    rules_key: str,
    end: int | None = None,
    day: date | None = None,
) -> Replayed:
    """Rebuild ``engine`` (fresh, with the current rules) for ``recording``: from the checkpoint
    and the tail after it when the checkpoint fits the recording and rules, else the whole
    recording. ``end`` and ``day`` as for ``replay_tail``."""
    if not Path(recording).is_file():
        return Replayed(0, [], 0)
    start, refused = 0, None
    saved = read_checkpoint(checkpoint)
    if saved is not None:
        refused = checkpoint_mismatch(saved, recording=recording, rules_key=rules_key)
        if refused is None and end is not None and saved.offset > end:
            refused = f"it covers {saved.offset} bytes, more than the {end} to replay"
        if refused is None:
            try:
                engine.restore(saved.snapshot)
                start = saved.offset
            except SnapshotError as exc:
                refused = str(exc)
        if refused is not None:
            log.warning("checkpoint not used file=%s reason=%r", checkpoint, refused)
    tail = replay_tail(engine, recording, start, end=end, day=day)
    log.info(
        "rebuild replayed file=%s from=%d to=%d ticks=%d alerts=%d",
        recording,
        start,
        tail.end_offset,
        tail.ticks,
        len(tail.fired),
    )
    return tail._replace(refused=refused)
