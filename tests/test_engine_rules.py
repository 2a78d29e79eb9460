"""Rule files: errors with exact positions, traps, templates, hot reload, and the commands."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from bot.engine.evaluate import Engine
from bot.engine.rule_types import RULE, ChangeRule, RuleSet, rule_changes
from bot.engine.spec import RulesError, load_rules
from bot.rules_watcher import RulesWatcher
from bot.ticks import Tick, parse_frame

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 23)
GOOD = """\
rules:
  - id: up
    type: threshold
    field: NTBY_TR_PBMN
    crosses_above: 100억
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(RulesError) as info:
        load_rules(path)
    return info.value.problems


def tick(hhmmss: str, net: int, ticker: str = "005930") -> Tick:
    return parse_frame(f"0|H0UNPGM0|001|{ticker}^{hhmmss}^1^1^1^1^0^{net}^0^0^-5", DAY)[0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    crosses_above: 1\n    colldown: 5\n", "6:5: rule 'r': colldown: unknown key"),
        (
            "    crosses_above: 1\n    cooldown: 5x\n",
            "6:15: rule 'r': cooldown: '5x' is not a dur",
        ),
        ("    above: 1\n    below: 2\n", "6:5: rule 'r': a threshold rule needs exactly one of"),
        ("    crosses_above: 1\n    for: 5s\n", "6:5: rule 'r': 'for' only works with above"),
        ("    crosses_above: lots\n", "5:20: rule 'r': crosses_above: 'lots' is not a number"),
        ("    above: 1.0e+400\n", "5:12: rule 'r': above: inf is not a number a rule can"),
        ("    above: 10000000000000000000\n", "5:12: rule 'r': above: 10000000000000000000 is"),
        ("    above: 억억\n", "5:12: rule 'r': above: '억억': write the units from big to small"),
        ("    above: 1\n    tickers: []\n", "6:14: rule 'r': tickers: list at least one stock"),
        ("    above: 1\n    message: '{valeu}'\n", "6:14: rule 'r': message: unknown placeholder"),
        ("    above: 1\n    enabled: maybe\n", "6:14: rule 'r': enabled: write true or false"),
        (
            "    above: 1\n    message: '{prev}'\n",
            "6:14: rule 'r': message: unknown placeholder {prev} for",
        ),
        (
            "    above: 1\n    message: '{value!r}'\n",
            "6:14: rule 'r': message: {value!r}: write {value}",
        ),
        (
            "    above: 1\n    message: '{time:,}'\n",
            "6:14: rule 'r': message: bad format in template",
        ),
    ],
)
def test_errors_name_file_line_and_column(tmp_path: Path, body: str, expected: str) -> None:
    head = "rules:\n  - id: r\n    type: threshold\n    field: NTBY_TR_PBMN\n"
    path = write(tmp_path, "r.yaml", head + body)
    [problem] = problems(path)
    assert problem.startswith(f"{path}:{expected}"), problem


def test_every_error_of_every_file_is_listed(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("field: NTBY_TR_PBMN", "field: NOPE"))
    write(
        tmp_path, "c.yaml", "rules:\n  - id: up\n    type: sign_flip\n    field: WHOL_NTBY_QTY\n"
    )
    write(tmp_path, "d.yaml", "rules:\n  - id: x\n    type: nope\n    field: A\n    id: y\n")
    found = problems(tmp_path)
    assert found == [  # in file, line, column order; a rule with errors still has its id
        f"{tmp_path / 'b.yaml'}:2:9: rule 'up': duplicate id (first defined at "
        f"{tmp_path / 'a.yaml'}:2:9)",
        f"{tmp_path / 'b.yaml'}:4:12: rule 'up': field: 'NOPE' is not a numeric column; use one "
        "of SELN_CNQN, SELN_TR_PBMN, SHNU_CNQN, SHNU_TR_PBMN, NTBY_CNQN, NTBY_TR_PBMN, "
        "SELN_RSQN, SHNU_RSQN, WHOL_NTBY_QTY",
        f"{tmp_path / 'c.yaml'}:2:9: rule 'up': duplicate id (first defined at "
        f"{tmp_path / 'a.yaml'}:2:9)",
        f"{tmp_path / 'd.yaml'}:5:5: duplicate key 'id' (first at line 2)",
    ]


