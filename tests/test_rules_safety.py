"""Rule files that are hostile or broken: refused cheaply, in words, at their place; on hot reload
the last good rules keep running and the admins hear why."""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path

import pytest
from test_yamlpos import ALIAS_BOMB

from bot.alerts import Alert
from bot.cli import main
from bot.engine.evaluate import Engine
from bot.engine.rule_types import RULE, AnyRule, RuleSet
from bot.engine.spec import RulesError, load_rules
from bot.engine.templates import MESSAGE_LIMIT, TemplateError, check_template
from bot.rules_watcher import RulesWatcher
from bot.ticks import Tick

GOOD = "rules:\n  - {id: up, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100억}\n"

_RULE = {"id": "up", "type": "threshold", "field": "NTBY_TR_PBMN", "above": 100}


def _fire(rule: AnyRule, value: int) -> list[Alert]:
    """The alerts of one tick carrying ``value`` in the rule's field."""
    tick = Tick("005930", date(2026, 1, 2), "090000", 9 * 3600, 0, 0, 0, 0, 0, value, 0, 0, 0)
    return Engine(RuleSet((rule,))).on_tick(tick)


def problems(*paths: Path) -> list[str]:
    with pytest.raises(RulesError) as info:
        load_rules(*paths)
    return info.value.problems


class Reloads:
    """What a rules watcher reports, in queues: the rule sets loaded, the problem lists."""

    def __init__(self) -> None:
        self.loaded: asyncio.Queue[RuleSet] = asyncio.Queue()
        self.errors: asyncio.Queue[list[str]] = asyncio.Queue()

    async def on_rules(self, ruleset: RuleSet) -> None:
        await self.loaded.put(ruleset)

    async def on_error(self, found: list[str]) -> None:
        await self.errors.put(found)


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
    reloads = Reloads()
    loaded, errors = reloads.loaded, reloads.errors

    watcher = RulesWatcher(
        rules, reloads.on_rules, reloads.on_error, settle_ms=100, recheck_ms=200
    )
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


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "'{value:>10000000}'",
            "{value:>10000000}: a width of 10,000,000 is too much: 100 at most",
        ),
        ("'{value:,.1000f}'", "{value:,.1000f}: a precision of 1,000 is too much: 100 at most"),
        ("'{value:0200}'", "{value:0200}: a width of 200 is too much: 100 at most"),
        (
            "'{value:>{SELN_CNQN}}'",
            "{value:>{SELN_CNQN}}: a format spec cannot hold a placeholder",
        ),
        ("'" + "{value:>99}" * 11 + "'", "renders as up to 1,089 characters: a message may have"),
        ("'" + "x" * 1001 + "'", "1,001 characters: a message may have 1,000 at most"),
    ],
)
def test_a_message_that_could_render_huge_is_refused_at_load(
    tmp_path: Path, message: str, expected: str
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(GOOD.replace("}\n", f", message: {message}}}\n"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:2:82: rule 'up': message: {expected}"), problem


def test_a_message_within_the_limits_loads() -> None:
    rule = RULE.validate_python({**_RULE, "message": "{value:>100,.100f}" + "x" * 700})
    [alert] = _fire(rule, 20_000_000_000)
    assert len(alert.message) <= MESSAGE_LIMIT


def test_a_lone_surrogate_in_a_message_is_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(GOOD.replace("}\n", ', message: "{ticker} \\ud800"}\n'))
    assert main(["rules", "check", str(path)]) == 1
    assert capsys.readouterr().err.startswith(
        f"{path}:2:82: \\ud800 is half of a character (a lone surrogate): write the character"
    )
    with pytest.raises(TemplateError, match=r"^\\ud800 is half of a character"):
        check_template(RULE.validate_python({**_RULE, "message": "{ticker} \ud800"}))


def test_a_rendered_message_never_exceeds_the_limit_whatever_a_value_is() -> None:
    # Past what KIS can send (64 bits), and past what loading measured: cut, not stored whole.
    rule = RULE.validate_python({**_RULE, "message": "{value:,} " * 30})
    [alert] = _fire(rule, 10**300)
    assert len(alert.message) == MESSAGE_LIMIT and alert.message.endswith("…")


async def test_hot_reload_of_an_alias_bomb_or_deep_nesting_keeps_the_last_good_rules(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    reloads = Reloads()
    loaded, errors = reloads.loaded, reloads.errors

    watcher = RulesWatcher(tmp_path, reloads.on_rules, reloads.on_error, settle_ms=100)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.3)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("rules:\n" + "".join(f"  {line}\n" for line in ALIAS_BOMB.splitlines()))
    [problem] = await asyncio.wait_for(errors.get(), 10)
    assert problem.startswith(f"{bomb}:3:10: '*a' repeats a value marked '&a'")
    bomb.write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n")
    [problem] = await asyncio.wait_for(errors.get(), 10)
    assert problem.startswith(f"{bomb}:1:71: nested more than 64 levels deep")
    bomb.unlink()
    assert (await asyncio.wait_for(loaded.get(), 10)).ids == ["up"]
    assert watcher.failures == 2 and loaded.empty()
    watcher.stop()
    await asyncio.wait_for(task, 5)
