"""Engine snapshots: a run cut anywhere, snapshot, encoded, decoded into a fresh engine and run
on, fires exactly what the uninterrupted run fires."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import test_engine_spec as spec
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts import Alert
from bot.engine import expr
from bot.engine.evaluate import Engine, rules_key
from bot.engine.rule_types import RULE, AnyRule, ChangeRule, ExprRule, RuleSet, SignFlipRule
from bot.engine.snapshot import (
    LAYOUT,
    EngineSnapshot,
    RuleSnapshot,
    SnapshotError,
    TickerSnapshot,
    decode,
    encode,
)
from bot.engine.spec import build_ruleset, document_rules, load_rules, read_yaml
from bot.ruletest import Case, CaseProblem, RuleTestFile
from bot.ticks import FIELD_INDEX, Tick

RULES_DIR = Path(__file__).parent.parent / "rules"
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.yaml"))
DAY = spec.DAY


def keys(alerts: list[Alert]) -> list[tuple[str, str, str, int, int, str, str]]:
    """Everything an alert is stored and sent with."""
    return [(a.rule, a.ticker, a.tick.hhmmss, a.value, a.seq, a.message, a.kind) for a in alerts]


def run(engine: Engine, ticks: list[Tick]) -> list[Alert]:
    return [alert for tick in ticks for alert in engine.on_tick(tick)]


def cut_and_resume(ruleset: RuleSet, ticks: list[Tick], cut: int) -> list[Alert]:
    """Engine B: ticks up to the cut, snapshot through bytes into a fresh engine, the rest."""
    first = Engine(ruleset)
    before = run(first, ticks[:cut])
    data = encode(first.snapshot())
    second = Engine(ruleset)
    second.restore(decode(data))
    return before + run(second, ticks[cut:])


# Seconds that repeat a lot number several alerts of one second (seq 0, 1, 2 ...).
ANY_STREAM = st.one_of(spec.streams(), spec.streams(steps=(0, 0, 0, 1)))


@settings(max_examples=400, deadline=None)
@given(spec.rules(), ANY_STREAM, st.integers(min_value=0, max_value=40))
def test_a_resumed_run_fires_what_an_uninterrupted_one_fires(
    rules: list[Any], ticks: list[Tick], cut: int
) -> None:
    ruleset = RuleSet(tuple(rules))
    assert keys(cut_and_resume(ruleset, ticks, cut)) == keys(run(Engine(ruleset), ticks))


def _constants(node: object) -> list[float]:
    """The numbers written in an expression's tree."""
    if isinstance(node, expr.Num):
        return [float(node.value)]
    if isinstance(node, tuple):
        return [n for item in node for n in _constants(item)]
    if dataclasses.is_dataclass(node):
        return [n for f in dataclasses.fields(node) for n in _constants(getattr(node, f.name))]
    return []


def _levels(rules: list[AnyRule]) -> list[int]:
    """Values around every number the rules compare with, so the file rules do fire."""
    numbers = {0}
    for rule in rules:
        if isinstance(rule, ChangeRule):
            numbers |= {int(rule.rise or rule.fall or 0)}
        elif isinstance(rule, SignFlipRule):
            numbers |= {int(rule.min_abs)}
        elif isinstance(rule, ExprRule):
            numbers |= {int(n) for n in _constants(rule.expression.tree)}
        else:
            numbers |= {int(rule.threshold or 0)}
    return sorted({s * (n + d) for n in numbers for d in (-1, 0, 1) for s in (1, -1)})


@st.composite
def file_streams(draw: st.DrawFn, rules: list[AnyRule]) -> list[Tick]:
    """Ticks with values near the rules' thresholds, seconds apart up to the longest window."""
    levels = _levels(rules)
    gaps = (0, 1, 2, 30, 61, 301)
    ticks, t = [], 9 * 3600
    for _ in range(draw(st.integers(min_value=0, max_value=60))):
        t += draw(st.sampled_from(gaps))
        hhmmss = f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"
        values = [draw(st.sampled_from(levels)) for _ in FIELD_INDEX]
        ticker = draw(st.sampled_from(("005930", "000660")))
        ticks.append(Tick(ticker, DAY, hhmmss, t, *values))
    return ticks


def rule_test_file(path: Path) -> tuple[RuleSet, list[tuple[str, list[Tick]]]]:
    """A rule test file's rules and its cases' ticks (the shipped files have no mistakes)."""
    doc, _text = read_yaml(path)
    spec_file = RuleTestFile.model_validate(doc.data)
    problems: list[str] = []
    if spec_file.rules is not None:
        ruleset = build_ruleset(document_rules(doc, problems), [path])
    else:
        ruleset = load_rules(*(path.parent / name for name in spec_file.rule_files or []))
    cases = [Case.model_validate(raw) for raw in spec_file.tests]
    bad: list[CaseProblem] = []
    named = [(case.name, case.input_ticks(bad)) for case in cases]
    assert problems == [] and bad == []
    return ruleset, named


