"""A restart mid-day: the whole day's recording replayed against a checkpoint and its tail.

    python benchmarks/bench_restart.py [--stocks 205] [--rate 2] [--seconds 900] [--tail 60]

Generates a recording of ``--stocks`` stocks sending ``--rate`` ticks/s each for ``--seconds`` of
market time (the target day is ``--seconds 23400``: 09:00-15:30, 9.6M ticks, ~1 GB), with the 12
rules of bench_replay.py, then measures in one run:
  full     the whole recording through a fresh engine: bot.checkpoint.replay_tail from offset
           0 (what a restart without a checkpoint does)
  snapshot Engine.snapshot() of the engine at ``--tail`` seconds before the end (taken on the
           event loop every 30-60 s: it must stay a few ms), its encoded size, write_checkpoint,
           and the event loop's longest stall while a worker thread writes the checkpoint
  restart  bot.checkpoint.resume: read + check the checkpoint, restore, replay the tail
and checks that the restart fires exactly the alerts the full replay fires after the checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from bench_replay import RULES, record  # the same 12 rules of every type, the same records

from bot.alerts import Alert
from bot.checkpoint import load_checkpoint, replay_tail, resume, write_checkpoint
from bot.engine.evaluate import Engine, rules_key
from bot.engine.snapshot import encode
from bot.engine.spec import load_rules
from bot.ticks import KST

DAY = date(2026, 11, 23)
OPEN = 9 * 3600
T = TypeVar("T")


def generate(path: Path, stocks: int, rate: int, seconds: int, tail: int, seed: int = 1) -> int:
    """Day-cumulative random walks, frames of 1-4 records, receive times with microseconds as
    the Recorder writes them. Returns the byte offset of the first line ``tail`` s before the
    end (where the checkpoint is taken)."""
    rng = random.Random(seed)
    codes = [f"{i:06d}" for i in range(stocks)]
    state = {c: [0, 0, 0, 0, 50_000, 50_000, rng.randint(20_000, 300_000)] for c in codes}
    midnight = datetime.combine(DAY, datetime.min.time(), KST)
    written, checkpoint_at = 0, 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for second in range(OPEN, OPEN + seconds):
            if second == OPEN + seconds - tail:
                checkpoint_at = written
            hhmmss = f"{second // 3600:02d}{second // 60 % 60:02d}{second % 60:02d}"
            due = codes * rate
            rng.shuffle(due)
            while due:
                count = min(rng.randint(1, 4), len(due))
                records = [record(state[code], code, hhmmss, rng) for code in due[-count:]]
                del due[-count:]
                when = midnight + timedelta(seconds=second, microseconds=rng.randrange(10**6))
                line = f"{when.isoformat()}\t0|H0UNPGM0|{count:03d}|{'^'.join(records)}\n"
                out.write(line)
                written += len(line)  # ASCII
    return checkpoint_at


def timed(function: Callable[..., T], *args: object, **kwargs: object) -> tuple[T, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


async def longest_stall(function: Callable[..., object], *args: object, **kwargs: object) -> float:
    """The longest the event loop waits to run a 1 ms timer while ``function`` runs in a
    worker thread (how a live bot writes checkpoints)."""
    done = False
    worst = 0.0

    async def watch() -> None:
        nonlocal worst
        while not done:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - start - 0.001)

    watcher = asyncio.create_task(watch())
    await asyncio.to_thread(function, *args, **kwargs)
    done = True
    await watcher
    return worst


def keys(alerts: list[Alert]) -> list[tuple[str, str, str, int, int]]:
    return [(a.rule, a.ticker, a.tick.hhmmss, a.value, a.seq) for a in alerts]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=205)
    parser.add_argument("--rate", type=int, default=2, help="ticks per second per stock")
    parser.add_argument("--seconds", type=int, default=900, help="market seconds recorded")
    parser.add_argument("--tail", type=int, default=60, help="seconds after the checkpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rules").mkdir()
        (root / "rules" / "bench.yaml").write_text(RULES, encoding="utf-8")
        ruleset = load_rules(root / "rules")
        key = rules_key(ruleset)
        recording = root / f"{DAY.isoformat()}.tsv"
        offset, took = timed(
            generate, recording, args.stocks, args.rate, args.seconds, min(args.tail, args.seconds)
        )
        size = recording.stat().st_size
        print(f"generated {args.stocks} stocks x {args.rate} ticks/s x {args.seconds:,} s: "
              f"{size / 1e6:,.1f} MB in {took:.1f} s; {len(ruleset.rules)} rules")  # fmt: skip

        full, full_s = timed(replay_tail, Engine(ruleset), recording, 0)
        print(f"full replay     replay_tail from 0 {full_s:7.2f} s "
              f"({full.ticks:,} ticks, {full.ticks / full_s:,.0f} ticks/s, "
              f"{len(full.alerts):,} alerts)")  # fmt: skip

        engine = Engine(ruleset)
        before = replay_tail(engine, recording, 0, end=offset)
        runs = []
        for _ in range(21):
            snapshot, took = timed(engine.snapshot)
            runs.append(took)
        data, encode_s = timed(encode, snapshot)
        checkpoint = root / "checkpoint"
        write = functools.partial(
            write_checkpoint,
            checkpoint,
            snapshot,
            recording=recording,
            offset=offset,
            rules_key=key,
        )
        _, write_s = timed(write)
        median = statistics.median(runs)
        print(f"snapshot        {len(snapshot.tickers)} stocks: median {median * 1e3:.1f} ms, "
              f"max {max(runs) * 1e3:.1f} ms; encoded {len(data) / 1e6:.2f} MB in "
              f"{encode_s * 1e3:.0f} ms; write_checkpoint {write_s * 1e3:.0f} ms "
              f"(file {checkpoint.stat().st_size / 1e6:.2f} MB)")  # fmt: skip

        stall = asyncio.run(longest_stall(write))
        print(f"                the event loop's longest stall while a worker thread writes "
              f"it: {stall * 1e3:.1f} ms")  # fmt: skip

        _, load_s = timed(load_checkpoint, checkpoint)
        restarted, restart_s = timed(
            resume, Engine(ruleset), recording=recording, checkpoint=checkpoint, rules_key=key
        )
        assert restarted.refused is None and restarted.start_offset == offset, restarted.refused
        tail_mb = (size - offset) / 1e6
        print(f"restart         {restart_s:7.2f} s: checkpoint read {load_s * 1e3:.0f} ms, "
              f"tail of {args.tail} s ({tail_mb:.1f} MB, {restarted.ticks:,} ticks, "
              f"{len(restarted.alerts):,} alerts); {full_s / restart_s:,.0f}x faster than "
              "the full replay")  # fmt: skip
        same = keys(before.alerts) + keys(restarted.alerts) == keys(full.alerts)
        print(f"same alerts     {'yes' if same else 'NO'} (checkpoint's part + tail == full)")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
