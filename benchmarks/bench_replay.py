"""Replay throughput and memory: the engine path against a bare split + int() loop, same file.

    python benchmarks/bench_replay.py [--ticks 1000000] [--tickers 40]

Generates a recording (timestamped lines, multi-record frames of 1-4 records, day-cumulative
random walks) and 12 rules of every type (``--case rules12``; ``rules24`` adds 12 with hours,
rearm, resolve and three expression rules), then measures in one run:
  bare    read lines, split on TAB, '|' and '^', int() the 9 numeric fields of each record
  engine  bot.replay.replay_lines: read + parse into Ticks + every rule on every tick
and prints ticks/s of both and their ratio (target: engine >= 0.4x bare, >= 150k ticks/s), then the
peak traced memory of the engine path for a quarter of the ticks and for all of them (it should be
flat: nothing grows with the number of ticks).

``--case desk`` (all three cases are the default ``all``) runs a desk's 1,000 rules on 2,500 stocks
(``desk_rules`` says what they are): the same two rates and their ratio (target >= 0.1x), the peak
traced memory (target < 200 MB), the cost of a stock's first tick and of making the engine (its
compiling), then a reload of an edited rule set while an event loop feeds ticks: how long it
took and the loop's longest stall meanwhile (target <= 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import re
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

from bot.engine.evaluate import Engine
from bot.engine.rule_types import RuleSet
from bot.engine.spec import load_rules
from bot.kis.recording import open_text
from bot.live_rules import LoadedRules, RulesController
from bot.notices import AdminNotices
from bot.replay import ReplayStats, replay_lines
from bot.ticks import Tick, parse_records, split_frame

DAY = date(2026, 11, 23)
T = TypeVar("T")
RULES = """\
rules:
  - {id: net-buy-100eok, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100억, cooldown: 10m}
  - {id: net-sell-100eok, type: threshold, field: NTBY_TR_PBMN, crosses_below: -100억}
  - {id: net-vol-up, type: threshold, field: NTBY_CNQN, crosses_above: 0, cooldown: 1m}
  - {id: buy-heavy, type: threshold, field: NTBY_TR_PBMN, above: 50억, for: 30s}
  - {id: sell-heavy, type: threshold, field: NTBY_TR_PBMN, below: -50억, for: 1m, cooldown: 5m}
  - {id: book-flip, type: sign_flip, field: WHOL_NTBY_QTY, min_abs: 5000, cooldown: 1m}
  - {id: book-to-buy, type: sign_flip, field: WHOL_NTBY_QTY, direction: to_positive}
  - {id: surge-5m, type: change, field: NTBY_TR_PBMN, window: 5m, rise: 20억, cooldown: 5m}
  - {id: dump-1m, type: change, field: NTBY_TR_PBMN, window: 1m, fall: 10억, for: 10s}
  - {id: samsung-100eok, type: threshold, field: NTBY_TR_PBMN, crosses_above: 100억,
     tickers: ["000000", "000001"]}
  - {id: big-caps-flip, type: sign_flip, field: WHOL_NTBY_QTY, tickers: ["000002", "000003"]}
  - {id: few-surge, type: change, field: SHNU_TR_PBMN, window: 30s, rise: 5억,
     tickers: ["000004", "000005", "000006"]}
