"""`pgmbot run`: the feed, the engine, the store and the notifiers in one asyncio program.

    frames ─▶ Feed ─on_ticks─▶ Pipeline ─▶ Engine ─alerts─▶ AlertWriter (commit + deliveries)
               └─▶ Recorder (the write-ahead log, flushed before each commit)  │ wake
    Telegram /watch … ─▶ BotService ─▶ AsyncStore, Feed.set_wanted             ▼
                                                         Sender ─▶ Telegram / console

``App.start()`` brings the parts up in the order below and ``App.stop()`` takes them down in the
reverse order, flushing everything. The engine is called synchronously between frames on the
one event loop, so a rule reload (swapped in by the watcher on the same loop) always lands on a
tick boundary. Everything that touches a disk or the database runs in a worker thread.

Start-up order, and why:
 1. rules       checked before anything is made (broken rules: nothing starts, nothing is left)
 2. operations  SQLite: the file locked against a second bot (which stops here, having started
                nothing); /metrics and /healthz (when metrics.listen is set); the heartbeat
 3. exchange    the KIS settings (demo: the in-process simulator)
 4. database    PostgreSQL: the advisory lock of the active bot, waited for while another one
                is active (a standby serves nothing but /healthz); then migrated and opened
 5. pipeline    engine, recorder, alert writer; ticks are held until the rebuild caught up
 6. feed        connects at once, so no live tick is missed while the rebuild runs
 7. rebuild     today's recording replayed in a thread; held ticks follow it
 8. telegram    commands and the sender (or the console when there is no token)
 9. background  rules watcher, housekeeping, database watch, the master files' download
                (names: the copy on disk is read at the pipeline step already), the
                dead-man watch on the feed

A PostgreSQL bot that loses its lock stops its feed and sender at once (``lost``), then the rest
in the usual order, and exits with status 1 so that its supervisor starts it again, as a standby.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import inspect
import logging
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.charts.digest import Digests
from bot.charts.digest_store import AsyncDigests, DigestStore
from bot.charts.series import Series, rebuild_series
from bot.charts.service import ChartService
from bot.charts.worker import ChartWorker
from bot.checkpoint import write_checkpoint
from bot.clock import utc_now
from bot.config import (
    Account,
    KisSettings,
    Settings,
    config_warnings,
    listen_address,
    load_settings,
)
from bot.engine.evaluate import Engine
from bot.engine.rule_types import RuleSet
from bot.engine.snapshot import EngineSnapshot
from bot.engine.spec import RulesError, load_rules, overlooked_files
from bot.health import Feeding, Health, keep_health
from bot.housekeeping import Retention, run_housekeeping, watch_database
from bot.kis.feed import Feed
from bot.kis.recording import Recorder, recording_path
from bot.live_rules import LoadedRules, RulesController
from bot.logs import setup_logging
from bot.market.calendar import MarketCalendar
from bot.market.deadman import SilenceWatch
from bot.market.download import MasterFiles
from bot.market.names import Names
from bot.market.texts import market_line
from bot.messages import Catalogue
from bot.metrics import MeteredTransport, Metrics, MetricsServer, Sample
from bot.notices import AdminNotices
from bot.notify.console import ConsoleTransport, print_alerts
from bot.notify.routing import Routing
from bot.notify.sender import Sender, SenderSettings
from bot.notify.transport import Tee, Transport
from bot.notify.voice import Voice
from bot.problems import loaded_or_reported
from bot.rebuild import CHECKPOINT_NAME, rebuild
from bot.rules_watcher import RulesWatcher
from bot.service import BotService
from bot.standby import LeaderLock, LockLost
from bot.store.db import InstanceLock, file_identity, is_sqlite, make_engine, write_probe
from bot.store.facade import AsyncStore
from bot.store.migrate import upgrade
from bot.store.repo import Store
from bot.store.writer import AlertWriter
from bot.ticks import KST, Tick, today_kst

if TYPE_CHECKING:
    from sqlalchemy import Engine as Engine_

    from bot.notify.telegram_bot import TelegramBot

log = logging.getLogger(__name__)

DEMO_WATCH = ("005930", "000660", "373220", "207940", "005380")
DEMO_RATE = 4.0  # simulated ticks per second per ticker: lively, still readable on a console
STATE_DIR = Path("recordings")  # where the live bot records frames to rebuild state on restart
STOP_TIMEOUT = 35.0  # a part's own close may wait 30 s (the alert writer, for the database)
MAX_HELD = 2_000_000  # live ticks held while the rebuild runs (~300 MB); beyond, dropped
MASTER_DIR = "master"  # under the recording directory: the last good master files


class StartupError(RuntimeError):
    """The bot cannot start; the message says why (never a secret)."""


@dataclass
class Pipeline:
    """Ticks in, alerts committed: the synchronous hot path plus its async writer.

    While the rebuild runs the engine belongs to its thread: live ticks are held, in order, and
    ``release()`` runs them once it is done.
    """

    engine: Engine
    writer: AlertWriter
    series: Series | None = None  # today's figures a minute, for charts (bot.charts.series)
    fired: int = 0
    dropped: int = 0  # held ticks beyond MAX_HELD
    _held: list[Tick] | None = None
    # For metrics: live ticks run by ticker (taken by the sampler), alerts fired by rule.
    evaluated: Counter[str] = field(default_factory=Counter)
    fired_by_rule: Counter[str] = field(default_factory=Counter)
    ticks: int = 0

    def hold(self) -> None:
        """From now on, hold live ticks until ``release()`` (the rebuild owns the engine)."""
        self._held = []

    def on_ticks(self, ticks: list[Tick]) -> None:
        if self._held is not None:
            if len(self._held) < MAX_HELD:
                self._held.extend(ticks)
            else:
                self.dropped += len(ticks)
            return
        self._run(ticks)

    def _run(self, ticks: list[Tick]) -> None:
        alerts = self.engine.on_ticks(ticks)
        if self.series is not None:
            self.series.on_ticks(ticks)
            self.series.on_alerts(alerts)
        self.ticks += len(ticks)
        self.evaluated.update([tick.ticker for tick in ticks])
        if alerts:
            self.fired += len(alerts)
            self.fired_by_rule.update([alert.rule for alert in alerts])
            self.writer.submit(alerts)

    def take_evaluated(self) -> Counter[str]:
        """Ticks run by ticker since the last call (the metrics sampler's)."""
        taken, self.evaluated = self.evaluated, Counter()
        return taken

    async def release(self, chunk: int = 5000) -> int:
        """Run the held ticks, a chunk at a time (the loop stays responsive; ticks arriving
        meanwhile queue behind), then pass ticks straight on. Returns how many were held."""
        held = 0
        while self._held:
            batch, self._held = self._held[:chunk], self._held[chunk:]
            self._run(batch)
            held += len(batch)
            await asyncio.sleep(0)
        self._held = None
        if self.dropped:
            log.error("rebuild took too long, live ticks dropped count=%d", self.dropped)
        return held


def demo_kis(settings: KisSettings, rest_url: str, ws_url: str) -> KisSettings:
    """KIS settings pointed at the in-process simulator, with one made-up account."""
    account = Account.model_validate({"appkey": "DEMO-APPKEY", "appsecret": "DEMO-SECRET"})
    return settings.model_copy(
        update={"rest_url": rest_url, "ws_url": ws_url, "accounts": [account]}
    )


class App:
    """The running bot: ``start()``, then ``stop()`` (see the module docstring for the order)."""

    def __init__(
        self,
        settings: Settings,
        *,
        record_dir: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.record_dir = record_dir
        self.clock = clock  # the wall clock the market's state is read at
        # The stock names in use (a fresh directory is swapped in when a master file loads) and
        # how every text a person reads is said: language, names, the demo's tag, the sessions.
        self.names = Names()
        self.voice = Voice(
            say=Catalogue(settings.locale),
            names=self.names,
            demo=not settings.live,
            sessions=settings.market.session_ranges,
        )
        self.notices = AdminNotices(self.voice.say)
        self.steps: list[str] = []  # what started, in order: stop() undoes it in reverse
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self.telegram: TelegramBot | None = None
        self.sender: Sender | None = None
        self._series_ready = True  # False while a restart reads the day's series again
        self.master_url = settings.market.master_url  # the demo's: its simulator's
        market = settings.market
        self.calendar = MarketCalendar(
            market.session_ranges, closed_days=market.closed_days, open_days=market.open_days
        )
        self.metrics = Metrics()
        calendar = self.calendar
        self.health = Health(
            stale_ticks=settings.metrics.stale_ticks,
            in_session=lambda now: calendar.session_at(now) is not None,
        )
        self.metrics_server: MetricsServer | None = None
        self.lock: LeaderLock | None = None
        self.lost: str | None = None  # why the database lock was lost (PostgreSQL)
        self.failed = asyncio.Event()  # the bot must end (the lock was lost): run_bot stops it
        self._sync_store: Store | None = None
        self._probe_engine: Engine_ | None = None
        self.watcher: RulesWatcher | None = None
        self._deliveries: dict[str, int] = {}

    async def start(self) -> None:
        """Bring every part up; on a failure, what was started is stopped again."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        self.rules = LoadedRules(await asyncio.to_thread(self._read_rules))  # files: off the loop
        # Where each rule goes (`to`) and which are silent, following reloads.
        self.routing = Routing(lambda: self.rules.ruleset.rules, settings.chats)
        for warning in config_warnings(settings):
            log.warning("config warning=%r", warning)
        self._step("rules")

        self._operations()
        self._step("operations")

        kis, state_dir, static_watch = await self._exchange()
        self._step("exchange")

        await self._leadership()
        store = await asyncio.to_thread(self._open_store)
        store.routes = self.routing.routes  # the outbox decides who gets what, with these
        self.store = AsyncStore(store)
        self._stack.push_async_callback(asyncio.to_thread, self.store.close)
        for admin in settings.telegram.admin_chat_ids:
            await self.store.add_watches(admin, static_watch)
        self._step("database")

        self.master = MasterFiles(
            self.master_url,
            state_dir / MASTER_DIR if state_dir is not None else None,
            self.calendar,
            tell_admins=self.notices.tell,  # once per outage: MasterFiles keeps count
            names=self.names,  # every label follows the directory a new file brings
            no_names_text=self.voice.say("market.notice.no_names"),
        )
        await self.master.load_cache()  # names at once; the download follows (background)
        # Compiling a desk's rules takes a while: in a thread, so the loop stays free.
        self.engine = await asyncio.to_thread(Engine, self.rules.ruleset, self.stock_label)
        log.info(
            "rules loaded path=%s count=%d", settings.rules.path, len(self.rules.ruleset.rules)
        )
        self.recorder = Recorder(state_dir) if state_dir is not None else None
        # The recording is the engine's write-ahead log: frames reach it before their alerts.
        self.writer = AlertWriter(
            store,
            journal=self.recorder.flush if self.recorder is not None else None,
            on_full=lambda _text: self.notices.say(
                "notice.queue_full", kind="queue", most=self.writer.max_queued
            ),
            executor=self.store.write_thread,
        )
        self.writer.commit_timed = self.metrics.commit_seconds.observe
        self.series = Series()
        self.pipeline = Pipeline(self.engine, self.writer, self.series)
        self.pipeline.hold()
        self._stack.push_async_callback(self._close_recorder)  # after the writer's last flush
        self._spawn(self.writer.run(), "alert-writer", stop=self.writer.close)
        self._step("pipeline")

        rebuilding = settings.live and state_dir is not None
        day = today_kst()
        path = recording_path(state_dir, datetime.now(KST)) if state_dir is not None else None
        end = self.recorder.end_offset(path) if self.recorder and path else 0
        self.feed = Feed(
            kis,
            self.pipeline.on_ticks,
            recorder=self.recorder,
            on_problem=self.notices.tell,
            say=self.voice.say,
        )
        self.service = BotService(
            self.store,
            self.feed,
            self.rules,
            allowed_chat_ids=settings.telegram.allowed_chat_ids,
            admin_chat_ids=settings.telegram.admin_chat_ids,
            static_watch=static_watch,
            directory=lambda: self.names.directory,  # swapped when a new master file loads
            market=self.calendar.state,
            calendar=self.calendar,
            routes=self.routing.routes,
        )
        self.service.charts = self._charts(state_dir)
        await self.service.refresh_feed()
        self._spawn(self.feed.run(), "feed", stop=self.feed.stop)
        self._step("feed")

        if rebuilding and path is not None:
            key = self.engine.rules_key
            rebuilt = await asyncio.to_thread(
                rebuild,
                self.engine,
                store,
                path,
                day,
                end=end,
                now=utc_now(),
                rules_key=key,
                writes=self.store.write_thread,
            )
            if rebuilt.recovered:
                self.notices.say(
                    "notice.restart_recovered",
                    recovered=rebuilt.recovered,
                    delivered=rebuilt.delivered,
                )
            self._series_ready = False  # the digest waits for the whole day's series
            self._spawn(self._rebuild_series(store, path, day, end), "series", cancel=True)
        held = await self.pipeline.release()
        log.info("live ticks resumed held=%d", held)
        # What start-up made lives all day (a desk's rules bound to thousands of stocks: over a
        # million objects): out of the garbage collector's sight, a full collection no longer
        # walks it, which would stall the loop for hundreds of milliseconds.
        gc.freeze()
        self._step("rebuild")

        await self._start_notifiers()
        self._step("telegram" if self.telegram is not None else "console")

        controller = RulesController(self.rules, self.engine, self.notices)
        watcher = RulesWatcher(
            settings.rules.path,
            controller.on_rules,
            controller.on_error,
            sessions=settings.market.session_ranges,
            chats=settings.chats,
        )
        self.watcher = watcher
        self.service.reload = watcher.reload
        self._spawn(watcher.run(), "rules-watcher", stop=watcher.stop)
        retention = Retention(settings.storage.keep_days, state_dir, settings.record_keep_days)
        writes = self.store.write_thread
        self._spawn(run_housekeeping(store, retention, writes=writes), "housekeeping", cancel=True)
        watch = watch_database(settings.storage.url, self._db_identity, self.notices)
        self._spawn(watch, "database-watch", cancel=True)
        if rebuilding and state_dir is not None:
            checkpoints = self._checkpoints(state_dir, settings.checkpoint_every)
            self._spawn(checkpoints, "checkpoints", cancel=True)
        self._spawn(self.master.run(), "master-files", stop=self.master.stop)
        silence = SilenceWatch(
            self.calendar,
            self.feed.stats,
            lambda: self.service.wanted_count > 0,
            self.notices.tell,
            silent_after=timedelta(minutes=settings.market.silent_minutes),
            say=self.voice.say,
        )
        self._spawn(silence.run(), "silence-watch", cancel=True)
        self._step("background")
        if not settings.live:
            self._say_real_market()
        self.health.role = "active"
        self.metrics.active.set(1)
        log.info(
            "pgmbot running mode=%s tr_id=%s accounts=%d telegram=%s",
            "live" if settings.live else "demo",
            kis.tr_id,
            len(kis.accounts),
            "on" if self.telegram else "off",
        )

    def stock_label(self, code: str) -> str:
        """``삼성전자(005930)`` from the current directory (it is swapped when a master file
        loads), the bare code when the name is not known: the engine's ``names``."""
        return self.names.label(code)

    def _say_real_market(self) -> None:
        """The demo streams at any hour: say whether the real market is closed, on the
        console, in the log and to the admins."""
        state = self.calendar.state(self.clock())
        if state.is_open:
            return
        say = self.voice.say
        notice = say("market.notice.demo_closed", state=market_line(state, say))
        print(f"pgmbot: {notice}", flush=True)
        self.notices.tell(notice)

    async def stop(self) -> None:
        """Take down what started, in reverse: no more ticks, everything fired committed,
        sends in flight finished and recorded, then the connections closed."""
        log.info("pgmbot stopping")
        self.health.role = "stopping"
        self.metrics.active.set(0)
        try:
            await self._stack.aclose()
        finally:
            for task in self._tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.notices.drain()
            fired = self.pipeline.fired if hasattr(self, "pipeline") else 0
            log.info("pgmbot stopped fired=%d", fired)

    # -- the parts ---------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        if self.lost is not None:  # the lock went while starting: go no further
            raise StartupError(f"lost the database lock while starting: {self.lost}")
        self.steps.append(name)
        log.info("started part=%s", name)

    def _spawn(
        self,
        work: Awaitable[None],
        name: str,
        *,
        stop: Callable[[], object] | None = None,
        cancel: bool = False,
    ) -> None:
        """A part running as a task. ``stop()`` undoes it: ``stop`` is called and the task
        awaited (it may not even have begun: it then starts, sees it is stopped and ends
        cleanly); a part that only sleeps between rounds is cancelled (``cancel``)."""
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.append(task)
        if cancel:
            self._stack.callback(task.cancel)
        elif stop is not None:
            self._stack.push_async_callback(self._stop_part, task, stop)

    async def _stop_part(self, task: asyncio.Task[None], stop: Callable[[], object]) -> None:
        done = stop()
        if inspect.isawaitable(done):
            await done
        try:
            await asyncio.wait_for(task, STOP_TIMEOUT)
        except TimeoutError:
            log.error("part did not stop in time part=%s", task.get_name())
        except Exception:
            log.exception("part failed part=%s", task.get_name())

    def _operations(self) -> None:
        """One bot per SQLite file; /metrics and /healthz in a thread of their own; the loop's
        heartbeat and samples."""
        url = self.settings.storage.url
        if is_sqlite(url):  # before the metrics port: the second bot hears the real reason
            lock = InstanceLock(url)
            try:
                lock.acquire()
            except RuntimeError as exc:
                raise StartupError(str(exc)) from None
            self._stack.callback(lock.release)
        listen = self.settings.metrics.listen
        if listen is not None:
            host, port = listen_address(listen)
            server = MetricsServer(host, port, self.metrics, self.health.verdict)
            try:
                server.start()
            except OSError as exc:
                raise StartupError(f"cannot serve metrics on {listen}: {exc.strerror}") from None
            self.metrics_server = server
            self._stack.push_async_callback(asyncio.to_thread, server.stop)
        self._spawn(keep_health(self.health, self._probe, self._feeding), "health", cancel=True)
        self._spawn(self._sample(), "metrics", cancel=True)

    async def _leadership(self) -> None:
        """PostgreSQL: wait until this process is the active bot (a standby waits here)."""
        if is_sqlite(self.settings.storage.url):
            return  # _operations' InstanceLock refused a second bot outright
        standby = self.settings.standby
        self.lock = lock = LeaderLock(
            self.settings.storage.url,
            check_every=standby.check_every,
            takeover_delay=standby.takeover_delay,
            on_lost=self._lost,
        )
        self._stack.push_async_callback(asyncio.to_thread, lock.release)  # joins its thread
        self.health.role = "standby"
        try:
            await lock.acquire()
        except LockLost as exc:
            raise StartupError(f"lost the database lock before taking over: {exc}") from None
        if lock.waited > standby.check_every:
            log.info("taking over as the active bot waited=%.1fs", lock.waited)
        self.health.role = "starting"
        self._step("leadership")

    def _lost(self, reason: str) -> None:
        """The database lock is gone (on the loop): no tick, message or poll from here on."""
        if self.lost is not None:
            return
        self.lost = reason
        self.health.role = "stopping"
        self.metrics.active.set(0)
        self._spawn(self._stop_serving(), "stop-serving", cancel=False)
        self.failed.set()

    async def _stop_serving(self) -> None:
        """Off KIS first (its one connection per appkey is the hard rule: the lock's thread
        ends the process unless told in time), no new message meanwhile, then off Telegram."""
        sending = asyncio.ensure_future(self.sender.close()) if self.sender else None
        if hasattr(self, "feed"):
            await asyncio.gather(self.feed.stop(), return_exceptions=True)
        if self.lock is not None:
            self.lock.quiet()
        if sending is not None:  # the sends in flight finish and are recorded
            await asyncio.gather(sending, return_exceptions=True)
        if self.telegram is not None:
            await self.telegram.stop()  # no more polling of the bot token

    def _feeding(self) -> Feeding | None:
        if not hasattr(self, "feed"):
            return None
        stats = self.feed.stats()
        stamps = [c.last_data_at for c in stats.connections if c.last_data_at is not None]
        return Feeding(stats.used, max(stamps) if stamps else None)

    async def _probe(self) -> None:
        """/healthz's database check: a write transaction on the store's write thread."""
        engine = self._probe_engine
        if engine is None or not hasattr(self, "store") or self.health.role == "stopping":
            return  # not open yet, or closing
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.store.write_thread, write_probe, engine)

    async def _sample(self, every: float = 1.0, deliveries_every: float = 5.0) -> None:
        """Copy the parts' counters for the metrics, on the loop, once a second."""
        loop = asyncio.get_running_loop()
        next_count = loop.time()
        while True:
            stopping = self.health.role == "stopping"  # the store may be closed already
            if self._sync_store is not None and not stopping and loop.time() >= next_count:
                next_count = loop.time() + deliveries_every
                try:
                    counts = await asyncio.wait_for(
                        asyncio.to_thread(self._sync_store.delivery_counts), deliveries_every
                    )
                    self._deliveries = dict(counts)
                except Exception as exc:  # the database is slow or away: keep the last counts
                    log.debug("delivery counts not read error=%r", exc)
            self.metrics.update(self._sample_now())
            await asyncio.sleep(every)

    def _sample_now(self) -> Sample:
        pipeline = getattr(self, "pipeline", None)
        if pipeline is not None:
            self.metrics.evaluated(pipeline.take_evaluated(), self.engine.ruleset)
        stats = self.feed.stats() if hasattr(self, "feed") else None
        writer = getattr(self, "writer", None)
        watcher = self.watcher
        return Sample(
            connections=stats.connections if stats else (),
            malformed=stats.bad_kinds if stats else {},
            ticks_evaluated=pipeline.ticks if pipeline else 0,
            fired=dict(pipeline.fired_by_rule) if pipeline else {},
            stored=writer.stored if writer else 0,
            duplicates=writer.duplicates if writer else 0,
            refused=writer.refused if writer else 0,
            commit_retries=writer.retries if writer else 0,
            queued=writer.queued if writer else 0,
            rules_loaded=len(self.rules.ruleset.enabled) if hasattr(self, "rules") else 0,
            reloads=watcher.reloads if watcher else 0,
            reload_errors=watcher.failures if watcher else 0,
            deliveries=self._deliveries,
        )

    async def _exchange(self) -> tuple[KisSettings, Path | None, list[str]]:
        """KIS settings, the recording directory and the config's watch list (demo: simulated)."""
        settings = self.settings
        if settings.live:
            state_dir = self.record_dir or settings.record_dir or STATE_DIR
            return settings.kis, state_dir, list(settings.watch)
        from bot.kis.simulator import Simulator

        simulator = await self._stack.enter_async_context(Simulator(rate=DEMO_RATE))
        print(
            "pgmbot: DEMO MODE - the feed is SIMULATED (a KIS-compatible simulator on "
            f"{simulator.ws_url}); alerts below are not real market data.\n"
            "To go live, set PGMBOT_KIS_APPKEY and PGMBOT_KIS_APPSECRET (a real-account KIS "
            "Open API app) or add kis.accounts to config.yaml (see config.example.yaml).",
            flush=True,
        )
        kis = demo_kis(settings.kis, simulator.rest_url, simulator.ws_url)
        self.master_url = simulator.master_url  # names through the real download path
        # A demo's market starts over each time: record only when asked, never rebuild from it.
        return (
            kis,
            self.record_dir or settings.record_dir,
            list(settings.watch) or list(DEMO_WATCH),
        )

    def _open_store(self) -> Store:
        """Migrate and open the database (in a worker thread; locked before: _operations)."""
        url = self.settings.storage.url
        upgrade(url)
        store = Store(url, allowed_chat_ids=self.settings.telegram.allowed_chat_ids)
        self._stack.callback(store.close)
        self._sync_store = store
        self._probe_engine = probe = make_engine(url)
        self._stack.callback(probe.dispose)
        self._db_identity = file_identity(url)
        return store

    def _read_rules(self) -> RuleSet:
        """The rule files at start (in a thread), and a warning for each file not read."""
        settings = self.settings
        ruleset = load_rules(
            settings.rules.path, sessions=settings.market.session_ranges, chats=settings.chats
        )
        for file in overlooked_files(settings.rules.path):
            log.warning("rules file not read (rule files end in .yaml) file=%s", file)
        return ruleset

    async def _start_notifiers(self) -> None:
        settings = self.settings
        if settings.telegram.token is None:
            voice = self.voice  # no chats: the console is the notifier
            self.writer.on_commit(lambda alerts: print_alerts(alerts, voice=voice))
            return
        self.telegram = telegram = await self._start_telegram()
        self._stack.push_async_callback(telegram.stop)
        self.notices.attach(telegram.notify_admins)
        transport: Transport = MeteredTransport(telegram.transport, self.metrics)
        if not settings.live:
            transport = Tee(transport, ConsoleTransport())
        self.sender = sender = Sender(
            self.store,
            transport,
            SenderSettings(group_window=settings.telegram.group_window),
            on_problem=self.notices.tell,
            voice=self.voice,
            silent_rules=self.routing.silent,
        )
        self._spawn(sender.run(), "sender", stop=sender.close)
        self.writer.on_commit(lambda _alerts: sender.wake())
        self._start_digests(telegram.transport)  # text and picture (send_photo) alike
        self._spawn(self._wake_when_ready(telegram, sender), "telegram-ready", cancel=True)

    async def _wake_when_ready(self, telegram: TelegramBot, sender: Sender) -> None:
        """Telegram was unreachable at start: send what waits as soon as it answers."""
        if not telegram.ready:
            await telegram.wait_ready()
            sender.wake()

    async def _chat_moved(self, old: int, new: int) -> None:
        """A group became a supergroup (Telegram says so on a send or in an update)."""
        if not await self.service.move_chat(old, new):
            return
        if self.telegram is not None:
            self.telegram.access.allow(new)
        self.notices.say("notice.chat_moved", old=old, new=new)

    async def _start_telegram(self) -> TelegramBot:
        from telegram.error import InvalidToken, TelegramError

        from bot.notify.telegram_bot import TelegramBot

        settings = self.settings
        bot = TelegramBot(
            settings.telegram, self.service, on_migrate=self._chat_moved, voice=self.voice
        )
        try:
            await bot.start()  # returns at once when the Bot API is unreachable: tried again
        except InvalidToken:
            raise StartupError("Telegram rejected the bot token (telegram.token)") from None
        except TelegramError as exc:
            assert settings.telegram.token is not None
            reason = str(exc).replace(settings.telegram.token.get_secret_value(), "***")
            raise StartupError(f"Telegram refused to start the bot: {reason}") from None
        return bot

    async def _checkpoints(self, state_dir: Path, every: float) -> None:
        """Now and then, the engine's state with the recording offset it covers, so that a
        restart replays only the recording's tail (bot.checkpoint)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.checkpoint(state_dir)
            except Exception as exc:  # the next one may work; a restart replays more meanwhile
                log.warning("checkpoint not written error=%r", str(exc)[:300])

    async def checkpoint(self, state_dir: Path) -> None:
        """Take one: state and offset together on the loop, between two frames; written once
        every alert fired before it is committed (a restart replays only what comes after)."""
        assert self.recorder is not None
        if self.writer.overflowed or self.pipeline.dropped or self.recorder.given_up:
            # Alerts or ticks were dropped since start: a checkpoint past them would keep the
            # next restart from firing them again; replaying from the last good one does.
            log.warning("checkpoint skipped: alerts or ticks were dropped since start")
            return
        path = recording_path(state_dir, datetime.now(KST))
        snapshot = self.engine.snapshot()
        offset = self.recorder.end_offset(path)
        key = self.engine.rules_key  # of the rules the state was made under
        await self.writer.flush()
        await asyncio.to_thread(self._write_checkpoint, path, snapshot, offset, key)

    def _write_checkpoint(
        self, path: Path, snapshot: EngineSnapshot, offset: int, key: str
    ) -> None:
        assert self.recorder is not None
        self.recorder.flush()  # the checkpoint reads the recording up to its offset
        target = path.parent / CHECKPOINT_NAME
        write_checkpoint(target, snapshot, recording=path, offset=offset, rules_key=key)
        log.info("checkpoint written file=%s offset=%d", target, offset)

    def _start_digests(self, transport: Transport) -> None:
        """The daily digest through its outbox (bot.charts.digest), when the config wants it."""
        charts = self.service.charts
        if not self.settings.digest.enabled or charts is None:
            return
        charts.digests = store = AsyncDigests(
            DigestStore(self.store.sync), self.store.write_thread
        )

        async def chats() -> set[int]:  # allowed, and not blocking the bot
            return set(self.service.allowed_chat_ids) - await self.store.blocked_chats()

        digests = Digests(
            self.settings.digest,
            store,
            charts,
            transport,
            chats=chats,
            watches=self.store.watches,
            ready=lambda: self._series_ready,
            tag=self.voice.tagged,
            is_trading_day=self.calendar.is_trading_day,
        )
        self._spawn(digests.run(), "digests", cancel=True)

    def _charts(self, record_dir: Path | None) -> ChartService:
        """/chart, /now, /top: today's series, past days' recordings, a worker process."""
        worker = ChartWorker()
        self._stack.push_async_callback(asyncio.to_thread, worker.close)
        return ChartService(
            self.series,
            self.rules,
            self.store,
            worker,
            record_dir=record_dir,
            names=self.names,
            sessions=dict(self.voice.sessions),
            say=self.voice.say,
        )

    async def _rebuild_series(self, store: Store, path: Path, day: date, end: int) -> None:
        """Today's rows for the charts from the recording, in a thread, under the live ones."""
        try:
            rebuilt = await asyncio.to_thread(rebuild_series, store, path, day, end=end)
        except Exception as exc:  # charts then start at the restart; alerts are not touched
            log.error("series not rebuilt file=%s error=%r", path, str(exc)[:300])
            self._series_ready = True
            return
        self.series.adopt(rebuilt)
        self._series_ready = True
        log.info("series rebuilt stocks=%d rows=%d", len(rebuilt.tickers()), self.series.rows())

    async def _close_recorder(self) -> None:
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)


