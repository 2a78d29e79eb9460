"""Checkpoint files and tail replays, on real files: a restart from a checkpoint and the
recording's tail fires exactly what the uninterrupted run fired after the checkpoint."""

from __future__ import annotations

import gzip
import logging
import os
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import test_engine_spec as spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alerts import Alert
from bot.checkpoint import (
    MAX_BYTES,
    CheckpointError,
    checkpoint_mismatch,
    load_checkpoint,
    read_checkpoint,
    replay_tail,
    resume,
    write_checkpoint,
)
from bot.engine.evaluate import Engine, rules_key
from bot.engine.rule_types import RULE, RuleSet
from bot.engine.snapshot import EngineSnapshot
from bot.kis.recording import read_recording
from bot.ticks import KST, FrameError, Tick, parse_frame

DAY = spec.DAY
RULES = RuleSet(
    tuple(
        RULE.validate_python({"field": "NTBY_CNQN", **fields})
        for fields in (
            {"id": "cross", "type": "threshold", "crosses_above": 0},
            {"id": "high", "type": "threshold", "above": 2, "for": 1, "cooldown": 3},
            {"id": "flip", "type": "sign_flip", "min_abs": 1},
            {"id": "surge", "type": "change", "window": 3, "rise": 3},
        )
    )
)
KEY = rules_key(RULES)


def keys(alerts: list[Alert]) -> list[tuple[str, str, str, int, int, str]]:
    return [(a.rule, a.ticker, a.tick.hhmmss, a.value, a.seq, a.kind) for a in alerts]


def frame_line(ticks: list[Tick], stamp: str = "T09:00:00+09:00") -> str:
    payload = "^".join("^".join([t.ticker, t.hhmmss, *(str(v) for v in t[4:])]) for t in ticks)
    return f"{ticks[0].day.isoformat()}{stamp}\t0|H0UNPGM0|{len(ticks):03d}|{payload}\n"


def random_ticks(count: int, seed: int = 7) -> list[Tick]:
    rng = random.Random(seed)
    ticks, t = [], 9 * 3600
    for _ in range(count):
        t += rng.choice((0, 1, 1, 2))
        hhmmss = f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"
        ticker = rng.choice(("005930", "000660"))
        ticks.append(Tick(ticker, DAY, hhmmss, t, 0, 0, 0, 0, rng.randint(-5, 5), 0, 0, 0, 0))
    return ticks


def write_recording(path: Path, ticks: list[Tick], per_frame: int = 2) -> list[int]:
    """The recording of ``ticks``; returns the offset of every line start and of the end."""
    lines = [frame_line(ticks[i : i + per_frame]) for i in range(0, len(ticks), per_frame)]
    path.write_text("".join(lines), encoding="utf-8", newline="\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()))
    return offsets


def full_replay(engine: Engine, path: Path) -> list[Alert]:
    """Every line of a recording, from the start, as bot.kis.recording reads it."""
    alerts: list[Alert] = []
    for _number, when, frame in read_recording(path):
        try:
            parsed = parse_frame(frame, when.astimezone(KST).date() if when else DAY)
        except FrameError:
            continue
        alerts.extend(engine.on_ticks(parsed))
    return alerts


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return tmp_path / "recordings" / f"{DAY.isoformat()}.tsv"


def restart_at(
    recording: Path, offset: int, checkpoint: Path, ruleset: RuleSet = RULES
) -> list[Alert]:
    """A bot that ran up to ``offset``, wrote a checkpoint and was killed; then its restart."""
    before = Engine(ruleset)
    ran = replay_tail(before, recording, 0, end=offset)
    assert ran.end_offset == offset
    write_checkpoint(
        checkpoint,
        before.snapshot(),
        recording=recording,
        offset=offset,
        rules_key=rules_key(ruleset),
    )
    restarted = resume(
        Engine(ruleset), recording=recording, checkpoint=checkpoint, rules_key=rules_key(ruleset)
    )
    assert restarted.refused is None
    assert restarted.start_offset == offset
    return ran.alerts + restarted.alerts


def test_a_restart_at_any_line_fires_what_the_uninterrupted_run_fires(
    recording: Path, tmp_path: Path
) -> None:
    recording.parent.mkdir()
    offsets = write_recording(recording, random_ticks(120))
    whole = keys(full_replay(Engine(RULES), recording))
    assert len({a[0] for a in whole}) == 4, "every rule should fire in this recording"
    for offset in offsets:
        assert keys(restart_at(recording, offset, tmp_path / "checkpoint")) == whole, offset


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec.rules(), spec.streams(), st.lists(st.integers(1, 4), min_size=1), st.data())
def test_a_restart_resumes_exactly_for_random_rules_and_frames(
    tmp_path: Path, rules: list[Any], ticks: list[Tick], sizes: list[int], data: st.DataObject
) -> None:
    ruleset = RuleSet(tuple(rules))
    recording = tmp_path / f"{DAY.isoformat()}.tsv"
    lines: list[str] = []
    i = 0
    while i < len(ticks):  # a line holds ticks of one day
        size = sizes[len(lines) % len(sizes)]
        chunk = [t for t in ticks[i : i + size] if t.day == ticks[i].day]
        lines.append(frame_line(chunk))
        i += len(chunk)
    recording.write_text("".join(lines), encoding="utf-8", newline="\n")
    cut = data.draw(st.integers(0, len(lines)))
    offset = len("".join(lines[:cut]).encode())
    whole = keys(full_replay(Engine(ruleset), recording))
    assert keys(restart_at(recording, offset, tmp_path / "checkpoint", ruleset)) == whole


