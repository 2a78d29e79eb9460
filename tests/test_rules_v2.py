"""Rules v2 by hand-worked examples: hours, rearm, resolved events; their errors; the commands."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from spec_oracle import fire

from bot.cli import main
from bot.engine.evaluate import Engine
from bot.engine.rule_types import RULE, AnyRule, RuleSet
from bot.engine.snapshot import decode, encode
from bot.engine.spec import RulesError, load_rules
from bot.market.sessions import MinuteRange
from bot.ticks import Tick

DAY = date(2026, 11, 23)


def tick(hhmmss: str, net: int, ticker: str = "005930", day: date = DAY) -> Tick:
    seconds = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:])
    return Tick(ticker, day, hhmmss, seconds, 0, 0, 0, 0, 0, net, 0, 0, 0)


def rule(**fields: Any) -> AnyRule:
    return RULE.validate_python({"id": "r", "field": "NTBY_TR_PBMN", **fields})


def events(rules: list[AnyRule], ticks: list[Tick], **engine: Any) -> list[tuple[str, str, str]]:
    """(time, kind, message) of every event; the oracle agrees on each."""
    run = Engine(RuleSet(tuple(rules)), **engine)
    found = [alert for t in ticks for alert in run.on_tick(t)]
    expected = fire(rules, ticks)
    assert [(a.rule, a.value, a.kind) for a in found] == [(r, v, k) for r, _, v, k in expected]
    return [(a.tick.hhmmss, a.kind, a.message) for a in found]


def times(rules: list[AnyRule], ticks: list[Tick]) -> list[tuple[str, str]]:
    return [(hhmmss, kind) for hhmmss, kind, _ in events(rules, ticks)]


# Hours


def test_the_regular_session_ends_with_its_last_minute() -> None:
    cross = rule(type="threshold", crosses_above=100, hours="regular")
    ticks = [tick("153058", 0), tick("153059", 100), tick("153059", 0), tick("153100", 100)]
    assert times([cross], ticks) == [("153059", "fired")]


def test_a_run_cut_by_the_end_of_its_hours_starts_anew_inside_them() -> None:
    held = rule(type="threshold", above=0, **{"for": 2}, hours=["09:00-09:00", "09:02-09:02"])
    ticks = [tick(f"0900{s}", 1) for s in ("58", "59")] + [tick("090100", 1)]
    ticks += [tick("090200", 1), tick("090201", 1), tick("090202", 1)]
    # 09:00:58-59 is cut at 09:01:00 before its 2 s; the run of 09:02:00 fires 2 s in.
    assert times([held], ticks) == [("090202", "fired")]


def test_a_gap_in_the_hours_without_ticks_does_not_end_a_run() -> None:
    held = rule(type="threshold", above=0, **{"for": 60}, hours=["09:00-09:00", "09:02-09:02"])
    assert times([held], [tick("090030", 1), tick("090230", 1)]) == [("090230", "fired")]


def test_a_crossing_outside_the_hours_sets_prev_and_windows_see_it() -> None:
    cross = rule(type="threshold", crosses_above=100, hours="09:00-09:00")
    surge = rule(id="s", type="change", window=120, rise=50, hours="09:01-09:01")
    ticks = [tick("085959", 90), tick("090000", 100), tick("090100", 150)]
    assert times([cross, surge], ticks) == [("090000", "fired"), ("090100", "fired")]


def test_a_config_may_redefine_the_session_names(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n  - {id: r, type: threshold, field: NTBY_TR_PBMN, above: 0, hours: regular}\n"
    )
    sessions = {"regular": MinuteRange.parse("09:00-15:20")}
    [late] = load_rules(path, sessions=sessions).rules
    [usual] = load_rules(path).rules
    assert (
        late.summary() == usual.summary() == "r  threshold NTBY_TR_PBMN above 0원  hours regular"
    )
    assert late.definition() != usual.definition()  # another session: another rule to the engine
    assert times([late], [tick("152059", 1), tick("152100", 1)]) == [("152059", "fired")]


# Rearm


def test_rearm_is_armed_again_by_a_tick_outside_the_hours() -> None:
    cross = rule(type="threshold", crosses_above=100, rearm=90, hours="09:00-09:00")
    ticks = [tick("090000", 95), tick("090001", 105), tick("090100", 80), tick("090101", 105)]
    ticks += [tick("090102", 80), tick("090159", 95), tick("090159", 105)]  # all after hours
    # Back in the hours the next day? No: a new date starts armed, with no prev.
    assert times([cross], ticks) == [("090001", "fired")]
    later = [tick("090002", 80), tick("090003", 105)]
    assert times([cross], ticks[:2] + later) == [("090001", "fired"), ("090003", "fired")]


def test_a_candidate_dropped_by_the_cooldown_leaves_a_crossing_armed() -> None:
    cross = rule(type="threshold", crosses_above=100, rearm=90, cooldown=10)
    ticks = [tick("090000", 95), tick("090001", 105), tick("090002", 80), tick("090003", 105)]
    ticks += [tick("090004", 95), tick("090012", 105)]  # armed since 09:00:02: fires
    assert times([cross], ticks) == [("090001", "fired"), ("090012", "fired")]


def test_below_with_rearm_holds_until_the_value_is_back_at_the_rearm_level() -> None:
    low = rule(type="threshold", below=-100, rearm=-90)
    ticks = [tick(f"09000{i}", v) for i, v in enumerate((-101, -95, -120, -90, -95, -101))]
    assert times([low], ticks) == [("090000", "fired"), ("090005", "fired")]


# Resolved events


def test_resolve_after_for_with_the_default_message_and_the_stock_label() -> None:
    held = rule(type="threshold", above=100 * 10**8, **{"for": 2}, resolve=True)
    ticks = [tick(f"09000{i}", v * 10**8) for i, v in enumerate((101, 101, 101))]
    ticks.append(tick("090003", 9_720_000_000))
    names = {"005930": "삼성전자(005930)"}.get
    found = events([held], ticks, names=lambda code: names(code) or code)
    assert found == [
        ("090002", "fired", "삼성전자(005930) 순매수 100억 초과 2s 지속 → 현재 101억 (09:00:02)"),
        (
            "090003",
            "resolved",
            "해제 · 삼성전자(005930) 순매수 100억 초과 → 현재 97.2억 (09:00:03)",
        ),
    ]


def test_a_resolved_event_refers_to_its_alert_and_numbers_its_own_second() -> None:
    cross = rule(type="threshold", crosses_above=1, resolve=True)
    run = Engine(RuleSet((cross,)))
    got = [a for t in [tick("090000", v) for v in (0, 1, 0, 1, 0)] for a in run.on_tick(t)]
    assert [(a.kind, a.seq) for a in got] == [
        ("fired", 0), ("resolved", 0), ("fired", 1), ("resolved", 1)
    ]  # fmt: skip
    assert got[1].resolves is got[0] and got[3].resolves is got[2]


def test_no_resolved_event_after_a_candidate_dropped_by_the_cooldown() -> None:
    held = rule(type="threshold", above=0, resolve=True, cooldown=60)
    ticks = [tick(f"09000{i}", v) for i, v in enumerate((1, 0, 1, 1, 0, 1))]
    assert times([held], ticks) == [("090000", "fired"), ("090001", "resolved")]


def test_cooldown_and_hours_never_hold_a_resolved_event_back() -> None:
    cross = rule(
        type="threshold", crosses_above=1, resolve=True, cooldown=3600, hours="09:00-09:00"
    )
    ticks = [tick("090000", 0), tick("090001", 1), tick("100000", 0)]
    assert times([cross], ticks) == [("090001", "fired"), ("100000", "resolved")]


def test_the_end_of_the_hours_resolves_a_state_rule() -> None:
    held = rule(type="threshold", above=0, resolve=True, hours="09:00-09:00")
    assert times([held], [tick("090059", 1), tick("090100", 1)]) == [
        ("090059", "fired"), ("090100", "resolved")
    ]  # fmt: skip


def test_a_new_date_forgets_an_alert_never_resolved() -> None:
    held = rule(type="threshold", above=0, resolve=True)
    cross = rule(id="c", type="threshold", crosses_above=1, resolve=True)
    next_day = DAY + timedelta(days=1)
    ticks = [tick("090000", 0), tick("090001", 5), tick("090000", 0, day=next_day)]
    assert times([held, cross], ticks) == [("090001", "fired"), ("090001", "fired")]


def test_a_change_rule_is_resolved_when_the_rise_is_gone() -> None:
    surge = rule(type="change", window=2, rise=10, resolve=True)
    ticks = [tick(f"09000{i}", v) for i, v in enumerate((0, 10, 12, 14))]
    # 09:00:03: the window is 09:00:01-03 (10 -> 14): no longer a rise of 10.
    assert times([surge], ticks) == [("090001", "fired"), ("090003", "resolved")]


def test_resolve_message_shows_the_fired_alert_and_the_value_now() -> None:
    cross = rule(
        type="threshold",
        crosses_above=100 * 10**8,
        resolve=True,
        resolve_message="{name} {fired_value}@{fired_time} → {value}@{time}",
    )
    ticks = [tick("090000", 0), tick("090001", 200 * 10**8), tick("090005", 50 * 10**8)]
    assert events([cross], ticks)[1] == (
        "090005",
        "resolved",
        "005930 200억@09:00:01 → 50억@09:00:05",
    )


def test_an_open_alert_survives_a_snapshot() -> None:
    held = rule(type="threshold", above=0, resolve=True)
    first = Engine(RuleSet((held,)))
    [fired] = first.on_tick(tick("090000", 1))
    second = Engine(RuleSet((held,)))
    second.restore(decode(encode(first.snapshot())))
    [resolved] = second.on_tick(tick("090001", 0))
    assert resolved.kind == "resolved" and resolved.resolves == fired


# Mistakes in the new keys, in plain words at file:line:column


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "    crosses_above: 100\n    rearm: 120\n",
            "6:5: rule 'r': rearm 120원 must be below crosses_above 100원",
        ),
        ("    below: 100\n    rearm: 90\n", "6:5: rule 'r': rearm 90원 must be above below 100원"),
        ("    above: 100\n    rearm: 100\n", "6:5: rule 'r': rearm 100원 must be below above"),
        ("    above: 1\n    hours: '10:00-09:00'\n", "6:12: rule 'r': hours: '10:00-09:00' ends"),
        (
            "    above: 1\n    hours: [regular, lunch]\n",
            "6:22: rule 'r': hours.1: unknown session 'lunch': use pre, regular, after or a range",
        ),
        ("    above: 1\n    hours: []\n", "6:12: rule 'r': hours: list at least one range"),
        ("    above: 1\n    hours: '9-10'\n", "6:12: rule 'r': hours: '9-10' is not a range"),
        ("    above: 1\n    hours: 25:00-26:00\n", "6:12: rule 'r': hours: '25:00-26:00' has a"),
        ("    above: 1\n    resolve: maybe\n", "6:14: rule 'r': resolve: write true or false"),
        (
            "    above: 1\n    resolve_message: '{value}'\n",
            "6:5: rule 'r': resolve_message is the message of a resolved event: add",
        ),
        (
            "    above: 1\n    resolve: true\n    resolve_message: '{fired_valu}'\n",
            "7:22: rule 'r': resolve_message: unknown placeholder {fired_valu}",
        ),
        ("    above: 1\n    message: '{fired_value}'\n", "6:14: rule 'r': message: unknown"),
        (
            "    above: 1\n    rearm: 0\n    resolve_message: x\n",
            "7:5: rule 'r': resolve_message is the message of a resolved event",
        ),
    ],
)
def test_mistakes_in_the_new_keys(tmp_path: Path, body: str, expected: str) -> None:
    head = "rules:\n  - id: r\n    type: threshold\n    field: NTBY_TR_PBMN\n"
    path = tmp_path / "r.yaml"
    path.write_text(head + body, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:{expected}"), problem


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "type: sign_flip\n    rearm: 5\n",
            "5:5: rule 'r': rearm works only with crosses_above, crosses_below, above and below, "
            "not with a sign flip",
        ),
        (
            "type: change\n    window: 5m\n    rise: 1\n    rearm: 0\n",
            "7:5: rule 'r': rearm works only with crosses_above",
        ),
        (
            "type: sign_flip\n    resolve: true\n",
            "5:5: rule 'r': resolve: a sign flip is a moment, with nothing that ends later",
        ),
    ],
)
def test_keys_a_type_does_not_take(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - id: r\n    field: NTBY_TR_PBMN\n    " + body, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:{expected}"), problem


# The commands


def test_replay_shows_resolved_events_and_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "rules:\n  - {id: up, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100억,"
        " resolve: true}\n"
    )
    frames = [
        f"2026-11-20T09:00:0{i}+09:00\t0|H0UNPGM0|001|005930^09000{i}^1^1^1^1^0^{net}^0^0^0"
        for i, net in enumerate((0, 20_000_000_000, 9_000_000_000))
    ]
    recording = tmp_path / "rec.tsv"
    recording.write_text("\n".join(frames) + "\n")
    assert main(["replay", str(recording), "--rules", str(rules), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["time"], r["value"]) for r in records] == [
        ("fired", "2026-11-20T09:00:01+09:00", 20_000_000_000),
        ("resolved", "2026-11-20T09:00:02+09:00", 9_000_000_000),
    ]
    assert main(["replay", str(recording), "--rules", str(rules)]) == 0
    out = capsys.readouterr().out
    assert (
        "2026-11-20 09:00:02 005930 up resolved  해제 · 005930 순매수 100억 이상 → 현재 90억"
        in out
    )
    assert "3 ticks, 1 alerts, 1 resolved, 0 malformed skipped" in out
    assert "up    005930       1         1" in out


def test_rules_check_shows_the_new_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {id: up, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100억,"
        " rearm: 90억, resolve: true, hours: [pre, '15:31-16:00']}\n"
    )
    assert main(["rules", "check", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "up  threshold NTBY_TR_PBMN crosses_above 100억 rearm 90억  hours pre,15:31-16:00  resolve"
    )


# Expression rules


def expr_tick(hhmmss: str, net: int, whole: int = 0, volume: int = 0) -> Tick:
    seconds = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:])
    return Tick("005930", DAY, hhmmss, seconds, 0, 0, 0, 0, volume, net, 0, 0, whole)


def test_prev_on_the_first_tick_makes_the_whole_when_false() -> None:
    rising = rule(type="expr", when="NTBY_TR_PBMN > prev(NTBY_TR_PBMN) or NTBY_TR_PBMN > 0")
    ticks = [expr_tick("090000", 5), expr_tick("090001", 6)]
    # 09:00:00: `or NTBY_TR_PBMN > 0` is true, but prev does not exist: false. Then a run.
    assert times([rising], ticks) == [("090001", "fired")]


def test_a_division_by_zero_anywhere_makes_the_whole_when_false() -> None:
    ratio = rule(type="expr", when="not (NTBY_TR_PBMN / WHOL_NTBY_QTY > 2) or NTBY_TR_PBMN > 0")
    ticks = [expr_tick("090000", 5, whole=0), expr_tick("090001", 5, whole=1)]
    assert times([ratio], ticks) == [("090001", "fired")]
    zero = rule(type="expr", when="NTBY_TR_PBMN / 0 > 1 or NTBY_TR_PBMN > 0")
    assert times([zero], ticks) == []


def test_not_binds_tighter_than_and_and_and_tighter_than_or() -> None:
    mixed = rule(type="expr", when="not NTBY_TR_PBMN > 5 and WHOL_NTBY_QTY > 0 or NTBY_CNQN > 0")
    ticks = [expr_tick("090000", 1, whole=1), expr_tick("090001", 10, whole=1)]
    ticks += [expr_tick("090002", 10, volume=1), expr_tick("090003", 1)]
    # ((not A) and B) or C: true, false, true, false (`not (A and B or C)`: fires at :00, :03).
    assert times([mixed], ticks) == [("090000", "fired"), ("090002", "fired")]


def test_arithmetic_is_exact() -> None:
    exact = rule(type="expr", when="NTBY_CNQN / 49 * 49 == NTBY_CNQN")  # 0.999… in floats
    assert times([exact], [expr_tick("090000", 0, volume=1)]) == [("090000", "fired")]


def test_a_fall_from_the_day_high_with_for_and_resolve() -> None:
    fall = rule(
        type="expr",
        when="NTBY_TR_PBMN <= day_max(NTBY_TR_PBMN) - 10억",
        resolve=True,
        **{"for": 1},
    )
    values = (50, 60, 49, 48, 55)
    ticks = [expr_tick(f"09000{i}", v * 10**8) for i, v in enumerate(values)]
    found = events([fall], ticks)
    when = "NTBY_TR_PBMN <= day_max(NTBY_TR_PBMN) - 10억"
    assert found == [
        ("090003", "fired", f"005930 {when} 1s 지속 → 순매수 48억 (09:00:03)"),
        ("090004", "resolved", f"해제 · 005930 {when} → 현재 순매수 55억 (09:00:04)"),
    ]


def test_an_expression_rule_reports_the_first_column_it_names(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n  - id: strong\n    type: expr\n"
        "    when: delta(NTBY_TR_PBMN, 5m) > 10억 and WHOL_NTBY_QTY > 0\n    for: 30s\n"
    )
    [strong] = load_rules(path).rules
    assert strong.field == "NTBY_TR_PBMN"
    assert strong.summary() == (
        "strong  expr delta(NTBY_TR_PBMN, 5m) > 10억 and WHOL_NTBY_QTY > 0 for 30s  → NTBY_TR_PBMN"
    )


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ('"NTBY_TR_PBMN > 1억 and foo > 2"', "4:34: rule 'r': when: unknown name 'foo'"),
        ("NTBY_TR_PBMN > 1 < 3", "4:28: rule 'r': when: comparisons cannot be chained"),
        ("'1 > 2'", "4:11: rule 'r': when: `when` names no column"),
        ("|\n      NTBY_TR_PBMN > 1\n      and x.y > 2", "6:11: rule 'r': when: unknown name"),
    ],
)
def test_a_mistake_in_when_is_shown_where_it_is(tmp_path: Path, when: str, expected: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"rules:\n  - id: r\n    type: expr\n    when: {when}\n", encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:{expected}"), problem


def test_rearm_on_an_expression_rule_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - {id: r, type: expr, when: NTBY_CNQN > 0, rearm: 1}\n")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert (
        "rearm works only with crosses_above, crosses_below, above and below, not with an "
        "expression rule" in info.value.problems[0]
    )


def test_stock_and_name_come_from_the_engines_names() -> None:
    cross = rule(type="threshold", crosses_above=1, message="{name}/{stock}/{ticker}")
    labels = {"005930": "삼성전자(005930)"}
    engine = Engine(RuleSet((cross,)), names=lambda code: labels.get(code, code))
    ticks = [tick("090000", 0), tick("090001", 1), tick("090000", 0, "000660")]
    fired = [a.message for t in [*ticks, tick("090001", 1, "000660")] for a in engine.on_tick(t)]
    assert fired == ["삼성전자/삼성전자(005930)/005930", "000660/000660/000660"]
