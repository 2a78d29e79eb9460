"""`pgmbot replay` on awkward input: gzip whatever its name, cut-short files, missing files,
nothing usable, a reader that stops early, progress on a terminal. Run as a process where
stdin, stdout or stderr matter."""

from __future__ import annotations

import gzip
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.cli import main
from bot.ticks import today_kst

RULES = """\
rules:
  - {id: up, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100}
  - {id: never, type: threshold, field: NTBY_TR_PBMN, below: -1000}
  - {id: off, type: threshold, field: NTBY_TR_PBMN, above: 0, enabled: false}
"""


def frames(count: int, per_second: int = 1) -> str:
    """``count`` ticks of 005930 whose net-buy value crosses 100 on every second tick."""
    lines = []
    for n in range(count):
        t = 9 * 3600 + n // per_second
        hhmmss = f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"
        net = 150 if n % 2 else 50
        lines.append(f"2026-11-20T{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}+09:00\t"
                     f"0|H0UNPGM0|001|005930^{hhmmss}^1^1^1^1^0^{net}^0^0^0")  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return path


def replay(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "bot", "replay", *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=60, check=False)


def test_gzip_is_recognised_by_its_bytes_on_stdin_and_under_any_name(
    tmp_path: Path, rules: Path
) -> None:
    packed = gzip.compress(frames(10).encode())
    from_stdin = replay("-", "--rules", str(rules), "--json", stdin=packed)
    assert from_stdin.returncode == 0, from_stdin.stderr
    alerts = [json.loads(line) for line in from_stdin.stdout.splitlines()]
    assert [a["time"][11:19] for a in alerts] == ["09:00:01", "09:00:03", "09:00:05", "09:00:07",
                                                  "09:00:09"]  # fmt: skip
    renamed = tmp_path / "recording.tsv"  # gzip data, plain name
    renamed.write_bytes(packed)
    assert main(["replay", str(renamed), "--rules", str(rules), "--json"]) == 0