def test_write_then_read_gives_the_checkpoint_back(recording: Path, tmp_path: Path) -> None:
    recording.parent.mkdir()
    offsets = write_recording(recording, random_ticks(40))
    engine = Engine(RULES)
    replay_tail(engine, recording, 0, end=offsets[5])
    path = tmp_path / "state" / "checkpoint"
    write_checkpoint(
        path, engine.snapshot(), recording=recording, offset=offsets[5], rules_key=KEY
    )
    saved = load_checkpoint(path)
    assert saved.snapshot == engine.snapshot()
    assert (saved.recording, saved.offset, saved.rules_key) == (recording, offsets[5], KEY)
    assert checkpoint_mismatch(saved, recording=recording, rules_key=KEY) is None
    assert os.listdir(path.parent) == ["checkpoint"]  # no temporary file left


def test_a_failed_write_keeps_the_old_checkpoint_and_leaves_no_temporary_file(
    recording: Path, tmp_path: Path
) -> None:
    recording.parent.mkdir()
    offsets = write_recording(recording, random_ticks(40))
    path = tmp_path / "checkpoint"
    write_checkpoint(path, EngineSnapshot({}), recording=recording, offset=0, rules_key=KEY)
    old = path.read_bytes()
    with pytest.raises(ValueError, match="not at the start of a line"):
        write_checkpoint(path, EngineSnapshot({}), recording=recording, offset=3, rules_key=KEY)
    with pytest.raises(ValueError, match="fewer than"):
        write_checkpoint(
            path, EngineSnapshot({}), recording=recording, offset=offsets[-1] + 1, rules_key=KEY
        )
    target = tmp_path / "taken"
    (target / "busy").mkdir(parents=True)  # a non-empty directory: the rename fails
    with pytest.raises(OSError):
        write_checkpoint(target, EngineSnapshot({}), recording=recording, offset=0, rules_key=KEY)
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "recordings", "taken"]


def test_a_temporary_file_left_by_a_crash_is_removed_by_the_next_write(
    recording: Path, tmp_path: Path
) -> None:
    recording.parent.mkdir()
    write_recording(recording, random_ticks(4))
    (tmp_path / ".checkpoint.k2j3.tmp").write_bytes(b"half a checkpoint")
    write_checkpoint(
        tmp_path / "checkpoint", EngineSnapshot({}), recording=recording, offset=0, rules_key=KEY
    )
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "recordings"]


@pytest.fixture
def written(recording: Path, tmp_path: Path) -> Path:
    """A checkpoint of a few ticks."""
    recording.parent.mkdir()
    offsets = write_recording(recording, random_ticks(20))
    engine = Engine(RULES)
    replay_tail(engine, recording, 0, end=offsets[3])
    path = tmp_path / "checkpoint"
    write_checkpoint(
        path, engine.snapshot(), recording=recording, offset=offsets[3], rules_key=KEY
    )
    return path


def _resigned(body: bytes) -> bytes:
    """A file whose checksum fits its (bad) body: what a bug, not damage, would write."""
    import hashlib

    return f"pgmbot-checkpoint 1 {hashlib.sha256(body).hexdigest()} {len(body)}\n".encode() + body