"""

#: The 12 rules and 12 more with what rules v2 added (issue 10): hours, rearm, resolve (resolved
#: events) and three expression rules.
RULES24 = (
    RULES
    + """\
  - {id: buy-rearm, type: threshold, field: NTBY_TR_PBMN, crosses_above: 50억, rearm: 40억,
     resolve: true, hours: regular}
  - {id: sell-held, type: threshold, field: NTBY_TR_PBMN, below: -30억, rearm: -25억, for: 30s,
     resolve: true}
  - {id: morning-dump, type: threshold, field: NTBY_TR_PBMN, crosses_below: -50억,
     hours: "09:00-10:00"}
  - {id: surge-open, type: change, field: NTBY_TR_PBMN, window: 1m, rise: 10억, resolve: true,
     hours: regular}
  - {id: flip-late, type: sign_flip, field: WHOL_NTBY_QTY, hours: [pre, "09:30-11:00"]}
  - {id: buy-later, type: threshold, field: NTBY_TR_PBMN, above: 20억, hours: "10:00-15:30",
     resolve: true}
  - {id: shnu-cross, type: threshold, field: SHNU_TR_PBMN, crosses_above: 0, rearm: -5억}
  - {id: dump-held, type: change, field: NTBY_TR_PBMN, window: 30s, fall: 5억, for: 10s,
     resolve: true}
  - {id: flip-neg, type: sign_flip, field: WHOL_NTBY_QTY, direction: to_negative,
     min_abs: 5000, hours: regular, cooldown: 5m}
  - {id: expr-both, type: expr, when: "NTBY_TR_PBMN >= 30억 and WHOL_NTBY_QTY > 0", for: 10s,
     resolve: true}
  - {id: expr-move, type: expr, cooldown: 1m,
     when: "delta(NTBY_TR_PBMN, 1m) > 10억 and NTBY_TR_PBMN > prev(NTBY_TR_PBMN)"}
  - {id: expr-low, type: expr, hours: regular,
     when: "NTBY_TR_PBMN - day_min(NTBY_TR_PBMN) > 50억 and abs(WHOL_NTBY_QTY) > 1000"}