def test_a_rule_with_several_mistakes_gets_them_all_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n  - id: r\n    type: change\n    field: NTBY_TR_PBMN\n    rise: -20억\n"
        "    message: '{baseline} {zz}'\n    tickers: '005930'\n  - id: r\n    type: sign_flip\n"
        "    field: WHOL_NTBY_QTY\n",
    )
    assert problems(path) == [
        f"{path}:2:5: rule 'r': window: required key is missing",
        f"{path}:5:11: rule 'r': rise: must be more than 0",
        f"{path}:6:14: rule 'r': message: unknown placeholder {{zz}} for a change rule; "
        "available: " + ", ".join(sorted(ChangeRule.type_placeholders())),
        f"{path}:8:9: rule 'r': duplicate id (first defined at {path}:2:9)",
    ]


def test_which_keys_a_rule_has_is_checked_even_when_a_value_is_wrong(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n  - {id: a, type: threshold, field: X, above: 1, below: 2}\n"
        "  - {id: b, type: change, field: NTBY_CNQN, window: x}\n"
        "  - {id: c, type: threshold, field: NTBY_CNQN, crosses_above: 1, for: 5, enabled: 2}\n",
    )
    assert [problem.split(": ", 1)[1] for problem in problems(path)] == [
        "rule 'a': field: 'X' is not a numeric column; use one of SELN_CNQN, SELN_TR_PBMN, "
        "SHNU_CNQN, SHNU_TR_PBMN, NTBY_CNQN, NTBY_TR_PBMN, SELN_RSQN, SHNU_RSQN, WHOL_NTBY_QTY",
        "rule 'a': a threshold rule needs exactly one of crosses_above, crosses_below, above, "
        "below (it has above, below)",
        "rule 'b': a change rule needs exactly one of rise, fall (a positive number)",
        "rule 'b': window: 'x' is not a duration: write seconds (90) or 30s, 5m, 2h, 1d, "
        "1h30m (30분, 2시간, 1일)",
        "rule 'c': 'for' only works with above and below (a crossing is a moment)",
        "rule 'c': enabled: write true or false",
    ]


def test_one_ticker_needs_no_brackets_and_a_numeric_id_is_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n  - {id: 12345, type: sign_flip, field: WHOL_NTBY_QTY, tickers: 005930}\n",
    )
    [rule] = load_rules(path).rules
    assert rule.id == "12345" and rule.tickers == ("005930",)


def test_a_bad_id_is_shown_at_the_id_itself(tmp_path: Path) -> None:
    path = write(
        tmp_path, "r.yaml", "rules:\n  - id: -f\n    type: sign_flip\n    field: NTBY_CNQN\n"
    )
    assert problems(path) == [
        f"{path}:2:9: rule '-f': id '-f' must start with a letter or digit and use only letters, "
        "digits, '_', '.', '-'"
    ]


def test_a_key_beside_rules_is_named_where_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "rules: []\n\nversion: 2\n")
    assert problems(path) == [f"{path}:3:1: a rule file holds one key, 'rules', a list of rules"]


UNKNOWN_TYPE = "unknown rule type: use threshold, sign_flip, change or expr"


def test_missing_type_and_unknown_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n  - id: a\n    field: X\n  - id: b\n    type: t\n"
        "  - {id: c, type: [threshold], message: '{x}'}\n",
    )
    assert problems(path) == [
        f"{path}:2:5: rule 'a': every rule needs a type: threshold, sign_flip, change or expr",
        f"{path}:5:11: rule 'b': type: {UNKNOWN_TYPE}",
        f"{path}:6:19: rule 'c': type: {UNKNOWN_TYPE}",
    ]