def test_a_truncated_gzip_file_keeps_what_was_read_and_says_so(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = gzip.compress(frames(2000).encode())
    cut = tmp_path / "cut.tsv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    assert main(["replay", str(cut), "--rules", str(rules), "--json"]) == 2
    captured = capsys.readouterr()
    read = len(captured.out.splitlines())
    assert 0 < read < 1000  # the alerts before the cut, not the file's 1000
    assert f"{cut}: cannot read further: compressed data ends early" in captured.err
    assert "Traceback" not in captured.err


def test_missing_files_are_named_before_anything_runs(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.tsv"
    good.write_text(frames(4), encoding="utf-8")
    args = [str(good), str(tmp_path / "nope.tsv"), str(tmp_path / "gone.tsv")]
    assert main(["replay", *args, "--rules", str(rules)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"{tmp_path / 'nope.tsv'}: no such file",
                                         f"{tmp_path / 'gone.tsv'}: no such file"]  # fmt: skip


def test_input_without_a_single_frame_is_an_error(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nworld\n2026-11-20Tbad\t0|H0UNPGM0|001|x\n", encoding="utf-8")
    assert main(["replay", str(junk), "--rules", str(rules), "--date", "2026-11-20"]) == 1
    err = capsys.readouterr().err
    assert f"{junk}:1: skipped: not a data frame" in err
    assert f"{junk}:3: skipped: bad timestamp '2026-11-20Tbad' (expected ISO 8601" in err
    assert "no data frame in the input" in err
    assert "without a timestamp" not in err  # junk is not counted as undated data


def test_the_summary_names_the_rules_that_never_fired(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "r.tsv"
    recording.write_text(frames(4), encoding="utf-8")
    assert main(["replay", str(recording), "--rules", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "2026-11-20 09:00:01 005930 up  " in out
    assert "up    005930       2" in out
    assert out.rstrip().endswith("no alerts: never")


def test_a_reader_that_stops_early_ends_the_replay_quietly(tmp_path: Path, rules: Path) -> None:
    recording = tmp_path / "big.tsv"
    recording.write_text(frames(50_000), encoding="utf-8")
    command = [sys.executable, "-m", "bot", "replay", str(recording), "--rules", str(rules)]
    with subprocess.Popen(
        [*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # like `| head -1`
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 1
    assert json.loads(first)["rule"] == "up"
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_lines_without_a_timestamp_are_dated_by_date_or_today_with_a_note(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text("".join(line.partition("\t")[2] + "\n" for line in frames(2).splitlines()))
    assert main(["replay", str(raw), "--rules", str(rules), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["time"].startswith(today_kst().isoformat())
    assert "note: 2 lines without a timestamp were taken as of today" in captured.err
    assert main(["replay", str(raw), "--rules", str(rules), "--json", "--date", "2026-11-20"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["time"] == "2026-11-20T09:00:01+09:00"
    assert captured.err == ""


def test_damaged_gzip_data_is_a_clear_error(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = bytearray(gzip.compress(frames(2000).encode()))
    whole[len(whole) // 2 : len(whole) // 2 + 64] = bytes(64)  # a stretch of zeros mid-stream
    damaged = tmp_path / "damaged.tsv.gz"
    damaged.write_bytes(bytes(whole))
    assert main(["replay", str(damaged), "--rules", str(rules), "--json"]) == 2
    err = capsys.readouterr().err
    assert f"{damaged}: cannot read further: " in err and "Traceback" not in err


def test_a_pipe_is_read_like_a_file(tmp_path: Path, rules: Path) -> None:
    # `pgmbot replay <(zcat …)` hands over /dev/fd/N: not a regular file, readable once.
    recording = tmp_path / "r.tsv.gz"
    recording.write_bytes(gzip.compress(frames(4).encode()))
    script = f'exec "$0" -m bot replay <(cat {recording}) --rules {rules} --json'
    done = subprocess.run(
        ["bash", "-c", script, sys.executable], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2


def test_an_output_that_fails_is_not_blamed_on_the_input(tmp_path: Path, rules: Path) -> None:
    recording = tmp_path / "r.tsv"
    recording.write_text(frames(20_000), encoding="utf-8")
    command = [sys.executable, "-m", "bot", "replay", str(recording), "--rules", str(rules)]
    with open("/dev/full", "w") as full:  # every write fails: no space left on device
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert done.returncode == 2
    assert b"cannot write the output: No space left on device" in done.stderr
    assert b"cannot read further" not in done.stderr and b"Traceback" not in done.stderr


def test_gzip_through_a_pipe_that_hands_over_one_byte_first(tmp_path: Path, rules: Path) -> None:
    packed = tmp_path / "r.tsv.gz"
    packed.write_bytes(gzip.compress(frames(10).encode()))
    script = (
        f"(head -c1 {packed}; sleep 0.3; tail -c +2 {packed}) | "
        f'"$0" -m bot replay - --rules {rules} --json'
    )
    done = subprocess.run(
        ["bash", "-c", script, sys.executable], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 5


def test_inputs_that_cannot_work_are_refused_before_reading(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "-", str(tmp_path), "-", "--rules", str(rules)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path}: is a directory",
        "-: standard input can be read only once",
    ]


def test_a_terminal_sees_progress_and_stdout_stays_pure(tmp_path: Path, rules: Path) -> None:
    recording = tmp_path / "big.tsv"
    recording.write_text(frames(2_100, per_second=10), encoding="utf-8")  # past 2,000
    command = [sys.executable, "-m", "bot", "replay", str(recording), "--rules", str(rules)]
    command += ["--progress-every", "2000"]
    leader, follower = pty.openpty()  # stderr is a terminal, stdout a pipe
    terminal = bytearray()

    def drain() -> None:  # read the terminal as it is written, so the process never waits
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # closed with the process
                return
            if not chunk:
                return
            terminal.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        done = subprocess.run(
            [*command, "--json"], stdout=subprocess.PIPE, stderr=follower, timeout=120
        )
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    assert done.returncode == 0
    assert b"\r2,000 lines  1,999 ticks  999 alerts " in terminal  # while it runs
    assert b"\r2,100 lines  2,100 ticks  1,050 alerts " in terminal  # at the end
    out = done.stdout.splitlines()
    assert len(out) == 1_050 and all(json.loads(line)["rule"] == "up" for line in out)


def test_hours_names_follow_the_sessions_of_the_config_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config that shortens the regular session shortens it for replay and rule checks too."""
    (tmp_path / "hours.yaml").write_text(
        "rules:\n  - {id: up, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100,"
        " hours: regular}\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text("market:\n  sessions:\n    regular: '09:00-09:00'\n", encoding="utf-8")
    recording = tmp_path / "day.tsv"
    recording.write_text(frames(200), encoding="utf-8")  # 09:00:00 to 09:03:19, 100 crossings

    def fired(*extra: str) -> list[str]:
        argv = ["replay", str(recording), "--rules", str(tmp_path / "hours.yaml"), "--json"]
        assert main([*argv, *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        return [json.loads(line)["time"] for line in lines if line.startswith("{")]

    assert len(fired()) == 100  # the default regular session takes in all of them
    shortened = fired("--config", str(config))
    assert len(shortened) == 30 and all(t.startswith("2026-11-20T09:00:") for t in shortened)

    config.write_text("market:\n  sessions:\n    regular: '09:30-09:00'\n", encoding="utf-8")
    rules = str(tmp_path / "hours.yaml")
    assert main(["replay", str(recording), "--rules", rules, "--config", str(config)]) == 2
    assert "ends before it starts" in capsys.readouterr().err
