"""The `pgmbot` command line: parsing only; each command lives with the code it drives."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from bot import __version__

Handler = Callable[[argparse.Namespace], int]


def _lazy(target: str) -> Handler:
    """``"module:function"`` imported only when the command runs (keeps `pgmbot --help` fast)."""

    def run(args: argparse.Namespace) -> int:
        module, _, name = target.partition(":")
        handler: Handler = getattr(import_module(module), name)
        return handler(args)

    return run


#: --config on the commands that read rules alone: only its market.sessions are used.
CONFIG_SESSIONS = "config whose market.sessions the rules' hours names follow"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgmbot",
        description="Telegram alerts on KIS real-time program trading, driven by YAML rules.",
    )
    parser.add_argument("--version", action="version", version=f"pgmbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the bot (the simulated demo feed when no KIS credentials are configured)"
    )
    run.add_argument("--config", type=Path, help="config file (default: ./config.yaml if present)")
    run.add_argument("--record", type=Path, metavar="DIR", help="append raw frames to DIR daily")
    run.set_defaults(handler=_lazy("bot.app:run_command"))

    simulate = commands.add_parser("simulate", help="serve a KIS-compatible simulator on loopback")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=21000, help="WebSocket port (0: any)")
    simulate.add_argument(
        "--rest-port", type=int, default=9443, help="approval REST port (0: any)"
    )
    simulate.add_argument("--rate", type=float, default=20.0, help="ticks per second per ticker")
    simulate.add_argument("--seed", type=int, default=None, help="random seed (repeatable data)")
    simulate.add_argument(
        "--replay", type=Path, metavar="FILE", help="serve the frames of a recorded file instead"
    )
    simulate.add_argument(
        "--speed", type=float, default=1.0, help="replay pace factor (0: as fast as possible)"
    )
    simulate.add_argument("--loop", action="store_true", help="replay the file over and over")
    simulate.add_argument(
        "--pingpong-interval", type=float, default=110.0, help="idle seconds before PINGPONG"
    )
    simulate.add_argument(
        "--tickers-per-frame", type=int, default=3, help="records per data frame, at most"
    )
    simulate.add_argument(
        "--max-subscriptions", type=int, default=41, help="registrations per appkey"
    )
    simulate.set_defaults(handler=_lazy("bot.kis.simulator:simulate_command"))

    replay = commands.add_parser("replay", help="run the rules over recorded frames")
    replay.add_argument("files", nargs="+", metavar="FILE", help="recorded frames ('-' = stdin)")
    replay.add_argument("--rules", type=Path, default=Path("rules"), help="rules file or dir")
    replay.add_argument("--date", help="trading date YYYY-MM-DD for lines without a timestamp")
    replay.add_argument("--json", action="store_true", help="one JSON object per alert")
    replay.add_argument("--config", type=Path, help=CONFIG_SESSIONS)
    replay.add_argument(
        "--progress-every",
        type=int,
        metavar="N",
        help="on a terminal, a progress line every N lines (default 200,000)",
    )
    replay.set_defaults(handler=_lazy("bot.replay:replay_command"))

    chart = commands.add_parser("chart", help="draw a stock's day from a recording as a PNG")
    chart.add_argument("file", metavar="FILE", help="a recorded day (DAY.tsv or DAY.tsv.gz)")
    chart.add_argument("--ticker", required=True, metavar="CODE", help="the stock, e.g. 005930")
    chart.add_argument("--out", type=Path, help="the PNG to write (default: CODE-DAY.png)")
    chart.add_argument("--rules", type=Path, help="rules whose alerts and thresholds to draw")
    chart.add_argument("--config", type=Path, help=CONFIG_SESSIONS)
    chart.set_defaults(handler=_lazy("bot.charts.command:chart_command"))

    rules = commands.add_parser("rules", help="check or test rule files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rules_commands.add_parser("check", help="validate rule files")
    check.add_argument("paths", nargs="*", type=Path, default=[Path("rules")], metavar="PATH")
    check.add_argument("--config", type=Path, help=CONFIG_SESSIONS)
    check.set_defaults(handler=_lazy("bot.ruletest:check_command"))
    test = rules_commands.add_parser("test", help="run rule unit tests")
    test.add_argument("files", nargs="+", type=Path, metavar="FILE")
    test.add_argument("--config", type=Path, help=CONFIG_SESSIONS)
    test.set_defaults(handler=_lazy("bot.ruletest:test_command"))

    config = commands.add_parser("config", help="check a config file")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_check = config_commands.add_parser("check", help="validate a config file")
    config_check.add_argument("file", nargs="?", type=Path, default=Path("config.yaml"))
    config_check.set_defaults(handler=config_check_command)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply Alembic migrations")
    upgrade.add_argument("--config", type=Path)
    upgrade.set_defaults(handler=_lazy("bot.store.migrate:upgrade_command"))
    return parser


def config_check_command(args: argparse.Namespace) -> int:
    """`pgmbot config check [FILE]`: every problem with its location, exit 1 if any.

    Warnings (settings that make a bot doing nothing visible) go to stderr; the exit stays 0.
    """
    from bot.config import ConfigError, config_warnings, load_settings
    from bot.engine.spec import RulesError, load_rules

    try:
        settings = load_settings(args.file)
        # what `pgmbot run` would load
        rules = load_rules(
            settings.rules.path, sessions=settings.market.session_ranges, chats=settings.chats
        )
    except (ConfigError, RulesError) as exc:
        exc.report()
        return 1
    mode = f"live, {len(settings.kis.accounts)} KIS account(s)" if settings.live else "demo feed"
    telegram = "Telegram on" if settings.telegram.token else "console only"
    print(
        f"{args.file}: OK ({mode}, {settings.kis.tr_id}, {telegram}, "
        f"{len(rules.rules)} rules from {settings.rules.path})"
    )
    for warning in config_warnings(settings):
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pgmbot replay … | head`: the reader has seen enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit finds somewhere to write
        os.close(devnull)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
