"""Recorded frames: the writer's day files and the reader's tolerance, on real files."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kis.recording import Recorder, read_recording, recording_path
from bot.ticks import KST

FRAME = "0|H0UNPGM0|001|005930^092237^1^2^3^4^2^2^5^6^1"
AT = datetime(2025, 3, 14, 9, 22, 37, 123456, tzinfo=KST)


def test_write_then_read(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "rec")
    recorder.write(FRAME, AT)
    recorder.write(FRAME.replace("092237", "092238"), AT.replace(second=38))
    recorder.close()
    path = tmp_path / "rec" / "2025-03-14.tsv"
    assert path.read_text(encoding="utf-8").splitlines()[0] == (
        f"2025-03-14T09:22:37.123456+09:00\t{FRAME}"
    )
    assert [(n, when, frame[:22]) for n, when, frame in read_recording(path)] == [
        (1, AT, FRAME[:22]),
        (2, AT.replace(second=38), FRAME[:22].replace("092237", "092238")),
    ]


def test_days_are_kst_days(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    # 23:59:59 and 00:00:00 in Korea, given in UTC.
    recorder.write(FRAME, datetime(2025, 3, 14, 14, 59, 59, tzinfo=UTC))
    recorder.write(FRAME, datetime(2025, 3, 14, 15, 0, 0, tzinfo=UTC))
    recorder.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2025-03-14.tsv", "2025-03-15.tsv"]
    ((_, when, _),) = read_recording(tmp_path / "2025-03-15.tsv")
    assert when == datetime(2025, 3, 15, 0, 0, tzinfo=KST)
    assert recording_path(tmp_path, AT) == tmp_path / "2025-03-14.tsv"


def test_appends_and_flushes(tmp_path: Path) -> None:
    first = Recorder(tmp_path)
    first.write(FRAME, AT)
    first.close()
    second = Recorder(tmp_path)
    second.write(FRAME, AT)
    second.flush()  # visible before close
    assert len(list(read_recording(tmp_path / "2025-03-14.tsv"))) == 2
    second.close()
    second.close()  # twice is harmless


def test_reader_tolerates_raw_frames_bad_stamps_blank_lines_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tsv"
    path.write_bytes(
        b"\n".join(
            [
                FRAME.encode(),  # no timestamp
                b"",
                b"yesterday\t" + FRAME.encode(),  # not ISO 8601
                b"2025-03-14T09:00:00\t" + FRAME.encode(),  # naive: KST
                b"2025-03-14T09:00:01+09:00\t0|H0UNPGM0|001|\xff",
            ]
        )
    )
    lines = list(read_recording(path))
    assert [(n, when) for n, when, _ in lines] == [
        (1, None),
        (3, None),
        (4, datetime(2025, 3, 14, 9, tzinfo=KST)),
        (5, datetime(2025, 3, 14, 9, 0, 1, tzinfo=KST)),
    ]
    assert lines[1][2] == f"yesterday\t{FRAME}"  # the whole line, to be reported
    assert lines[3][2] == "0|H0UNPGM0|001|\ufffd"


def test_reader_reads_gzip(tmp_path: Path) -> None:
    path = tmp_path / "2025-03-14.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write(f"{AT.isoformat()}\t{FRAME}\n")
    assert list(read_recording(path)) == [(1, AT, FRAME)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=["Cs"]), min_size=1), max_size=5))
def test_one_frame_is_one_line_whatever_it_holds(
    tmp_path_factory: pytest.TempPathFactory, frames: list[str]
) -> None:
    directory = tmp_path_factory.mktemp("rec")
    recorder = Recorder(directory)
    for frame in frames:
        recorder.write(frame, AT)
    recorder.close()
    path = directory / "2025-03-14.tsv"
    read = list(read_recording(path)) if frames else []
    # Line breaks inside a frame become spaces, so that one frame stays one line.
    assert [frame for _, _, frame in read] == [
        f.replace("\n", " ").replace("\r", " ") for f in frames
    ]
    assert all(when == AT for _, when, _ in read)