def test_the_rule_files_hold_every_type() -> None:
    types = {rule.type for path in TEST_FILES for rule in rule_test_file(path)[0].rules}
    assert types == {"threshold", "sign_flip", "change", "expr"}


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: path.name)
def test_the_rule_test_cases_resume_exactly_at_every_tick(path: Path) -> None:
    ruleset, cases = rule_test_file(path)
    for name, ticks in cases:
        whole = keys(run(Engine(ruleset), ticks))
        assert whole, f"{name}: fires nothing, so proves nothing"
        for cut in range(len(ticks) + 1):
            assert keys(cut_and_resume(ruleset, ticks, cut)) == whole, (name, cut)


@pytest.mark.parametrize("path", [RULES_DIR, *TEST_FILES], ids=lambda path: path.name)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_the_shipped_rules_resume_exactly_on_random_streams(
    path: Path, data: st.DataObject
) -> None:
    ruleset = load_rules(path) if path.is_dir() else rule_test_file(path)[0]
    ticks = data.draw(file_streams(list(ruleset.enabled)))
    cut = data.draw(st.integers(min_value=0, max_value=len(ticks)))
    assert keys(cut_and_resume(ruleset, ticks, cut)) == keys(run(Engine(ruleset), ticks))


def tick(ticker: str, t: int, net: int, day: date = DAY) -> Tick:
    hhmmss = f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"
    return Tick(ticker, day, hhmmss, t, 0, 0, 0, 0, net, 0, 0, 0, 0)


def rule(**fields: Any) -> AnyRule:
    return RULE.validate_python({"field": "NTBY_CNQN", **fields})


SURGE = rule(id="surge", type="change", window=5, rise=3)
CROSS = rule(id="cross", type="threshold", crosses_above=0, cooldown=10)


def test_alerts_of_one_second_go_on_numbering_after_a_resume() -> None:
    ruleset = RuleSet((CROSS.model_copy(update={"cooldown": 0}),))
    ticks = [tick("005930", 32400, net) for net in (-1, 1, -1, 1, -1, 1)]
    whole = run(Engine(ruleset), ticks)
    assert [a.seq for a in whole] == [0, 1, 2]
    assert keys(cut_and_resume(ruleset, ticks, 4)) == keys(whole)


def test_a_snapshot_is_a_copy_the_engine_does_not_change_afterwards() -> None:
    engine = Engine(RuleSet((SURGE,)))
    run(engine, [tick("005930", 32400 + i, i) for i in range(3)])
    snapshot = engine.snapshot()
    before = encode(snapshot)
    run(engine, [tick("005930", 32410 + i, i) for i in range(3)])
    assert encode(snapshot) == before


def test_restore_keeps_state_by_definition_and_starts_changed_rules_fresh() -> None:
    surge = SURGE.model_copy(update={"rise": 4})
    engine = Engine(RuleSet((surge, CROSS)))
    fired = run(engine, [tick("005930", 32400, -2), tick("005930", 32401, 1)])
    assert [a.rule for a in fired] == ["cross"]
    snapshot = engine.snapshot()
    renamed = surge.model_copy(update={"message": "{rule} fired"})  # the same definition
    stricter = CROSS.model_copy(update={"cooldown": 20})  # another definition: fresh state
    resumed = Engine(RuleSet((renamed, stricter)))
    resumed.restore(snapshot)
    ticks = [tick("005930", 32402, 2), tick("005930", 32403, -1), tick("005930", 32404, 1)]
    later = [(a.rule, a.tick.seconds) for a in run(resumed, ticks)]
    # The surge kept its window: 2 - (-2) at 32402, under its new message. The old cross would
    # still be cooling down at 32404 (fired at 32401, 10 s); the changed one starts afresh.
    assert later == [("surge", 32402), ("cross", 32404)]
    assert run(Engine(RuleSet((renamed,))), ticks[:1]) == []  # no window, no surge
    resumed.restore(snapshot)
    assert run(resumed, ticks[:1])[0].message == "surge fired"


def test_restore_replaces_what_the_engine_held() -> None:
    engine = Engine(RuleSet((CROSS,)))
    run(engine, [tick("000660", 32400, -1)])
    engine.restore(Engine(RuleSet((CROSS,))).snapshot())  # an empty snapshot
    assert engine.snapshot() == EngineSnapshot({})
    assert run(engine, [tick("000660", 32401, 1)]) == []  # no previous value survived


def test_a_snapshot_of_another_day_gives_way_to_the_new_day() -> None:
    engine = Engine(RuleSet((CROSS,)))
    run(engine, [tick("005930", 32400, -1)])
    resumed = Engine(RuleSet((CROSS,)))
    resumed.restore(decode(encode(engine.snapshot())))
    next_day = date(2026, 11, 24)
    assert run(resumed, [tick("005930", 32401, 1, next_day)]) == []


