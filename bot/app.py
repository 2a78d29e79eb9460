"""`pgmbot run`: the feed, the engine, the store and the notifiers in one asyncio program.

    frames ─▶ Feed ─on_ticks─▶ Engine.on_ticks ─alerts─▶ AlertWriter (commit + deliveries)
                                                              │ wake
    Telegram /watch … ─▶ BotService ─▶ Store, Feed.set_wanted  ▼
                                                        Sender ─▶ Telegram / console

Everything runs on one event loop; the engine is called synchronously between frames, so a rule
reload (swapped in by the watcher on the same loop) always lands on a tick boundary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.alerts import Alert
from bot.config import Account, ConfigError, KisSettings, Settings, load_settings
from bot.engine.evaluate import Engine
from bot.engine.reload import RulesWatcher
from bot.engine.rule_types import RuleSet, rule_changes
from bot.engine.spec import RulesError, load_rules, overlooked_files
from bot.housekeeping import Retention, run_housekeeping
from bot.kis.feed import Feed
from bot.kis.recording import Recorder, read_recording, recording_path
from bot.notify.console import ConsoleTransport, print_alerts
from bot.notify.sender import Sender, SenderSettings
from bot.notify.transport import Tee, Transport
from bot.service import BotService
from bot.store.migrate import upgrade
from bot.store.repo import Store
from bot.store.writer import AlertWriter
from bot.ticks import KST, FrameError, Tick, parse_frame, today_kst

if TYPE_CHECKING:
    from bot.notify.telegram_bot import TelegramBot

log = logging.getLogger(__name__)

DEMO_WATCH = ("005930", "000660", "373220", "207940", "005380")
DEMO_RATE = 4.0  # simulated ticks per second per ticker: lively, still readable on a console
STATE_DIR = Path("recordings")  # where the live bot records frames to rebuild state on restart


@dataclass
class LoadedRules:
    """The rules the engine runs and the last reload error: what /rules and /status show."""

    ruleset: RuleSet
    last_error: str | None = None

    def summary_lines(self) -> list[str]:
        return self.ruleset.summary_lines()

    @property
    def ids(self) -> set[str]:
        return set(self.ruleset.ids)


@dataclass
class Pipeline:
    """Ticks in, alerts committed: the synchronous hot path plus its async writer."""

    engine: Engine
    writer: AlertWriter
    fired: int = 0

    def on_ticks(self, ticks: list[Tick]) -> None:
        alerts = self.engine.on_ticks(ticks)
        if alerts:
            self.fired += len(alerts)
            self.writer.submit(alerts)


def rebuild_state(engine: Engine, store: Store, directory: Path, day: date) -> int:
    """Replay today's recorded frames through the engine so a restart resumes mid-day.

    Alerts the replay fires that are already stored are skipped by the store's unique key; any that
    were fired but not committed before the stop are stored now (and delivered). Returns the number
    of ticks replayed.
    """
    path = recording_path(directory, datetime.combine(day, datetime.min.time(), KST))
    if not path.is_file():
        return 0
    ticks = 0
    alerts: list[Alert] = []
    for _number, when, frame in read_recording(path):
        try:
            parsed = parse_frame(frame, when.astimezone(KST).date() if when else day)
        except FrameError:
            continue  # the feed already reported it when it arrived
        alerts.extend(engine.on_ticks(parsed))
        ticks += len(parsed)
    if alerts:
        stored = store.add_alerts(alerts)
        log.info("rebuild stored missing alerts count=%d of=%d", len(stored), len(alerts))
    log.info("rebuild replayed file=%s ticks=%d", path, ticks)
    return ticks


def demo_kis(settings: KisSettings, rest_url: str, ws_url: str) -> KisSettings:
    """KIS settings pointed at the in-process simulator, with one made-up account."""
    account = Account.model_validate({"appkey": "DEMO-APPKEY", "appsecret": "DEMO-SECRET"})
    return settings.model_copy(
        update={"rest_url": rest_url, "ws_url": ws_url, "accounts": [account]}
    )


class StartupError(RuntimeError):
    """The bot cannot start; the message says why (never a secret)."""


async def _exchange(
    settings: Settings, record_dir: Path | None, stack: contextlib.AsyncExitStack
) -> tuple[KisSettings, Path | None, list[str]]:
    """KIS settings, the recording directory and the config's watch list (demo: a simulator)."""
    if settings.live:
        return settings.kis, record_dir or settings.record_dir or STATE_DIR, list(settings.watch)
    from bot.kis.simulator import Simulator

    simulator = await stack.enter_async_context(Simulator(rate=DEMO_RATE))
    print(
        "pgmbot: DEMO MODE - the feed is SIMULATED (a KIS-compatible simulator on "
        f"{simulator.ws_url}); alerts below are not real market data.\n"
        "To go live, set PGMBOT_KIS_APPKEY and PGMBOT_KIS_APPSECRET (a real-account KIS "
        "Open API app) or add kis.accounts to config.yaml (see config.example.yaml).",
        flush=True,
    )
    kis = demo_kis(settings.kis, simulator.rest_url, simulator.ws_url)
    # A demo's market starts over each time: record only when asked, never rebuild from it.
    return kis, record_dir or settings.record_dir, list(settings.watch) or list(DEMO_WATCH)


async def _start_telegram(settings: Settings, service: BotService) -> TelegramBot:
    from telegram.error import InvalidToken, TelegramError

    from bot.notify.telegram_bot import TelegramBot

    bot = TelegramBot(settings.telegram, service)
    try:
        await bot.start()
    except InvalidToken:
        raise StartupError("Telegram rejected the bot token (telegram.token)") from None
    except TelegramError as exc:
        assert settings.telegram.token is not None
        reason = str(exc).replace(settings.telegram.token.get_secret_value(), "***")
        raise StartupError(
            f"cannot reach the Telegram Bot API at {settings.telegram.base_url}: {reason}"
        ) from None
    return bot


