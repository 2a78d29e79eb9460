"""Rule files that are hostile or broken: refused cheaply, in words, at their place; on hot reload
the last good rules keep running and the admins hear why."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from test_yamlpos import ALIAS_BOMB

from bot.cli import main
from bot.engine.reload import RulesWatcher
from bot.engine.rule_types import RuleSet
from bot.engine.spec import RulesError, load_rules

GOOD = "rules:\n  - {id: up, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100억}\n"


def problems(*paths: Path) -> list[str]:
    with pytest.raises(RulesError) as info:
        load_rules(*paths)
    return info.value.problems


def test_an_alias_bomb_rule_file_is_refused_at_its_first_alias(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("rules:\n" + "".join(f"  {line}\n" for line in ALIAS_BOMB.splitlines()))
    assert problems(tmp_path) == [
        f"{bomb}:3:10: '*a' repeats a value marked '&a': anchors (&name) and aliases (*name) "
        "are not supported: write the value out"
    ]


def test_deep_nesting_is_refused_by_rules_check_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["rules", "check", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{deep}:1:71: nested more than 64 levels deep: a rule or setting never needs that",
        f"1 problem(s) in {tmp_path}",
    ]


def test_a_rule_test_file_with_an_alias_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = tmp_path / "t.yaml"
    test.write_text(GOOD + "tests:\n  - &c {name: a, series: {NTBY_TR_PBMN: 0}}\n  - *c\n")
    assert main(["rules", "test", str(test)]) == 2
    assert capsys.readouterr().err.startswith(f"{test}:5:5: '*c' repeats a value marked '&c'")


def test_a_dangling_or_looping_rule_file_symlink_is_an_error_naming_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yaml").write_text(GOOD)
    (rules / "gone.yaml").symlink_to(tmp_path / "deploy" / "gone.yaml")
    (rules / "loop.yaml").symlink_to(rules / "loop.yaml")
    assert problems(rules) == [
        f"{rules / 'gone.yaml'}: a symlink to {tmp_path / 'deploy' / 'gone.yaml'}, which is not "
        "there",
        f"{rules / 'loop.yaml'}: a symlink loop (the link leads back to itself)",
    ]


def test_a_looping_rules_path_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.symlink_to(two)
    two.symlink_to(one)
    assert problems(one) == [f"{one}: a symlink loop (the link leads back to itself)"]
    assert main(["rules", "check", str(one)]) == 1
    assert capsys.readouterr().err.startswith(f"{one}: a symlink loop")
    dangling = tmp_path / "rules"
    dangling.symlink_to(tmp_path / "release-41")
    assert problems(dangling) == [
        f"{dangling}: a symlink to {tmp_path / 'release-41'}, which is not there"
    ]


async def test_a_vanished_symlink_target_keeps_the_last_good_rules_and_is_reported(
    tmp_path: Path,
) -> None:
    # A deploy links rules/r.yaml to a release directory, and the release is removed: nothing
    # happens in rules/ itself, yet the rules are gone from the disk.
    release, rules = tmp_path / "release", tmp_path / "rules"
    release.mkdir()
    rules.mkdir()
    (release / "r.yaml").write_text(GOOD)
    (rules / "r.yaml").symlink_to(release / "r.yaml")
    loaded: asyncio.Queue[RuleSet] = asyncio.Queue()
    errors: asyncio.Queue[list[str]] = asyncio.Queue()

    async def on_rules(ruleset: RuleSet) -> None:
        await loaded.put(ruleset)

    async def on_error(found: list[str]) -> None:
        await errors.put(found)

    watcher = RulesWatcher(rules, on_rules, on_error, settle_ms=100, recheck_ms=200)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.3)
    (release / "r.yaml").unlink()
    assert await asyncio.wait_for(errors.get(), 10) == [
        f"{rules / 'r.yaml'}: a symlink to {release / 'r.yaml'}, which is not there"
    ]
    assert loaded.empty()  # no reload with 0 rules: the last good rules keep running
    (release / "r.yaml").write_text(GOOD.replace("id: up", "id: back"))
    assert (await asyncio.wait_for(loaded.get(), 10)).ids == ["back"]
    (release / "r.yaml").write_text(GOOD.replace("id: up", "id: edited"))  # edited in place
    os.utime(release / "r.yaml", ns=(1, 1))  # however coarse the file system's clock
    assert (await asyncio.wait_for(loaded.get(), 10)).ids == ["edited"]
    watcher.stop()
    await asyncio.wait_for(task, 5)