"""
)


def record(s: list[int], code: str, hhmmss: str, rng: random.Random) -> str:
    """One record of ``code`` at ``hhmmss``, its cumulative figures ``s`` moved on at random."""
    price = s[6]
    sold, bought = rng.randint(0, 300), rng.randint(0, 310)
    s[0] += sold
    s[1] += sold * price
    s[2] += bought
    s[3] += bought * price
    s[4] = max(0, s[4] + rng.randint(-3000, 3000))
    s[5] = max(0, s[5] + rng.randint(-3000, 3000))
    return (
        f"{code}^{hhmmss}^{s[0]}^{s[1]}^{s[2]}^{s[3]}^{s[2] - s[0]}^{s[3] - s[1]}"
        f"^{s[4]}^{s[5]}^{s[5] - s[4]}"
    )


def generate(path: Path, ticks: int, tickers: int, seed: int = 1) -> None:
    """Day-cumulative program figures as random walks, 1-4 records per frame, ~50 ticks/s."""
    rng = random.Random(seed)
    codes = [f"{i:06d}" for i in range(tickers)]
    state = {c: [0, 0, 0, 0, 50_000, 50_000, rng.randint(20_000, 300_000)] for c in codes}
    written, second = 0, 9 * 3600
    with path.open("w", encoding="utf-8") as out:
        while written < ticks:
            second += rng.random() < 0.02
            count = min(rng.randint(1, 4), ticks - written)
            clock = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            stamp = f"{DAY.isoformat()}T{clock}"
            records = []
            for code in rng.sample(codes, count):
                hhmmss = f"{second // 3600:02d}{second // 60 % 60:02d}{second % 60:02d}"
                records.append(record(state[code], code, hhmmss, rng))
            out.write(f"{stamp}+09:00\t0|H0UNPGM0|{count:03d}|{'^'.join(records)}\n")
            written += count


def bare(path: Path) -> int:
    """The floor: split and int() every numeric field, nothing else."""
    ticks = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            frame = line.partition("\t")[2]
            payload = frame.rsplit("|", 1)[1]
            fields = payload.split("^")
            for start in range(0, len(fields), 11):
                [int(x) for x in fields[start + 2 : start + 11]]
                ticks += 1
    return ticks


def engine_path(path: Path, rules_dir: Path) -> tuple[int, int]:
    """Read + parse + engine, as `pgmbot replay`; returns (ticks, alerts)."""
    stats = ReplayStats()
    engine = Engine(load_rules(rules_dir))
    with open_text(path) as lines:  # as `pgmbot replay` opens its inputs
        alerts = sum(1 for _ in replay_lines(lines, engine, DAY, stats, lambda *a: None))
    return stats.ticks, alerts


def timed(function: Callable[..., T], *args: object) -> tuple[T, float]:
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def peak_memory(path: Path, rules_dir: Path) -> int:
    tracemalloc.start()
    engine_path(path, rules_dir)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


# -- a desk: 1,000 rules on 2,500 stocks -----------------------------------------------------

DESK_STOCKS = 2500
DESK_RULES = 1000
DESK_FOR_ALL = 100  # house rules, on every stock
_LEVELS = (1, 2, 5, 10, 20, 50, 100, 200)  # 억
_COOLDOWNS = ("0", "1m", "5m", "10m")


def _desk_rule(n: int, rng: random.Random) -> str:
    """One rule of the mix a desk writes: crossings 35 %, above/below for 20 %, book flips 20 %,
    surges and dumps 25 %."""
    head = f"id: r{n:04d}, cooldown: {rng.choice(_COOLDOWNS)}"
    kind = rng.random()
    level = rng.choice(_LEVELS)
    if kind < 0.35:
        side, sign = rng.choice((("crosses_above", ""), ("crosses_below", "-")))
        field = rng.choice(("NTBY_TR_PBMN", "NTBY_TR_PBMN", "SHNU_TR_PBMN"))
        return f"{head}, type: threshold, field: {field}, {side}: {sign}{level}억"
    if kind < 0.55:
        side, sign = rng.choice((("above", ""), ("below", "-")))
        return (f"{head}, type: threshold, field: NTBY_TR_PBMN, {side}: {sign}{level}억, "
                f"for: {rng.choice(('10s', '30s', '1m'))}")  # fmt: skip
    if kind < 0.75:
        direction = rng.choice(("any", "any", "to_positive", "to_negative"))
        return (f"{head}, type: sign_flip, field: WHOL_NTBY_QTY, "
                f"min_abs: {rng.choice((0, 1000, 5000))}, direction: {direction}")  # fmt: skip
    window = rng.choice(("30s", "1m", "5m", "10m"))
    move = rng.choice(("rise", "fall"))
    lasting = rng.choice(("0", "0", "10s"))
    return (f"{head}, type: change, field: NTBY_TR_PBMN, window: {window}, "
            f"{move}: {rng.choice((1, 2, 5, 10))}억, for: {lasting}")  # fmt: skip


def desk_rules(
    rules: int = DESK_RULES, stocks: int = DESK_STOCKS, for_all: int = DESK_FOR_ALL, seed: int = 7
) -> str:
    """The rule file of a desk of traders: ``for_all`` house rules on every stock, the rest the
    traders' own rules, each with a ``tickers:`` list (one stock for 40 % of them, 2-5 for 27 %,
    6-20 for a third). The stocks are picked with Zipf-like weights (1/(rank + 10)): the large
    caps are in 60-80 lists each, 1,468 stocks in one or more, 1,032 in none (those run the house
    rules alone)."""
    rng = random.Random(seed)
    codes = [f"{i:06d}" for i in range(stocks)]
    weights = [1 / (rank + 10) for rank in range(stocks)]
    lines = ["rules:"]
    for n in range(rules):
        rule = _desk_rule(n, rng)
        if n % (rules // for_all) != 0:  # every tenth rule is a house rule
            size = rng.choice((1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20))
            picked = sorted(set(rng.choices(codes, weights, k=size)))
            rule += f", tickers: [{', '.join(repr(code) for code in picked)}]"
        lines.append(f"  - {{{rule}}}")
    return "\n".join(lines) + "\n"


def edited(text: str) -> str:
    """The desk's file after a trader's save: a house rule's cooldown changed, one rule added."""
    first = next(line for line in text.splitlines() if "id: r0000," in line)
    changed = re.sub(r"cooldown: \w+", "cooldown: 2m", first)
    extra = "  - {id: added, type: threshold, field: NTBY_TR_PBMN, crosses_above: 30억}\n"
    return text.replace(first, changed) + extra