def _damaged(data: bytes, how: str) -> bytes:
    header, _, body = data.partition(b"\n")
    if how == "flipped":
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]
    if how == "truncated":
        return data[: len(data) - 10]
    if how == "longer":
        return data + b"x"
    if how == "version":
        return header.replace(b" 1 ", b" 2 ", 1) + b"\n" + body
    if how == "empty":
        return b""
    if how == "text":
        return b"rules:\n  - id: x\n"
    if how == "bad length":
        return header.rsplit(b" ", 1)[0] + b" 12e3\n" + body
    if how == "bad covers":
        return _resigned(b'{"recording": 5}\n' + body.partition(b"\n")[2])
    if how == "bad snapshot":
        return _resigned(body.partition(b"\n")[0] + b'\n{"layout": 2, "rules": [')
    if how == "other layout":
        return _resigned(body.partition(b"\n")[0] + b'\n{"layout": 99}')
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("flipped", "damaged: the checksum does not match"),
        ("truncated", "cut short"),
        ("longer", "longer than written"),
        ("version", "version '2', this bot reads version 1"),
        ("empty", "not a pgmbot checkpoint file"),
        ("text", "not a pgmbot checkpoint file"),
        ("bad length", "bad length '12e3'"),
        ("bad covers", "what it covers is unreadable"),
        ("bad snapshot", "not a snapshot of layout 2"),
        ("other layout", "snapshot layout 99, this bot reads layout 2"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason(
    written: Path, how: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    written.write_bytes(_damaged(written.read_bytes(), how))
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(written)
    assert reason in str(caught.value)
    with caplog.at_level(logging.WARNING, logger="bot.checkpoint"):
        assert read_checkpoint(written) is None
    assert f"checkpoint refused file={written}" in caplog.text
    assert reason in caplog.text


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    with path.open("wb") as file:
        file.truncate(MAX_BYTES + 1)  # sparse: takes no disk
    with pytest.raises(CheckpointError, match="more than"):
        load_checkpoint(path)


def test_no_checkpoint_is_no_error(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path / "checkpoint") is None
    with pytest.raises(CheckpointError, match="cannot read it"):
        load_checkpoint(tmp_path / "checkpoint")


def test_a_checkpoint_of_another_recording_or_rule_set_does_not_fit(
    written: Path, recording: Path
) -> None:
    saved = load_checkpoint(written)
    other = recording.with_name("2026-11-24.tsv")
    other.write_bytes(recording.read_bytes())
    assert "not" in str(checkpoint_mismatch(saved, recording=other, rules_key=KEY))
    changed = rules_key(RuleSet(RULES.rules[1:]))
    reason = checkpoint_mismatch(saved, recording=recording, rules_key=changed)
    assert reason == "the rules changed since it was written"
    data = recording.read_bytes()
    recording.write_bytes(data[: saved.offset - 1])  # the recording was cut short
    assert "fewer than" in str(checkpoint_mismatch(saved, recording=recording, rules_key=KEY))
    recording.write_bytes(data.replace(b"005930", b"005931"))  # another recording, same size
    reason = checkpoint_mismatch(saved, recording=recording, rules_key=KEY)
    assert reason == "the recording before its offset is not the one it was written for"


def test_resume_falls_back_to_the_whole_recording_when_the_checkpoint_does_not_fit(
    written: Path, recording: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = keys(full_replay(Engine(RULES), recording))
    written.write_bytes(_damaged(written.read_bytes(), "flipped"))
    with caplog.at_level(logging.INFO, logger="bot.checkpoint"):
        again = resume(Engine(RULES), recording=recording, checkpoint=written, rules_key=KEY)
    assert (again.start_offset, again.refused) == (0, None)  # refused on reading: logged
    assert keys(again.alerts) == whole
    assert "checkpoint refused" in caplog.text


def test_resume_with_other_rules_replays_everything_and_says_why(
    written: Path, recording: Path
) -> None:
    fewer = RuleSet(RULES.rules[1:])
    again = resume(
        Engine(fewer), recording=recording, checkpoint=written, rules_key=rules_key(fewer)
    )
    assert again.refused == "the rules changed since it was written"
    assert again.start_offset == 0
    assert keys(again.alerts) == keys(full_replay(Engine(fewer), recording))


def test_resume_without_a_recording_replays_nothing(tmp_path: Path) -> None:
    engine = Engine(RULES)
    got = resume(
        engine, recording=tmp_path / "none.tsv", checkpoint=tmp_path / "cp", rules_key=KEY
    )
    assert got == (0, [], 0, 0, None)


def test_a_checkpoint_beyond_the_end_to_replay_is_not_used(written: Path, recording: Path) -> None:
    offset = load_checkpoint(written).offset
    got = resume(
        Engine(RULES), recording=recording, checkpoint=written, rules_key=KEY, end=offset - 1
    )
    assert got.refused is not None and "more than" in got.refused
    assert got.start_offset == 0 and got.end_offset < offset


def test_a_line_cut_while_being_written_is_left_for_later(recording: Path) -> None:
    recording.parent.mkdir()
    ticks = random_ticks(30)
    offsets = write_recording(recording, ticks)
    data = recording.read_bytes()
    whole = keys(full_replay(Engine(RULES), recording))
    recording.write_bytes(data[: offsets[-2] + 20])  # the last line, without its end
    engine = Engine(RULES)
    first = replay_tail(engine, recording, 0)
    assert first.end_offset == offsets[-2]
    assert first.ticks == len(ticks) - 2
    recording.write_bytes(data)  # the rest arrives
    second = replay_tail(engine, recording, first.end_offset)
    assert (second.ticks, second.end_offset) == (2, offsets[-1])
    assert keys(first.alerts + second.alerts) == whole


def test_lines_past_the_end_given_are_not_read(recording: Path) -> None:
    recording.parent.mkdir()
    offsets = write_recording(recording, random_ticks(30))
    tail = replay_tail(Engine(RULES), recording, offsets[2], end=offsets[5] + 3)
    assert (tail.ticks, tail.end_offset) == (6, offsets[5])


def test_odd_lines_are_read_as_a_full_replay_reads_them(recording: Path) -> None:
    recording.parent.mkdir()
    ticks = random_ticks(12)
    good = [frame_line(ticks[i : i + 2]).encode() for i in range(0, 12, 2)]
    raw_frame = frame_line(ticks[:1]).partition("\t")[2].encode()  # no timestamp
    lines = [
        good[0],
        b"\n",  # blank
        b"not a time\t0|H0UNPGM0|001|x\n",
        good[1].rstrip(b"\n") + b"\r" + good[2],  # two lines, split at the CR
        b"\xff\xfe" + good[3],  # bad UTF-8 before the timestamp
        b'2026-11-23T09:00:00+09:00\t{"header": {"tr_id": "PINGPONG"}}\n',
        raw_frame,  # dated by the file's name
        good[4].replace(b"+09:00", b""),  # a naive time: KST
        good[5].replace(b"\n", b"\r\n"),
    ]
    recording.write_bytes(b"".join(lines))
    tail = replay_tail(Engine(RULES), recording, 0)
    assert keys(tail.alerts) == keys(full_replay(Engine(RULES), recording))
    assert tail.ticks == 11  # the bad UTF-8 line is lost, as in a full replay
    assert tail.end_offset == recording.stat().st_size


def test_the_trading_date_of_undated_lines_comes_from_the_file_name(tmp_path: Path) -> None:
    ticks = random_ticks(2)
    raw = frame_line(ticks).partition("\t")[2]
    named = tmp_path / "2026-11-20.tsv"
    named.write_text(raw)
    engine = Engine(RuleSet((RULE.validate_python(
        {"id": "any", "type": "threshold", "field": "NTBY_CNQN", "above": -100}),)))  # fmt: skip
    assert [a.tick.day for a in replay_tail(engine, named, 0).alerts] == [date(2026, 11, 20)]
    unnamed = tmp_path / "frames.tsv"
    unnamed.write_text(raw)
    assert replay_tail(Engine(RULES), unnamed, 0).ticks == 0  # no date to give them
    dated = replay_tail(engine, unnamed, 0, day=date(2026, 11, 21))
    assert dated.ticks == 2


def test_a_gzipped_recording_is_refused(tmp_path: Path) -> None:
    path = tmp_path / f"{DAY.isoformat()}.tsv"
    path.write_bytes(gzip.compress(frame_line(random_ticks(2)).encode()))
    with pytest.raises(ValueError, match="gzipped"):
        replay_tail(Engine(RULES), path, 0)


def test_each_alert_comes_with_its_frames_receive_time(tmp_path: Path) -> None:
    # bot/rebuild.py sends a missing alert only when its frame is recent.
    ticks = [t._replace(ticker=code) for t, code in zip(random_ticks(3), "ABC", strict=True)]
    stamps = ["T09:00:01.250000+09:00", "T00:00:02+00:00", ""]
    lines = [frame_line([t], stamp) for t, stamp in zip(ticks, stamps, strict=True)]
    lines[2] = lines[2].partition("\t")[2]  # no time: the file's day, at midnight
    path = tmp_path / f"{DAY.isoformat()}.tsv"
    path.write_text("".join(lines))
    every = RULE.validate_python(
        {"id": "any", "type": "threshold", "field": "NTBY_CNQN", "above": -100}
    )
    fired = replay_tail(Engine(RuleSet((every,))), path, 0).fired
    assert [when.isoformat() for _alert, when in fired] == [
        "2026-11-23T09:00:01.250000+09:00",
        "2026-11-23T00:00:02+00:00",
        "2026-11-23T00:00:00+09:00",
    ]
