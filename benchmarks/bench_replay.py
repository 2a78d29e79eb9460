"""Replay throughput and memory: the engine path against a bare split + int() loop, same file.

    python benchmarks/bench_replay.py [--ticks 1000000] [--tickers 40]

Generates a recording (timestamped lines, multi-record frames of 1-4 records, day-cumulative
random walks) and 12 rules of every type, then measures in one run:
  bare    read lines, split on TAB, '|' and '^', int() the 9 numeric fields of each record
  engine  bot.replay.replay_lines: read + parse into Ticks + every rule on every tick
and prints ticks/s of both and their ratio (target: engine >= 0.4x bare, >= 150k ticks/s), then the
peak traced memory of the engine path for a quarter of the ticks and for all of them (it should be
flat: nothing grows with the number of ticks).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

from bot.engine.evaluate import Engine
from bot.engine.spec import load_rules
from bot.kis.recording import open_text
from bot.replay import ReplayStats, replay_lines

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--tickers", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rules").mkdir()
        (root / "rules" / "bench.yaml").write_text(RULES, encoding="utf-8")
        rules = load_rules(root / "rules").rules
        full, quarter = root / "full.tsv", root / "quarter.tsv"
        _, took = timed(generate, full, args.ticks, args.tickers)
        generate(quarter, args.ticks // 4, args.tickers)
        print(f"generated {args.ticks:,} ticks, {args.tickers} tickers in {took:.1f} s; "
              f"{len(rules)} rules ({', '.join(sorted({r.type for r in rules}))})")  # fmt: skip

        bare(full)  # warm the page cache
        bare_ticks, bare_s = timed(bare, full)
        (ticks, alerts), engine_s = timed(engine_path, full, root / "rules")
        assert ticks == bare_ticks == args.ticks, (ticks, bare_ticks)
        bare_rate, engine_rate = bare_ticks / bare_s, ticks / engine_s
        print(f"bare split+int  {bare_rate:>12,.0f} ticks/s")
        print(f"engine path     {engine_rate:>12,.0f} ticks/s  ({alerts:,} alerts)")
        print(f"ratio           {engine_rate / bare_rate:>12.2f}  (target >= 0.40)")

        small, large = peak_memory(quarter, root / "rules"), peak_memory(full, root / "rules")
        print(f"peak memory     {small / 1e6:>9.2f} MB for {args.ticks // 4:,} ticks, "
              f"{large / 1e6:.2f} MB for {args.ticks:,} ({large / small:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