def test_yaml_traps_and_readable_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n  - id: NO\n    type: change\n    field: net_buy_value\n    window: 1h30m\n"
        "    rise: 1.5조\n    tickers: [005930, 000660]\n    description: 12:30\n",
    )
    [rule] = load_rules(path).rules
    assert rule.id == "NO" and rule.description == "12:30"
    assert isinstance(rule, ChangeRule)
    assert rule.field == "NTBY_TR_PBMN" and rule.window == 5400
    assert rule.rise == 1_500_000_000_000
    assert rule.tickers == ("005930", "000660")


def test_empty_and_broken_files(tmp_path: Path) -> None:
    write(tmp_path, "commented.yaml", "# rules:\n#   - id: later\n")
    assert load_rules(tmp_path).rules == ()  # comments only: no rules, no error
    write(tmp_path, "empty.yaml", " \n")  # a save caught half-way, most likely
    assert problems(tmp_path) == [
        f"{tmp_path / 'empty.yaml'}: the file is empty"
        " (write 'rules: []' for a file with no rules)"
    ]
    write(tmp_path, "empty.yaml", "rules: []\n")
    assert load_rules(tmp_path).rules == ()
    (tmp_path / "bad.yaml").write_bytes("rules: []\n# 규칙 ".encode() + b"\xff\n# \xff\n")
    assert problems(tmp_path) == [
        f"{tmp_path / 'bad.yaml'}:2:6: not UTF-8 text (save the file as UTF-8)"
    ]


def test_templates_read_like_a_trader_and_raw_with_a_spec(tmp_path: Path) -> None:
    text = GOOD + "    message: '{ticker} {value} / {value:,} / {threshold} ({time}) {{x}}'\n"
    engine = Engine(load_rules(write(tmp_path, "r.yaml", text)))
    assert engine.on_tick(tick("090000", 9_900_000_000)) == []
    [alert] = engine.on_tick(tick("090001", 10_230_000_000))
    assert alert.message == "005930 102.3억 / 10,230,000,000 / 100억 (09:00:01) {x}"
    assert alert.as_json() == {
        "rule": "up",
        "ticker": "005930",
        "time": "2026-11-23T09:00:01+09:00",
        "value": 10_230_000_000,
        "kind": "fired",
        "message": alert.message,
    }


def test_format_specs_are_checked_against_the_numbers_an_alert_really_has(
    tmp_path: Path,
) -> None:
    text = (
        "rules:\n  - {id: c, type: change, field: NTBY_TR_PBMN, window: 10s, rise: 5,"
        " message: '{change:+d} from {baseline:d}, needed {threshold:d}'}\n"
    )
    engine = Engine(load_rules(write(tmp_path, "r.yaml", text)))
    engine.on_tick(tick("090000", 100))
    [alert] = engine.on_tick(tick("090001", 106))
    assert alert.message == "+6 from 100, needed 5"
    fractional = text.replace("rise: 5", "rise: 5.5")  # {threshold:d} cannot show 5.5
    assert "bad format in template" in problems(write(tmp_path, "r.yaml", fractional))[0]


def test_a_message_that_cannot_show_a_value_falls_back_to_the_default_words(
    tmp_path: Path,
) -> None:
    # {value:c} shows a number as a character: fine at load (0), impossible for 2e10 at run time.
    engine = Engine(load_rules(write(tmp_path, "r.yaml", GOOD + "    message: '{value:c}'\n")))
    engine.on_tick(tick("090000", 0))
    [alert] = engine.on_tick(tick("090001", 20_000_000_000))
    assert alert.message == "005930 순매수 100억 상향 돌파 → 현재 200억 (09:00:01)"


def test_default_message_says_what_where_and_against_what(tmp_path: Path) -> None:
    engine = Engine(load_rules(write(tmp_path, "r.yaml", GOOD)))
    engine.on_tick(tick("090000", 0))
    [alert] = engine.on_tick(tick("090001", 1_500_000_000_000))
    assert alert.message == "005930 순매수 100억 상향 돌파 → 현재 1.5조 (09:00:01)"


