"""Feed throughput: frame parsing against a bare split-and-int loop, and the whole receive path.

    python benchmarks/bench_feed.py [--frames 50000] [--seconds 5]

1. Parsing: ``split_frame`` + ``parse_records`` over the same frames as a bare ``str.split`` +
   ``int()`` loop that does no checking and builds nothing; prints both rates and their ratio
   (target: parsing within 3x of bare).
2. Receive path: ``pgmbot simulate --replay --speed 0 --loop`` in its own process streams a
   recording as fast as it can; a Feed in this process receives, parses and delivers it for
   ``--seconds``. Prints frames/s, ticks/s and the feed process's CPU time per frame (the
   simulator may be the bottleneck: the CPU figure is the client's own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.config import KisSettings
from bot.kis.feed import Feed
from bot.kis.recording import Recorder
from bot.ticks import KST, RECORD_WIDTH, Tick, parse_records, split_frame

TICKERS = [f"{n:06d}" for n in range(1, 31)]
PER_FRAME = 3
DAY = date(2025, 3, 14)


def make_frames(count: int, seed: int = 1) -> list[str]:
    """Realistic frames: PER_FRAME records of 11 fields, big signed numbers."""
    rng = random.Random(seed)
    frames = []
    for n in range(count):
        records = []
        for k in range(PER_FRAME):
            ticker = TICKERS[(n * PER_FRAME + k) % len(TICKERS)]
            sell, buy = rng.randrange(10**6, 10**7), rng.randrange(10**6, 10**7)
            price = rng.randrange(5_000, 500_000)
            seln_rsqn, shnu_rsqn = rng.randrange(10**5), rng.randrange(10**5)
            hhmmss = f"{9 + n // 36000 % 6:02d}{n // 600 % 60:02d}{n // 10 % 60:02d}"
            numbers = [sell, sell * price, buy, buy * price, buy - sell, (buy - sell) * price]
            numbers += [seln_rsqn, shnu_rsqn, shnu_rsqn - seln_rsqn]
            records.append("^".join([ticker, hhmmss, *map(str, numbers)]))
        frames.append(f"0|H0UNPGM0|{PER_FRAME:03d}|" + "^".join(records))
    return frames


def parse_all(frames: list[str]) -> int:
    ticks = 0
    for text in frames:
        frame = split_frame(text)
        ticks += len(parse_records(frame.payload, frame.records, DAY))
    return ticks


def bare_all(frames: list[str]) -> int:
    """The least any parser must do: split, and int() the nine numbers of each record."""
    ticks = 0
    for text in frames:
        fields = text.split("|", 3)[3].split("^")
        for start in range(0, len(fields), RECORD_WIDTH):
            for value in fields[start + 2 : start + RECORD_WIDTH]:
                int(value)
            ticks += 1
    return ticks


def best_of(runs: int, work: object, frames: list[str]) -> tuple[float, int]:
    assert callable(work)
    best, ticks = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        ticks = work(frames)
        best = min(best, time.perf_counter() - started)
    return best, ticks


def bench_parsing(count: int) -> None:
    frames = make_frames(count)
    parse_seconds, parsed = best_of(5, parse_all, frames)
    bare_seconds, bare = best_of(5, bare_all, frames)
    assert parsed == bare == count * PER_FRAME
    print(f"parsing: {count} frames of {PER_FRAME} records, best of 5")
    for name, seconds in (("split_frame+parse_records", parse_seconds), ("bare", bare_seconds)):
        print(
            f"  {name:26s} {count / seconds:12,.0f} frames/s {parsed / seconds:12,.0f} ticks/s"
            f" {seconds / parsed * 1e6:6.2f} us/tick"
        )
    ratio = parse_seconds / bare_seconds
    verdict = "OK" if ratio <= 3 else "SLOWER THAN TARGET"
    print(f"  ratio parse/bare: {ratio:.2f}x (target <= 3x: {verdict})")


def write_recording(directory: Path, count: int) -> Path:
    recorder = Recorder(directory)
    start = datetime(2025, 3, 14, 9, tzinfo=KST)
    for n, frame in enumerate(make_frames(count, seed=2)):
        recorder.write(frame, start + timedelta(milliseconds=n))
    recorder.close()
    return directory / "2025-03-14.tsv"


async def bench_client(seconds: float, recording: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "bot",
        "simulate",
        "--port",
        "0",
        "--rest-port",
        "0",
        "--replay",
        str(recording),
        "--speed",
        "0",
        "--loop",
    ]
    server = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        urls: dict[str, str] = {}
        while len(urls) < 2:
            line = (await asyncio.wait_for(server.stdout.readline(), 20)).decode()
            if not line:
                raise RuntimeError("the simulator exited before printing its URLs")
            for url in re.findall(r"(https?://\S+|wss?://\S+)", line):
                urls["ws" if url.startswith("ws") else "rest"] = url.rstrip(".,")
        settings = KisSettings.model_validate(
            {
                "rest_url": urls["rest"],
                "ws_url": urls["ws"],
                "accounts": [{"appkey": "bench", "appsecret": "bench"}],
                "subscribe_interval": 0.001,
            }
        )
        frames = ticks = 0
        flowing = asyncio.Event()

        def on_ticks(batch: list[Tick]) -> None:
            nonlocal frames, ticks
            frames += 1
            ticks += len(batch)
            flowing.set()

        feed = Feed(settings, on_ticks)
        feed.set_wanted(TICKERS)
        task = asyncio.create_task(feed.run())
        await flowing.wait()  # the replay starts a second after the first subscription
        frames0, ticks0 = frames, ticks
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        got_frames, got_ticks = frames - frames0, ticks - ticks0
        await feed.stop()
        await task
    finally:
        server.terminate()
        await server.wait()
    print(f"receive path: simulator process -> loopback WebSocket -> Feed, {wall:.1f} s")
    print(f"  {got_frames / wall:12,.0f} frames/s {got_ticks / wall:12,.0f} ticks/s")
    if got_frames:
        print(
            f"  feed CPU {cpu / got_frames * 1e6:.1f} us/frame "
            f"({cpu / wall:.0%} of one core; about {got_frames / cpu:,.0f} frames/s at 100 %)"
        )
    print(f"  bad frames {feed.stats().bad_frames}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50_000, help="frames for the parse bench")
    parser.add_argument("--seconds", type=float, default=5.0, help="receive path duration")
    args = parser.parse_args()
    bench_parsing(args.frames)
    with tempfile.TemporaryDirectory() as directory:
        recording = write_recording(Path(directory), 20_000)
        asyncio.run(bench_client(args.seconds, recording))


if __name__ == "__main__":
    main()
