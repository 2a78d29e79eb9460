"""`pgmbot chart`: a recorded day's chart on the command line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from test_series import DAY, day_ticks, write

from bot.cli import main

pytestmark = pytest.mark.filterwarnings("error:.*missing from font")

RULES = """\
rules:
  - id: net-up
    type: threshold
    field: NTBY_TR_PBMN
    crosses_above: 1억
"""


def test_a_gzipped_day_with_rules_becomes_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / f"{DAY}.tsv"
    write(plain, day_ticks(400))
    packed = tmp_path / f"{DAY}.tsv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    out = tmp_path / "day.png"
    args = ["chart", str(packed), "--ticker", "005930", "--out", str(out), "--rules", str(rules)]
    assert main(args) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    said = capsys.readouterr().out
    assert said.startswith(f"{out}: ") and "alerts of 005930" in said


def test_a_stock_not_in_the_recording_gets_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / f"{DAY}.tsv"
    write(plain, day_ticks(50))
    assert main(["chart", str(plain), "--ticker", "999999", "--out", str(tmp_path / "x.png")]) == 1
    assert "no program trading of 999999" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["chart", str(tmp_path / "none.tsv"), "--ticker", "005930"]) == 2
    assert main(["chart", str(plain), "--ticker", "12"]) == 2