def test_a_new_day_starts_afresh(tmp_path: Path) -> None:
    engine = Engine(load_rules(write(tmp_path, "r.yaml", GOOD)))
    engine.on_tick(tick("153000", 0))
    next_day = parse_frame(
        "0|H0UNPGM0|001|005930^090000^1^1^1^1^0^20000000000^0^0^0", DAY.replace(day=24)
    )
    assert engine.on_tick(next_day[0]) == []  # no previous tick on the new day: no crossing


def test_change_window_memory_is_bounded(tmp_path: Path) -> None:
    text = "rules:\n  - {id: c, type: change, field: NTBY_TR_PBMN, window: 10s, rise: 1}\n"
    engine = Engine(load_rules(write(tmp_path, "r.yaml", text)))
    for second in range(5000):  # many ticks, 4 per second
        t = 9 * 3600 + second // 4
        engine.on_tick(tick(f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}", second))
    # White box: the window keeps the first tick of each second of the last 10 s, nothing older.
    ((times, values, *_),) = engine._tickers["005930"].export()
    assert isinstance(times, list) and isinstance(values, list)
    assert list(times) == [t - 10 + i for i in range(11)]
    assert len(values) == 11

    for second in range(5000):  # times stepping back and forth add nothing
        engine.on_tick(tick(f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60 - second % 2:02d}", 0))
    ((times, values, *_),) = engine._tickers["005930"].export()
    assert isinstance(times, list) and isinstance(values, list)
    assert len(times) == len(values) == 11


async def test_watcher_reloads_valid_edits_and_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", GOOD)
    engine = Engine(load_rules(tmp_path))
    loaded: asyncio.Queue[RuleSet] = asyncio.Queue()
    errors: asyncio.Queue[list[str]] = asyncio.Queue()

    async def on_rules(ruleset: RuleSet) -> None:
        engine.replace_rules(ruleset)
        await loaded.put(ruleset)

    async def on_error(found: list[str]) -> None:
        await errors.put(found)

    watcher = RulesWatcher(tmp_path, on_rules, on_error, settle_ms=100)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.3)
    engine.on_tick(tick("090000", 0))

    path.write_text(GOOD + "    colldown: 1\n", encoding="utf-8")  # a typo: refused
    found = await asyncio.wait_for(errors.get(), 10)
    assert found[0].startswith(f"{path}:6:5: rule 'up': colldown: unknown key")
    assert [a.rule for a in engine.on_tick(tick("090001", 20_000_000_000))] == ["up"]

    # Saved by rename, as editors do: a changed message keeps the state.
    temporary = write(tmp_path, ".r.yaml.swp", GOOD + "    message: 'new {value}'\n")
    os.replace(temporary, path)
    ruleset = await asyncio.wait_for(loaded.get(), 10)
    assert ruleset.rules[0].message == "new {value}"
    engine.on_tick(tick("090002", 0))
    assert [a.message for a in engine.on_tick(tick("090003", 20_000_000_000))] == ["new 200억"]

    write(tmp_path, "more.yaml", GOOD.replace("id: up", "id: up2"))  # a new file
    ruleset = await asyncio.wait_for(loaded.get(), 10)
    assert ruleset.ids == ["up2", "up"]  # files in name order: more.yaml, r.yaml
    watcher.stop()
    await asyncio.wait_for(task, 5)


async def test_a_save_in_two_steps_is_read_once_and_keeps_the_state(tmp_path: Path) -> None:
    # Some editors (and `git checkout`) empty or delete a file, then write it: read half-way,
    # the rules would vanish for a moment and come back fresh, firing again.
    text = "rules:\n  - {id: high, type: threshold, field: NTBY_TR_PBMN, above: 100억}\n"
    path = write(tmp_path, "r.yaml", text)
    engine = Engine(load_rules(tmp_path))
    reloads: list[RuleSet] = []
    errors: list[list[str]] = []
    outcome = asyncio.Event()

    async def on_rules(ruleset: RuleSet) -> None:
        reloads.append(ruleset)
        engine.replace_rules(ruleset)
        outcome.set()

    async def on_error(found: list[str]) -> None:
        errors.append(found)
        outcome.set()

    watcher = RulesWatcher(tmp_path, on_rules, on_error, settle_ms=500)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.3)
    assert [a.rule for a in engine.on_tick(tick("090000", 20_000_000_000))] == ["high"]
    for first_step in (lambda: path.write_text(""), path.unlink):
        first_step()
        await asyncio.sleep(0.05)
        path.write_text(text, encoding="utf-8")
        await asyncio.wait_for(outcome.wait(), 10)
        await asyncio.sleep(0.7)  # a second reload, if any, would have come by now
        assert errors == [] and [r.ids for r in reloads] == [["high"]]
        assert engine.on_tick(tick("090001", 20_000_000_000)) == []  # the same run: no repeat
        reloads.clear()
        outcome.clear()
    watcher.stop()
    await asyncio.wait_for(task, 5)


