"""Compiled parts shared by stocks (bot.engine.programs): the same alerts as each stock compiled on
its own, compiling that grows with distinct rule sets and not with stocks, and a rule set compiled
apart from the running engine and swapped in later (what a reload in a worker thread does)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_oracle import fire
from test_engine_spec import rules, streams

from bot.engine.evaluate import Engine
from bot.engine.programs import Programs, rules_key
from bot.engine.rule_types import RULE, RuleSet
from bot.ticks import Tick

DAY = date(2026, 11, 23)
Events = list[tuple[str, str, int, int, int, str, str]]


def events(engine: Engine, ticks: list[Tick], reloads: dict[int, RuleSet] | None = None) -> Events:
    """Every alert with its tick's place, key and message; ``reloads``: rule sets replacing the
    running ones before the tick at that place."""
    got: Events = []
    for i, tick in enumerate(ticks):
        if reloads and i in reloads:
            engine.replace_rules(reloads[i])
        for a in engine.on_tick(tick):
            got.append((a.rule, a.ticker, i, a.value, a.seq, a.message, a.kind))
    return got


def layouts(ruleset: RuleSet) -> list[Engine]:
    """The same rules unshared (each stock compiled whole), and shared in parts of 1, 2 and 32."""
    return [
        Engine(ruleset, shared=False),
        Engine(ruleset, part_size=1),
        Engine(ruleset, part_size=2),
        Engine(ruleset),
    ]


@settings(max_examples=200, deadline=None)
@given(rules(), streams())
def test_sharing_fires_what_each_stock_compiled_alone_fires(
    ruleset: list[Any], ticks: list[Tick]
) -> None:
    # Parts of one rule each interleave house and listed rules: a tick's alerts must still come
    # in rule-set order, as one function per stock gives them.
    reference, *shared = (events(e, ticks) for e in layouts(RuleSet(tuple(ruleset))))
    assert [(r, i, v, kind) for r, _, i, v, _, _, kind in reference] == fire(ruleset, ticks)
    for got in shared:
        assert got == reference


@settings(max_examples=100, deadline=None)
@given(rules(), rules(), streams(), st.integers(0, 40), st.integers(0, 40))
def test_reloads_keep_the_same_state_shared_or_not(
    ruleset: list[Any], extra: list[Any], ticks: list[Tick], cut: int, later: int
) -> None:
    # Two reloads: new messages, reversed order and a new rule, then back to the first rules
    # (a stock that did not tick in between moves over two rule sets at once).
    renamed = [r.model_copy(update={"message": "{rule} {value}!"}) for r in reversed(ruleset)]
    new = extra[0].model_copy(update={"id": "new"})
    reloads = {cut: RuleSet((*renamed, new)), cut + later: RuleSet(tuple(ruleset))}
    reference, *shared = (events(e, ticks, reloads) for e in layouts(RuleSet(tuple(ruleset))))
    for got in shared:
        assert got == reference


@settings(max_examples=100, deadline=None)
@given(rules(), rules(), streams(), st.integers(0, 40), st.integers(0, 10))
def test_a_rule_set_compiled_apart_and_swapped_in_later_is_a_reload_at_the_swap(
    ruleset: list[Any], extra: list[Any], ticks: list[Tick], cut: int, wait: int
) -> None:
    # prepare() while ticks go on under the old rules (a worker thread compiling), swap() some
    # ticks later: exactly a reload at the swap. (Ids are unique in a rule set, as loaded.)
    added = [r.model_copy(update={"id": f"x{n}"}) for n, r in enumerate(extra)]
    first, second = RuleSet(tuple(ruleset)), RuleSet((*ruleset[1:], *added))
    engine = Engine(first)
    got: Events = []
    prepared = None
    for i, tick in enumerate(ticks):
        if i == cut:
            prepared = engine.prepare(second)
        if i == cut + wait and prepared is not None:
            engine.swap(prepared)
        got += [
            (a.rule, a.ticker, i, a.value, a.seq, a.message, a.kind) for a in engine.on_tick(tick)
        ]
    swapped_at = cut + wait if cut + wait < len(ticks) and cut < len(ticks) else len(ticks)
    assert got == events(Engine(first, shared=False), ticks, {swapped_at: second})


def rule(n: int, tickers: list[str] | None = None, **values: Any) -> Any:
    made = {"id": f"r{n}", "type": "threshold", "field": "NTBY_CNQN", "crosses_above": n}
    made.update(values)
    if tickers is not None:
        made["tickers"] = tickers
    return RULE.validate_python(made)


def tick(ticker: str, second: int, net: int) -> Tick:
    t = 9 * 3600 + second
    hhmmss = f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"
    return Tick(ticker, DAY, hhmmss, t, 0, 0, 0, 0, net, 0, 0, 0, 0)


HOUSE = [rule(n) for n in range(10)]
CODES = [f"{n:06d}" for n in range(500)]


def test_compiling_grows_with_distinct_rule_sets_not_stocks() -> None:
    # 10 house rules, and one rule listing 2 of 500 stocks: 3 distinct sets (house alone,
    # house + r10, house + r11 + r10 for 000001), so 5 parts of at most 4 rules.
    listed = [rule(10, ["000000", "000001"]), rule(11, ["000001"])]
    programs = Programs(RuleSet((*HOUSE, *listed)), part_size=4)
    assert programs.compiled == programs.distinct == 5  # house 4+4+2, [r10], [r10, r11]
    assert programs.parts("000002") is programs.parts("000499")  # same rules: same parts
    assert [len(p.keys) for p in programs.parts("000001")] == [4, 4, 2, 2]
    engine = Engine(RuleSet((*HOUSE, *listed)), part_size=4)
    for second, code in enumerate(CODES):
        engine.on_tick(tick(code, second, 0))
    assert engine.programs.compiled == 5  # 500 stocks bound, nothing more compiled


def test_a_reload_compiles_only_the_parts_that_changed() -> None:
    engine = Engine(RuleSet(tuple(HOUSE)), part_size=4)
    for code in CODES[:20]:
        engine.on_tick(tick(code, 0, 0))
    renamed = RuleSet(tuple(r.model_copy(update={"message": "{value}"}) for r in HOUSE))
    assert engine.prepare(renamed).compiled == 0  # messages only: every part reused
    edited = RuleSet((*HOUSE[:9], rule(9, crosses_above=99)))
    assert engine.prepare(edited).compiled == 1  # the last part of the house
    assert rules_key(edited) == engine.prepare(edited).key


def test_unchanged_rules_carry_their_state_through_a_swap_stock_by_stock() -> None:
    # Each stock stands below r1's level at the swap; a stock that next ticks much later still
    # crosses from its value before the swap, under the new rule set's message.
    engine = Engine(RuleSet((rule(1),)))
    for code in CODES[:3]:
        engine.on_tick(tick(code, 0, 0))
    engine.swap(engine.prepare(RuleSet((rule(1, message="now {value}"),))))
    fired = [engine.on_tick(tick(code, 10 + n, 5)) for n, code in enumerate(CODES[:3])]
    assert [[a.message for a in alerts] for alerts in fired] == [["now 5주"]] * 3
    assert set(engine.snapshot().tickers) == set(CODES[:3])


def test_an_open_alert_is_resolved_across_a_swap_in_a_shared_part_with_the_stocks_name() -> None:
    # r1 fires for two stocks sharing one compiled part; a reload that changes only the resolve
    # message keeps the part, so each stock's open alert is resolved by the new rule's text.
    held = rule(1, resolve=True, resolve_message="{stock} over at {value}")
    names = {"000000": "삼성전자(000000)"}.get
    engine = Engine(RuleSet((held,)), names=lambda code: names(code) or code)
    for code in CODES[:2]:  # a crossing needs a tick below first
        engine.on_tick(tick(code, 0, 0))
    fired = [a for code in CODES[:2] for a in engine.on_tick(tick(code, 1, 5))]
    assert [(a.ticker, a.kind) for a in fired] == [("000000", "fired"), ("000001", "fired")]
    reworded = held.model_copy(update={"resolve_message": "{stock} done at {value}"})
    programs = engine.prepare(RuleSet((reworded,)))
    assert programs.compiled == 0
    engine.swap(programs)
    ended = [a for code in CODES[:2] for a in engine.on_tick(tick(code, 2, 0))]
    assert [(a.kind, a.message, a.resolves) for a in ended] == [
        ("resolved", "삼성전자(000000) done at 0주", fired[0]),
        ("resolved", "000001 done at 0주", fired[1]),
    ]


def test_rules_of_a_part_share_a_series_only_while_their_states_agree() -> None:
    # Two crossings of one column keep its previous value once, as long as they have run
    # together. A rule added next to one that has run starts fresh all the same (its crossing
    # needs a tick first): the part then runs with each rule's own series, until a new day.
    first = rule(10)
    engine = Engine(RuleSet((first,)))
    assert engine.on_tick(tick("005930", 0, 5)) == []
    engine.replace_rules(RuleSet((first, rule(8))))
    fired = [(a.rule, a.tick.seconds) for a in engine.on_tick(tick("005930", 1, 12))]
    assert fired == [("r10", 32401)]  # r8 saw no tick before: 5 -> 12 is no crossing for it
    later = [tick("005930", 2, 7), tick("005930", 3, 9), tick("005930", 4, 11)]
    assert [(a.rule, a.tick.seconds) for t in later for a in engine.on_tick(t)] == [
        ("r8", 32403),
        ("r10", 32404),
    ]
    next_day = Tick("005930", date(2026, 11, 24), "090000", 32400, 0, 0, 0, 0, 5, 0, 0, 0, 0)
    assert engine.on_tick(next_day) == []
    crossing = Tick("005930", date(2026, 11, 24), "090001", 32401, 0, 0, 0, 0, 12, 0, 0, 0, 0)
    assert [a.rule for a in engine.on_tick(crossing)] == ["r10", "r8"]  # both, in rule order


def test_rules_skipped_between_their_levels_still_see_time_pass_in_a_run() -> None:
    # A crossing and a level held for 3 s on one column run only when the value reaches or
    # passes one of their levels, or while the run waits out its `for`: the run fires at 3 s
    # though the value stays between the same levels all along.
    held = RULE.validate_python(
        {"id": "held", "type": "threshold", "field": "NTBY_CNQN", "above": 5, "for": "3s"}
    )
    engine = Engine(RuleSet((rule(10), held)))
    values = [(0, 6), (1, 7), (2, 7), (3, 8), (4, 9), (5, 12)]
    fired = [
        (a.rule, a.tick.seconds) for s, v in values for a in engine.on_tick(tick("005930", s, v))
    ]
    assert fired == [("held", 32403), ("r10", 32405)]


def test_a_step_that_raises_tells_its_caller_and_goes_on_with_the_next_tick() -> None:
    # A bug in making an alert (here: the stock's label) reaches the caller of that tick; the
    # stock's step lives on and evaluates the next ticks (what the failed tick had not reached
    # yet, it did not change).
    calls = []

    def label(code: str) -> str:
        calls.append(code)
        if len(calls) == 1:
            raise LookupError("no such label")
        return f"삼성전자({code})"

    engine = Engine(RuleSet((rule(10), rule(20))), names=label)
    engine.on_tick(tick("005930", 0, 5))
    with pytest.raises(LookupError):
        engine.on_tick(tick("005930", 1, 12))  # r10 fires: its label raises
    assert engine.on_tick(tick("005930", 2, 9)) == []
    fired = engine.on_tick(tick("005930", 3, 25))
    assert [(a.rule, a.message.split()[0]) for a in fired] == [
        ("r10", "삼성전자(005930)"),
        ("r20", "삼성전자(005930)"),
    ]
    assert engine.snapshot().tickers["005930"].day == DAY
