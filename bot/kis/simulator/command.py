"""`pgmbot simulate`: serve the simulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from bot.kis.simulator.server import Simulator


def simulate_command(args: argparse.Namespace) -> int:
    """Print the URLs served, log sessions at INFO, exit 0 on Ctrl-C/SIGTERM."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    try:
        simulator = Simulator(
            host=args.host,
            ws_port=args.port,
            rest_port=args.rest_port,
            rate=args.rate,
            seed=args.seed,
            replay=args.replay,
            speed=getattr(args, "speed", 1.0),
            replay_loop=getattr(args, "loop", False),
            pingpong_interval=getattr(args, "pingpong_interval", 110.0),
            tickers_per_frame=getattr(args, "tickers_per_frame", 3),
            max_subscriptions=getattr(args, "max_subscriptions", 41),
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"pgmbot simulate: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(simulator))
    except OSError as exc:  # port in use, address not available
        print(f"pgmbot simulate: cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(simulator: Simulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows has no asyncio signal handlers: Ctrl-C raises KeyboardInterrupt there.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with simulator:
        print(f"KIS simulator: approval REST on {simulator.rest_url}", flush=True)
        print(f"KIS simulator: WebSocket on {simulator.ws_url}", flush=True)
        print(f"KIS simulator: stock master files at {simulator.master_url}", flush=True)
        print(
            f"Point the bot at it in config.yaml: kis.rest_url: {simulator.rest_url}, "
            f"kis.ws_url: {simulator.ws_url}, market.master_url: {simulator.master_url} "
            "(with an account under kis.accounts: any appkey will do). Ctrl-C stops.",
            flush=True,
        )
        await stop.wait()