async def test_a_rules_directory_reached_through_a_symlink_is_watched(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "rules").symlink_to(tmp_path / "real")  # e.g. rules -> /etc/pgmbot/rules
    loaded: asyncio.Queue[RuleSet] = asyncio.Queue()

    async def on_rules(ruleset: RuleSet) -> None:
        await loaded.put(ruleset)

    async def on_error(found: list[str]) -> None:
        raise AssertionError(found)

    watcher = RulesWatcher(tmp_path / "rules", on_rules, on_error, settle_ms=100)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.3)
    write(tmp_path / "real", "r.yaml", GOOD)
    assert (await asyncio.wait_for(loaded.get(), 10)).ids == ["up"]
    watcher.stop()
    await asyncio.wait_for(task, 5)


async def test_a_rules_directory_removed_or_swapped_is_watched_anew(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules, "r.yaml", GOOD)
    loaded: asyncio.Queue[list[str]] = asyncio.Queue()
    errors: asyncio.Queue[list[str]] = asyncio.Queue()

    async def on_rules(ruleset: RuleSet) -> None:
        await loaded.put(ruleset.ids)

    async def on_error(found: list[str]) -> None:
        await errors.put(found)

    watcher = RulesWatcher(rules, on_rules, on_error, settle_ms=100, recheck_ms=200)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.3)

    shutil.rmtree(rules)  # gone: said once, the last good rules keep running
    assert await asyncio.wait_for(errors.get(), 10) == [
        f"{rules}: no such rules file or directory"
    ]
    rules.mkdir()
    write(rules, "r.yaml", GOOD.replace("id: up", "id: back"))
    assert await asyncio.wait_for(loaded.get(), 10) == ["back"]

    staged = tmp_path / "rules.new"  # a deploy that swaps the directory
    staged.mkdir()
    write(staged, "r.yaml", GOOD.replace("id: up", "id: swapped"))
    rules.rename(tmp_path / "rules.old")
    staged.rename(rules)
    while await asyncio.wait_for(loaded.get(), 10) != ["swapped"]:
        pass  # the old directory's own events may come first
    write(rules, "more.yaml", GOOD.replace("id: up", "id: more"))  # the new one is watched
    while await asyncio.wait_for(loaded.get(), 10) != ["more", "swapped"]:
        pass
    assert errors.empty()
    watcher.stop()
    await asyncio.wait_for(task, 5)