def frames(path: Path) -> list[list[Tick]]:
    """The recording's frames as parsed ticks (what the feed hands the pipeline)."""
    out: list[list[Tick]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            envelope = split_frame(line.rstrip("\n").partition("\t")[2])
            out.append(parse_records(envelope.payload, envelope.records, DAY, []))
    return out


def first_ticks(ruleset: RuleSet, ticks: list[list[Tick]]) -> tuple[float, float, float, int]:
    """Making the engine, and each stock's first tick: (make s, longest first tick s, all first
    ticks s, stocks)."""
    engine, made = timed(Engine, ruleset)
    seen: set[str] = set()
    longest = total = 0.0
    for frame in ticks:
        for tick in frame:
            if tick.ticker in seen:
                continue
            seen.add(tick.ticker)
            _, took = timed(engine.on_ticks, (tick,))
            longest, total = max(longest, took), total + took
    return made, longest, total, len(seen)


async def _beat(gaps: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """Wake every millisecond and keep each gap (when it ended, how long): the loop's stalls."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append((now, now - last))
        last = now


async def reload_while_running(
    old: RuleSet, new: RuleSet, ticks: list[list[Tick]]
) -> tuple[float, float, float, int]:
    """The engine warmed up on half the frames, then the rest fed on an event loop (a frame per
    loop turn, as the feed calls it) while the rules watcher's callback swaps in ``new``; each
    stock moves to the new rules on its next tick, in the half second after. Returns (reload s,
    the loop's longest stall s from the reload's start to half a second after it, longest stall
    s in the half second before it, ticks fed)."""
    engine = Engine(old)
    half = len(ticks) // 2
    for frame in ticks[:half]:
        engine.on_ticks(frame)
    gc.freeze()  # as the bot does once started (bot.app)
    controller = RulesController(LoadedRules(old), engine, AdminNotices())
    fed = 0

    async def feed(stop: asyncio.Event) -> None:
        nonlocal fed
        for frame in ticks[half:]:
            if stop.is_set():
                return
            engine.on_ticks(frame)
            fed += len(frame)
            await asyncio.sleep(0)

    gaps: list[tuple[float, float]] = []
    stop = asyncio.Event()
    feeder = asyncio.create_task(feed(stop))
    beat = asyncio.create_task(_beat(gaps, stop))
    await asyncio.sleep(0.5)  # the loop's stalls without a reload
    start = time.perf_counter()
    await controller.on_rules(new)
    end = time.perf_counter()
    await asyncio.sleep(0.5)  # the first ticks under the new rules
    stop.set()
    await asyncio.gather(feeder, beat)
    gc.unfreeze()
    quiet = max((gap for at, gap in gaps if at < start), default=0.0)
    during = max(gap for at, gap in gaps if at > start)  # a gap ending after the start
    return end - start, during, quiet, fed


def desk_case(root: Path, ticks: int, memory_ticks: int) -> None:
    rules_dir = root / "desk-rules"
    rules_dir.mkdir()
    text = desk_rules()
    (rules_dir / "desk.yaml").write_text(text, encoding="utf-8")
    ruleset = load_rules(rules_dir)
    (root / "edited.yaml").write_text(edited(text), encoding="utf-8")
    new = load_rules(root / "edited.yaml")
    every = sum(rule.tickers is None for rule in ruleset.rules)
    recording = root / "desk.tsv"
    generate(recording, ticks, DESK_STOCKS)
    print(f"\ndesk: {len(ruleset.rules):,} rules ({every} on every stock, the rest with "
          f"tickers: lists), {DESK_STOCKS:,} stocks, {ticks:,} ticks")  # fmt: skip

    bare(recording)  # warm the page cache
    bare_ticks, bare_s = timed(bare, recording)
    (engine_ticks, alerts), engine_s = timed(engine_path, recording, rules_dir)
    assert engine_ticks == bare_ticks == ticks, (engine_ticks, bare_ticks)
    bare_rate, engine_rate = bare_ticks / bare_s, engine_ticks / engine_s
    print(f"bare split+int  {bare_rate:>12,.0f} ticks/s")
    print(f"engine path     {engine_rate:>12,.0f} ticks/s  ({alerts:,} alerts)")
    print(f"ratio           {engine_rate / bare_rate:>12.3f}  (target >= 0.10)")

    parsed = frames(recording)
    made, longest, total, stocks = first_ticks(ruleset, parsed)
    print(f"making engine   {made * 1000:>9.1f} ms; first tick of {stocks:,} stocks: "
          f"{total * 1000:,.1f} ms in all, longest {longest * 1000:.1f} ms")  # fmt: skip

    took, during, quiet, fed = asyncio.run(reload_while_running(ruleset, new, parsed))
    print(f"reload          {took * 1000:>9.1f} ms; the loop's longest stall {during * 1000:.1f}"
          f" ms (target <= 50), {quiet * 1000:.1f} ms before it; {fed:,} ticks fed")  # fmt: skip

    # Traced, the engine runs several times slower: the peak over the first ``memory_ticks``
    # (every stock bound by then; the windows stop growing within 10 minutes of ticks).
    shorter = root / "desk-memory.tsv"
    generate(shorter, min(ticks, memory_ticks), DESK_STOCKS)  # the same ticks' beginning
    peak = peak_memory(shorter, rules_dir)
    print(f"peak memory     {peak / 1e6:>9.1f} MB over {min(ticks, memory_ticks):,} ticks"
          "  (target < 200)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--tickers", type=int, default=40)
    parser.add_argument(
        "--memory-ticks", type=int, default=200_000, help="desk: ticks traced for peak memory"
    )
    parser.add_argument("--case", choices=("rules12", "rules24", "desk", "all"), default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.case in ("rules12", "all"):
            rules_case(Path(tmp) / "rules12", RULES, args.ticks, args.tickers)
        if args.case in ("rules24", "all"):
            rules_case(Path(tmp) / "rules24", RULES24, args.ticks, args.tickers)
        if args.case in ("desk", "all"):
            desk_case(Path(tmp), args.ticks, args.memory_ticks)


def rules_case(root: Path, text: str, ticks: int, tickers: int) -> None:
    (root / "rules").mkdir(parents=True)
    (root / "rules" / "bench.yaml").write_text(text, encoding="utf-8")
    rules = load_rules(root / "rules").rules
    full, quarter = root / "full.tsv", root / "quarter.tsv"
    _, took = timed(generate, full, ticks, tickers)
    generate(quarter, ticks // 4, tickers)
    print(f"generated {ticks:,} ticks, {tickers} tickers in {took:.1f} s; "
          f"{len(rules)} rules ({', '.join(sorted({r.type for r in rules}))})")  # fmt: skip

    bare(full)  # warm the page cache
    bare_ticks, bare_s = timed(bare, full)
    (engine_ticks, alerts), engine_s = timed(engine_path, full, root / "rules")
    assert engine_ticks == bare_ticks == ticks, (engine_ticks, bare_ticks)
    bare_rate, engine_rate = bare_ticks / bare_s, engine_ticks / engine_s
    print(f"bare split+int  {bare_rate:>12,.0f} ticks/s")
    print(f"engine path     {engine_rate:>12,.0f} ticks/s  ({alerts:,} alerts)")
    print(f"ratio           {engine_rate / bare_rate:>12.2f}  (target >= 0.40)")

    small, large = peak_memory(quarter, root / "rules"), peak_memory(full, root / "rules")
    print(f"peak memory     {small / 1e6:>9.2f} MB for {ticks // 4:,} ticks, "
          f"{large / 1e6:.2f} MB for {ticks:,} ({large / small:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