async def run_bot(settings: Settings, *, record_dir: Path | None, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then shut down in order, flushing everything."""
    rules = LoadedRules(load_rules(settings.rules.path))  # before anything starts or is made
    for file in overlooked_files(settings.rules.path):
        log.warning("rules file not read (rule files end in .yaml) file=%s", file)
    async with contextlib.AsyncExitStack() as stack:
        kis, state_dir, static_watch = await _exchange(settings, record_dir, stack)
        upgrade(settings.storage.url)
        store = Store(settings.storage.url, allowed_chat_ids=settings.telegram.allowed_chat_ids)
        stack.callback(store.close)
        for admin in settings.telegram.admin_chat_ids:
            store.add_watches(admin, static_watch)

        engine = Engine(rules.ruleset)
        log.info("rules loaded path=%s count=%d", settings.rules.path, len(rules.ruleset.rules))
        if state_dir is not None and settings.live:
            rebuild_state(engine, store, state_dir, today_kst())

        recorder = Recorder(state_dir) if state_dir is not None else None
        # The recording is the engine's write-ahead log: frames reach it before their alerts.
        writer = AlertWriter(store, journal=recorder.flush if recorder is not None else None)
        pipeline = Pipeline(engine, writer)
        feed = Feed(kis, pipeline.on_ticks, recorder=recorder)
        service = BotService(
            store,
            feed,
            rules,
            allowed_chat_ids=settings.telegram.allowed_chat_ids,
            admin_chat_ids=settings.telegram.admin_chat_ids,
            static_watch=static_watch,
        )
        service.refresh_feed()

        telegram = sender = None
        if settings.telegram.token is None:
            writer.on_commit(print_alerts)  # no chats: the console is the notifier
        else:
            telegram = await _start_telegram(settings, service)
            transport: Transport = telegram.transport
            if not settings.live:
                transport = Tee(transport, ConsoleTransport())
            sender = Sender(
                store, transport, SenderSettings(group_window=settings.telegram.group_window)
            )
            writer.on_commit(lambda _alerts: sender.wake())

        async def on_rules(ruleset: RuleSet) -> None:
            changes = rule_changes(rules.ruleset, ruleset)
            engine.replace_rules(ruleset)
            was_broken = rules.last_error is not None
            rules.ruleset, rules.last_error = ruleset, None
            log.info(
                "rules reloaded count=%d %s",
                len(ruleset.rules),
                " ".join(f"{kind}={','.join(ids)}" for kind, ids in changes.items() if ids),
            )
            if was_broken and telegram is not None:  # the admins were told of the errors
                await telegram.notify_admins(
                    f"Rule files fixed: {len(ruleset.rules)} rules loaded."
                )

        async def on_rules_error(problems: list[str]) -> None:
            rules.last_error = "\n".join(problems)
            log.error("rules reload failed, keeping the last good rules problems=%r", problems)
            if telegram is not None:
                await telegram.notify_admins(
                    "Rule files have errors; the last good rules keep running:\n"
                    + rules.last_error
                )

        watcher = RulesWatcher(settings.rules.path, on_rules, on_rules_error)
        retention = Retention(settings.storage.keep_days, state_dir, settings.record_keep_days)
        tasks = [
            asyncio.create_task(feed.run(), name="feed"),
            asyncio.create_task(writer.run(), name="alert-writer"),
            asyncio.create_task(watcher.run(), name="rules-watcher"),
        ]
        housekeeping = asyncio.create_task(run_housekeeping(store, retention), name="housekeeping")
        if sender is not None:
            tasks.append(asyncio.create_task(sender.run(), name="sender"))
        log.info(
            "pgmbot running mode=%s tr_id=%s accounts=%d telegram=%s",
            "live" if settings.live else "demo",
            kis.tr_id,
            len(kis.accounts),
            "on" if telegram else "off",
        )
        try:
            await stop.wait()
        finally:
            log.info("pgmbot stopping")
            housekeeping.cancel()  # it sleeps for hours between rounds
            await feed.stop()  # no more ticks
            watcher.stop()
            await writer.close()  # everything fired is committed
            if sender is not None:
                await sender.close()  # in-flight sends finish; the rest stays pending
            if recorder is not None:
                recorder.close()
            if telegram is not None:
                await telegram.stop()
            for task in [*tasks, housekeeping]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=5)
            log.info("pgmbot stopped fired=%d", pipeline.fired)


def _default_config(path: Path | None) -> Path | None:
    if path is not None:
        return path
    local = Path("config.yaml")
    return local if local.is_file() else None


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def run_command(args: argparse.Namespace) -> int:
    """`pgmbot run [--config FILE] [--record DIR]`: exit 0 on SIGINT/SIGTERM."""
    try:
        settings = load_settings(_default_config(args.config))
    except ConfigError as exc:
        print("pgmbot: the config has errors:", *exc.problems, sep="\n", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    try:
        asyncio.run(_main(settings, args.record))
    except RulesError as exc:
        print("pgmbot: the rules have errors:", *exc.problems, sep="\n", file=sys.stderr)
        if not settings.rules.path.exists():
            print(
                "Set rules.path in the config (the pgmbot repository has starter rules).",
                file=sys.stderr,
            )
        return 2
    except StartupError as exc:
        print(f"pgmbot: {exc}", file=sys.stderr)
        return 1
    return 0


async def _main(settings: Settings, record_dir: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await run_bot(settings, record_dir=record_dir, stop=stop)