def test_rule_changes_name_what_a_reload_added_removed_and_changed() -> None:
    def ruleset(*rules: dict[str, object]) -> RuleSet:
        common = {"type": "threshold", "field": "NTBY_TR_PBMN"}
        return RuleSet(tuple(RULE.validate_python({**common, **rule}) for rule in rules))

    old = ruleset({"id": "a", "above": 1}, {"id": "b", "above": 1}, {"id": "c", "above": 1})
    new = ruleset(
        {"id": "a", "above": 1, "message": "new words"},  # same behaviour
        {"id": "c", "above": 2},
        {"id": "d", "below": 0},
    )
    assert rule_changes(old, new) == {"added": ["d"], "removed": ["b"], "changed": ["c"]}


def test_rules_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(ROOT / "rules")]) == 0
    out = capsys.readouterr().out
    assert "net-buy-100eok  threshold NTBY_TR_PBMN crosses_above 100억" in out
    write(tmp_path, "r.yaml", GOOD.replace("NTBY_TR_PBMN", "X"))
    assert main(["rules", "check", str(tmp_path)]) == 1
    assert f"{tmp_path / 'r.yaml'}:4:12:" in capsys.readouterr().err


def test_shipped_rule_tests_pass_and_a_failing_case_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = sorted(str(p) for p in (ROOT / "rules" / "tests").glob("*.yaml"))
    assert main(["rules", "test", *examples]) == 0
    assert " 0 failed" in capsys.readouterr().out
    case = (
        GOOD + "tests:\n  - name: wrong time\n    series: {NTBY_TR_PBMN: 0 200억}\n"
        "    expect: [{rule: up, time: '09:00:05'}]\n"
    )
    assert main(["rules", "test", str(write(tmp_path, "t.yaml", case))]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "- expected, not fired: up 005930 09:00:05" in out
    assert "+ fired, not expected: up 005930 09:00:01 value=20,000,000,000" in out
    assert f"FAIL {tmp_path / 't.yaml'}:7:5: wrong time" in out  # where the case is


def test_rules_test_names_the_line_of_a_bad_input_and_runs_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = "tests:\n  - name: c\n    ticks:\n      - {time: '9:0:1', NTBY_TR_PBMN: 1}\n"
    bad_inputs = {
        "typo.yaml": "      - {tim: '09:00:02', NTBY_TR_PBMN: 1}\n",
        "late.yaml": "      - {time: '25:00:00', NTBY_TR_PBMN: 1}\n",
        "back.yaml": "      - {time: '09:00:00', NTBY_TR_PBMN: 1}\n",
        "amount.yaml": "      - {time: '09:00:02', NTBY_TR_PBMN: lots}\n",
        "unit.yaml": "      - {time: '09:00:02', NTBY_CNQN: 100억원}\n",
        "half.yaml": "      - {time: '09:00:02', NTBY_CNQN: 1.5}\n",
    }
    files = [write(tmp_path, name, GOOD + case + line) for name, line in bad_inputs.items()]
    files.append(
        write(
            tmp_path, "unknown.yaml", GOOD + case + "    expect: [{rule: upp, time: '09:00:01'}]\n"
        )
    )
    files.append(write(tmp_path, "empty.yaml", ""))
    files.append(write(tmp_path, "fine.yaml", GOOD + case))
    assert main(["rules", "test", *map(str, files)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f'{tmp_path / "typo.yaml"}:10:9: c: a tick needs a time (time: "09:00:05")',
        f"{tmp_path / 'late.yaml'}:10:16: c: '25:00:00' is not a time of day (write \"09:00:05\")",
        f"{tmp_path / 'back.yaml'}:10:16: c: time goes back: 09:00:00 after 09:00:01 (list a "
        "stock's ticks in time order)",
        f"{tmp_path / 'amount.yaml'}:10:42: c: 'lots' is not a number (write 10000000000, "
        "10_000_000_000, 100억 or 1억5000만)",
        f"{tmp_path / 'unit.yaml'}:10:39: c: '100억원' is in won, but NTBY_CNQN counts shares"
        " (주)",
        f"{tmp_path / 'half.yaml'}:10:39: c: 1.5: KIS sends whole numbers",
        f"{tmp_path / 'unknown.yaml'}:10:21: c: no rule 'upp' here (the rules: up)",
        f"{tmp_path / 'empty.yaml'}:1:1: a rule test file holds 'rules' (or 'rule_files') and "
        "'tests'",
    ]
    assert captured.out.endswith(  # fine.yaml ran
        "\n1 passed, 0 failed, 7 not run, 8 file(s) with errors\n"
    )


def test_replay_json_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path, "r.yaml", GOOD)
    lines = [
        "0|H0UNPGM0|001|005930^090000^1^1^1^1^0^0^0^0^0",
        "2026-11-20T09:00:01+09:00\t0|H0UNPGM0|001|005930^090001^1^1^1^1^0^0^0^0^0",
        "2026-11-20T09:00:02+09:00\t0|H0UNPGM0|002|005930^090002^1^1^1^1^0^20000000000^0^0^0"
        "^000660^090002^1^1^1^1^0^1^0^0^0",
        "not a frame",
        '{"header": {"tr_id": "PINGPONG"}}',
    ]
    plain = write(tmp_path, "rec.tsv", "\n".join(lines) + "\n")
    packed = tmp_path / "rec.tsv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert (
        main(["replay", str(packed), "--rules", str(rules), "--date", "2026-11-20", "--json"]) == 0
    )
    captured = capsys.readouterr()
    [record] = [json.loads(line) for line in captured.out.splitlines()]
    assert record["rule"] == "up" and record["time"] == "2026-11-20T09:00:02+09:00"
    assert record["value"] == 20_000_000_000
    assert f"{packed}:4: skipped: not a data frame" in captured.err

    assert main(["replay", str(plain), "--rules", str(rules), "--date", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "5 lines, 3 frames, 4 ticks, 1 alerts, 0 resolved, 1 malformed skipped" in out
    assert "up    005930       1" in out


def test_replay_with_bad_rules_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path, "r.yaml", "rules: [1]\n")
    assert main(["replay", "-", "--rules", str(rules)]) == 2
    assert "the rules have errors" in capsys.readouterr().err


def test_an_amount_in_the_wrong_unit_for_its_column_is_refused(tmp_path: Path) -> None:
    body = "rules:\n  - id: r\n    type: threshold\n    field: NTBY_CNQN\n    above: 100억원\n"
    assert problems(write(tmp_path, "r.yaml", body)) == [
        f"{tmp_path / 'r.yaml'}:5:5: rule 'r': above: '100억원' is in won, but NTBY_CNQN counts "
        "shares (주)"
    ]
    [rule] = load_rules(write(tmp_path, "r.yaml", body.replace("100억원", "1억5천만주"))).rules
    assert rule.summary() == "r  threshold NTBY_CNQN above 150,000,000주"


def test_rules_check_takes_several_paths_and_notes_files_it_does_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for directory in (one, two):
        directory.mkdir()
    write(one, "a.yaml", GOOD)
    write(two, "b.yml", GOOD.replace("id: up", "id: up2"))
    assert main(["rules", "check", str(one), str(two)]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith("1 rules OK in 1 file(s)\n")
    assert f"note: {two / 'b.yml'} is not read: rule files end in .yaml" in captured.err
    assert main(["rules", "check", str(one), str(one / "a.yaml")]) == 0  # a.yaml counts once
    capsys.readouterr()
    write(two, "b.yaml", GOOD)  # the same id in another directory
    assert main(["rules", "check", str(one), str(two)]) == 1
    assert f"{two / 'b.yaml'}:2:9: rule 'up': duplicate id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        ("{}", "8:13: c: a series needs a column and its values"),
        ("{NTBY_TR_PBMN: []}", "8:28: c: NTBY_TR_PBMN: no values"),
    ],
)
def test_an_empty_series_is_a_mistake_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], series: str, expected: str
) -> None:
    path = write(tmp_path, "t.yaml", GOOD + f"tests:\n  - name: c\n    series: {series}\n")
    assert main(["rules", "test", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"{path}:{expected}")