def test_the_encoded_form_is_json_with_each_definition_written_once() -> None:
    engine = Engine(RuleSet((SURGE, CROSS)))
    run(engine, [tick(f"{n:06d}", 32400, n) for n in range(5)])
    plain = json.loads(encode(engine.snapshot()))
    assert plain["layout"] == LAYOUT
    assert len(plain["rules"]) == 2
    assert plain["tickers"][0] == {
        "ticker": "000000",
        "day": "2026-11-23",
        "rules": [
            [0, None, 0, [[32400], [0], 32400, 0, None, False], None, 0],
            [1, None, 0, [0], None, 0],
        ],
    }


TICKER = {"ticker": "005930", "day": "2026-11-23", "rules": []}


def _encoded(**changes: Any) -> bytes:
    plain: dict[str, Any] = {
        "layout": LAYOUT,
        "rules": ["k"],
        "tickers": [
            {"ticker": "005930", "day": "2026-11-23", "rules": [[0, None, 0, [1], None, 0]]}
        ],
    }
    plain.update(changes)
    return json.dumps(plain).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a snapshot of layout 2"),
        (b'{"layout": 2, "rules": [], "tick', "not a snapshot of layout 2"),
        (_encoded(layout=1), "snapshot layout 1, this bot reads layout 2"),
        (_encoded(layout=1, tickers="other"), "snapshot layout 1, this bot reads layout 2"),
        (_encoded(rules=[]), "rule index 0 is unknown"),
        (
            _encoded(tickers=[{**TICKER, "rules": [[0, 1, 0, ["x"], None, 0]]}]),
            "tickers.0.rules.0.3.0",
        ),
        (
            _encoded(tickers=[{**TICKER, "rules": [[0, 1, 0, [1.5], None, 0]]}]),
            "tickers.0.rules.0.3.0",
        ),
        (_encoded(tickers=[{**TICKER, "rules": [[0, 1, 0, [1]]]}]), "tickers.0.rules.0"),
        (
            _encoded(
                tickers=[{**TICKER, "rules": [[0, 1, 0, [{"open": {"rule": "r"}}], None, 0]]}]
            ),
            "tickers.0.rules.0.3.0",
        ),
        (_encoded(tickers=[{**TICKER, "x": 1}]), "tickers.0.x"),
        (_encoded(tickers=[{**TICKER, "day": "23.11."}]), "tickers.0.day"),
        (_encoded(tickers=[TICKER, TICKER]), "ticker '005930' appears twice"),
        (b"[" * 100_000, "not a snapshot of layout 2"),
        (b"[1, 2]", "not a snapshot of layout 2"),
        (b'{"layout": true}', "not a snapshot of layout 2"),
    ],
)
def test_bad_snapshots_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SnapshotError) as caught:
        decode(data)
    assert reason in str(caught.value)


def test_a_state_that_does_not_fit_its_rule_is_refused_and_changes_nothing() -> None:
    from bot.engine.evaluate import definition_key

    engine = Engine(RuleSet((SURGE,)))
    run(engine, [tick("005930", 32400, 1)])
    kept = engine.snapshot()
    wrong = RuleSnapshot((0,), None, 0)  # a sign flip's state under the surge's key
    bad = EngineSnapshot({"000660": TickerSnapshot.of(DAY, {definition_key(SURGE): wrong})})
    with pytest.raises(SnapshotError, match="a state of 1 values where 6 belong"):
        engine.restore(bad)
    assert engine.snapshot() == kept


def test_windows_come_back_as_lists() -> None:
    engine = Engine(RuleSet((SURGE,)))
    run(engine, [tick("005930", 32400, 1)])
    resumed = Engine(RuleSet((SURGE,)))
    resumed.restore(decode(encode(engine.snapshot())))
    run(resumed, [tick("005930", 32401 + i, i) for i in range(10)])  # windows pop from the left
    (state,) = resumed.snapshot().tickers["005930"].states
    assert state[0] == list(range(32405, 32411))  # the last 6 seconds: window 5 + 1


def test_the_rules_key_follows_definitions_not_order_or_messages() -> None:
    key = rules_key(RuleSet((SURGE, CROSS)))
    assert rules_key(RuleSet((CROSS, SURGE))) == key
    renamed = CROSS.model_copy(update={"message": "{rule}", "description": "x"})
    assert rules_key(RuleSet((SURGE, renamed))) == key
    assert rules_key(RuleSet((SURGE, CROSS.model_copy(update={"cooldown": 11})))) != key
    assert rules_key(RuleSet((SURGE, CROSS.model_copy(update={"enabled": False})))) != key
