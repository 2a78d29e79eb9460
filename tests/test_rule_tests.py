"""`pgmbot rules test`: every mistake in a test file is named at its place, the cases without one
still run, and the summary counts what ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

RULES = "rules:\n  - {id: up, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100억}\n"


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, str, str]:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    status = main(["rules", "test", str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_every_mistake_is_named_and_the_other_cases_run_and_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        tmp_path,
        capsys,
        RULES + "tests:\n"
        "  - name: fails\n"  # line 4
        "    series: {NTBY_TR_PBMN: 0 200억}\n"
        "    expect: [{rule: up, time: '09:00:05'}]\n"
        "  - name: bad time\n"  # line 7
        "    ticks: [{time: '25:00:00', NTBY_TR_PBMN: 1}]\n"
        "  - name: bad amount\n"  # line 9
        "    ticks: [{time: '09:00:00', NTBY_TR_PBMN: lots}]\n"
        "  - name: passes\n"  # line 11
        "    series: {NTBY_TR_PBMN: 0 200억}\n"
        "    expect: [{rule: up, time: '09:00:01'}]\n"
        "  - name: unknown rule\n"  # line 14
        "    series: {NTBY_TR_PBMN: 0}\n"
        "    expect: [{rule: upp, time: '09:00:01'}]\n"
        "  - name: a typo\n"  # line 17
        "    seires: {NTBY_TR_PBMN: 0}\n",
    )
    path = tmp_path / "t.yaml"
    assert status == 2
    assert err.splitlines() == [
        f"{path}:8:20: bad time: '25:00:00' is not a time of day (write \"09:00:05\")",
        f"{path}:10:46: bad amount: 'lots' is not a number (write 10000000000, "
        "10_000_000_000, 100억 or 1억5000만)",
        f"{path}:16:21: unknown rule: no rule 'upp' here (the rules: up)",
        f"{path}:18:5: a typo: seires: unknown key (check its spelling)",
    ]
    assert f"FAIL {path}:4:5: fails" in out and f"ok   {path}:11:5: passes" in out
    assert out.endswith("\n1 passed, 1 failed, 4 not run, 1 file(s) with errors\n")


def test_every_bad_tick_of_a_case_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        tmp_path,
        capsys,
        RULES + "tests:\n  - name: c\n    ticks:\n"
        "      - {time: '09:00:02', NTBY_TR_PBMN: 1}\n"
        "      - {time: '09:00:01', NTBY_TR_PBMN: 1}\n"
        "      - {time: '09:00:03', NTBY_CNQN: 1.5}\n",
    )
    path = tmp_path / "t.yaml"
    assert status == 2
    assert err.splitlines() == [
        f"{path}:7:16: c: time goes back: 09:00:01 after 09:00:02 (list a stock's ticks in "
        "time order)",
        f"{path}:8:39: c: 1.5: KIS sends whole numbers",
    ]
    assert out.endswith("\n0 passed, 0 failed, 1 not run, 1 file(s) with errors\n")


def test_a_mistake_in_the_rules_and_one_in_a_case_are_both_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _out, err = run(
        tmp_path,
        capsys,
        RULES.replace("100억", "lots") + "tests:\n  - name: c\n    series: {NTBY_CNQN: 1억원}\n",
    )
    path = tmp_path / "t.yaml"
    assert status == 2
    assert err.splitlines() == [
        f"{path}:2:67: rule 'up': crosses_above: 'lots' is not a number (write 10000000000, "
        "10_000_000_000, 100억 or 1억5000만)",
        f"{path}:5:25: c: '1억원' is in won, but NTBY_CNQN counts shares (주)",
    ]


def test_rule_files_are_checked_as_one_set_and_not_beside_inline_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text(RULES)
    (tmp_path / "b.yaml").write_text(RULES)
    status, _out, err = run(
        tmp_path,
        capsys,
        "rule_files: [a.yaml, b.yaml]\ntests:\n  - {name: c, series: {NTBY_TR_PBMN: 0}}\n",
    )
    assert status == 2
    assert err.splitlines() == [
        f"{tmp_path / 'b.yaml'}:2:10: rule 'up': duplicate id (first defined at "
        f"{tmp_path / 'a.yaml'}:2:10)"
    ]
    status, _out, err = run(
        tmp_path,
        capsys,
        RULES + "rule_files: [a.yaml]\ntests:\n  - {name: c, series: {NTBY_TR_PBMN: 0}}\n",
    )
    assert status == 2
    assert err.splitlines() == [
        f"{tmp_path / 't.yaml'}:3:1: give 'rules' or 'rule_files', not both"
    ]