async def run_bot(settings: Settings, *, record_dir: Path | None, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then shut down in order, flushing everything."""
    app = App(settings, record_dir=record_dir)
    if not await _started(app, stop):
        return
    try:
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(app.failed.wait())
        await asyncio.wait([stopping, failing], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
    finally:
        await app.stop()
    if app.lost is not None:
        raise StartupError(
            f"lost the database lock ({app.lost}): stopped so that a standby can take over; "
            "start pgmbot again to stand by"
        )


async def _started(app: App, stop: asyncio.Event) -> bool:
    """Start the app; False when ``stop`` came first while it stood by (a standby waits for the
    lock for as long as another bot is active: SIGTERM ends the wait, and the process)."""
    starting = asyncio.ensure_future(app.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        # Asked to stop while starting: the parts being started finish starting (then stop in
        # order), unless the bot stands by, or comes to, where there is nothing to finish.
        while not starting.done():
            if app.health.role == "standby":
                starting.cancel()  # start() stops what it started, the lock's thread included
                await asyncio.gather(starting, return_exceptions=True)
                return False
            await asyncio.wait([starting], timeout=0.1)
    finally:
        stopping.cancel()
    starting.result()  # a failed start raises here
    return True


def _default_config(path: Path | None) -> Path | None:
    if path is not None:
        return path
    local = Path("config.yaml")
    return local if local.is_file() else None


def run_command(args: argparse.Namespace) -> int:
    """`pgmbot run [--config FILE] [--record DIR]`: exit 0 on SIGINT/SIGTERM."""
    settings = loaded_or_reported(
        lambda: load_settings(_default_config(args.config)), "the config has errors"
    )
    if settings is None:
        return 2
    setup_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_main(settings, args.record))
    except RulesError as exc:
        exc.report("the rules have errors")
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
