"""Prometheus metrics of one running bot, and the HTTP server of /metrics and /healthz.

    metrics = Metrics()                       # its own CollectorRegistry: Apps stay independent
    metrics.update(Sample(...))               # on the loop, about once a second (App._operations)
    server = MetricsServer("127.0.0.1", 9464, metrics, health.verdict)
    server.start(); ...; server.stop()        # a daemon thread: scrapes never touch the loop

Most figures are counters the parts keep anyway (the feed's connections, the alert writer, the
rules watcher): the loop copies them into a ``Sample`` once a second and the collector turns the
newest one into metric families when Prometheus scrapes. Only what must be seen as it happens is
observed directly: Telegram's latency (``MeteredTransport``) and the database's commit latency
(``AlertWriter.commit_timed``), both histograms. Labels are rules, accounts, kinds and states,
never tickers (a label per stock would make thousands of series).
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.engine.rule_types import RuleSet
from bot.kis.status import ConnectionStatus
from bot.notify.transport import (
    PLAIN_MESSAGE,
    ChatBlocked,
    Extras,
    Rejected,
    RetryLater,
    Transport,
    Uncertain,
)

log = logging.getLogger(__name__)

# Telegram answers in tens of milliseconds to a few seconds; commits take milliseconds.
TELEGRAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

ACCOUNT = ("account",)
Verdict = Callable[[], tuple[bool, str]]  # (healthy, one-line reason)


@dataclass(frozen=True)
class Sample:
    """The parts' counters at one moment, copied on the loop (plain values only)."""

    connections: Sequence[ConnectionStatus] = ()
    malformed: Mapping[str, int] = field(default_factory=dict)  # by kind
    ticks_evaluated: int = 0  # ticks of wanted tickers passed to the engine
    fired: Mapping[str, int] = field(default_factory=dict)  # alerts by rule (live ticks)
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    commit_retries: int = 0
    queued: int = 0
    rules_loaded: int = 0
    reloads: int = 0
    reload_errors: int = 0
    deliveries: Mapping[str, int] = field(default_factory=dict)  # rows by state, in the store


class Metrics:
    """One App's metrics in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.telegram_seconds = Histogram(
            "pgmbot_telegram_send_seconds",
            "Time Telegram took to accept (or refuse) one message.",
            buckets=TELEGRAM_BUCKETS,
            registry=registry,
        )
        self.telegram_results = Counter(
            "pgmbot_telegram_messages",
            "Alert messages the sender handed to Telegram, by result (sent; retry_later, "
            "no_answer and error are tried again; rejected is given up; blocked chats get none).",
            ["result"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "pgmbot_db_commit_seconds",
            "Time the database took to commit one batch of alerts with their deliveries.",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.active = Gauge(
            "pgmbot_active",
            "1 while this process is the active bot (feed and Telegram), 0 while it stands by.",
            registry=registry,
        )
        self._sampled = _Sampled()
        registry.register(self._sampled)
        self._evaluations: Tally[str] = Tally()

    def update(self, sample: Sample) -> None:
        """The newest counters (from the loop); scrapes read them from now on."""
        self._sampled.sample = sample
        self._sampled.evaluations = dict(self._evaluations)

    def evaluated(self, ticks_by_ticker: Mapping[str, int], ruleset: RuleSet) -> None:
        """Ticks the engine evaluated since the last call, by ticker: every enabled rule that
        applies to a ticker was evaluated once per tick of it."""
        everything = sum(ticks_by_ticker.values())
        for rule in ruleset.enabled:
            # Walk a rule's own list, not every ticker: a desk's 1,000 rules on 2,500 stocks
            # would cost millions of steps on the loop each second.
            if rule.tickers is None:
                count = everything
            else:
                count = sum(ticks_by_ticker.get(ticker, 0) for ticker in rule.tickers)
            if count:
                self._evaluations[rule.id] += count

    def scrape(self) -> bytes:
        """The text exposition format, as /metrics serves it (for tests and tools)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Sampled(Collector):
    """Metric families built from the newest Sample when Prometheus scrapes (server thread)."""

    def __init__(self) -> None:
        self.sample = Sample()
        self.evaluations: dict[str, int] = {}

    def collect(self) -> Iterable[Metric]:
        sample = self.sample  # one reference: a consistent copy, whatever the loop does now
        yield from _kis(sample.connections, sample.malformed)
        yield _counter(
            "pgmbot_ticks_evaluated",
            "Ticks of wanted tickers run by the engine.",
            [((), sample.ticks_evaluated)],
        )
        yield _counter(
            "pgmbot_rule_evaluations",
            "Rule evaluations (a tick times the rules that apply to its ticker), by rule.",
            [((rule,), n) for rule, n in sorted(self.evaluations.items())],
            ["rule"],
        )
        yield _counter(
            "pgmbot_alerts_fired",
            "Alerts the rules fired on live ticks, by rule.",
            [((rule,), n) for rule, n in sorted(sample.fired.items())],
            ["rule"],
        )
        yield from _store(sample)
        yield _gauge("pgmbot_rules_loaded", "Enabled rules running.", [((), sample.rules_loaded)])
        yield _counter("pgmbot_rule_reloads", "Rule files reloaded.", [((), sample.reloads)])
        yield _counter(
            "pgmbot_rule_reload_errors",
            "Rule file edits refused (the last good rules kept running).",
            [((), sample.reload_errors)],
        )


def _kis(
    connections: Sequence[ConnectionStatus], malformed: Mapping[str, int]
) -> Iterator[Metric]:
    now = time.monotonic()
    by = [((c.account,), c) for c in connections]
    yield _counter(
        "pgmbot_kis_frames",
        "Data frames received, by account.",
        [(a, c.frames) for a, c in by],
        ACCOUNT,
    )
    yield _counter(
        "pgmbot_kis_ticks",
        "Tick records received (all tickers of the frames), by account.",
        [(a, c.records) for a, c in by],
        ACCOUNT,
    )
    yield _counter(
        "pgmbot_kis_reconnects",
        "Sessions that ended and were tried again, by account.",
        [(a, c.reconnects) for a, c in by],
        ACCOUNT,
    )
    yield _gauge(
        "pgmbot_kis_connected",
        "1 while the account's session is open.",
        [(a, int(c.connected)) for a, c in by],
        ACCOUNT,
    )
    yield _gauge(
        "pgmbot_kis_subscriptions",
        "Tickers subscribed (acknowledged), by account.",
        [(a, c.subscribed) for a, c in by],
        ACCOUNT,
    )
    yield _gauge(
        "pgmbot_kis_subscription_limit",
        "Subscriptions the account may hold.",
        [(a, c.limit) for a, c in by],
        ACCOUNT,
    )
    yield _gauge(
        "pgmbot_kis_last_tick_age_seconds",
        "Seconds since the account's last data frame (absent before the first).",
        [(a, now - c.last_data_at) for a, c in by if c.last_data_at is not None],
        ACCOUNT,
    )
    yield _counter(
        "pgmbot_kis_malformed_frames",
        "Frames or records skipped as malformed, by kind.",
        [((kind,), n) for kind, n in sorted(malformed.items())],
        ["kind"],
    )


def _store(sample: Sample) -> Iterator[Metric]:
    yield _counter("pgmbot_alerts_stored", "Alerts committed.", [((), sample.stored)])
    yield _counter(
        "pgmbot_alerts_duplicate",
        "Alerts found already stored (a rebuild after a restart).",
        [((), sample.duplicates)],
    )
    yield _counter(
        "pgmbot_alerts_refused", "Alerts the database refused as bad data.", [((), sample.refused)]
    )
    yield _counter(
        "pgmbot_db_commit_retries",
        "Alert batches tried again (database locked, unreachable, disk full).",
        [((), sample.commit_retries)],
    )
    yield _gauge(
        "pgmbot_alerts_queued", "Alerts fired and not committed yet.", [((), sample.queued)]
    )
    yield _gauge(
        "pgmbot_deliveries",
        "Delivery rows in the store by state (pending: still to send), read every few seconds.",
        [((state,), n) for state, n in sorted(sample.deliveries.items())],
        ["state"],
    )


def _counter(
    name: str, doc: str, values: Iterable[tuple[Sequence[str], float]], labels: Sequence[str] = ()
) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


def _gauge(
    name: str, doc: str, values: Iterable[tuple[Sequence[str], float]], labels: Sequence[str] = ()
) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


# -- Telegram, timed --------------------------------------------------------------------------


def _result(exc: BaseException | None) -> str:
    if exc is None:
        return "sent"
    if isinstance(exc, RetryLater):
        return "retry_later"
    if isinstance(exc, ChatBlocked):
        return "blocked"
    if isinstance(exc, Rejected):
        return "rejected"
    if isinstance(exc, Uncertain):
        return "no_answer"
    return "error"


class MeteredTransport:
    """A Transport that times each send and counts its result; the sender is none the wiser."""

    def __init__(self, inner: Transport, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def alive(self) -> bool:
        return await self._inner.alive()

    async def send(
        self,
        chat_id: int,
        html: str,
        *,
        reply_to: int | None = None,
        extras: Extras = PLAIN_MESSAGE,
    ) -> int | None:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await self._inner.send(chat_id, html, reply_to=reply_to, extras=extras)
        except Exception as exc:  # a DeliveryError, or anything else: counted by its kind
            error = exc
            raise
        finally:
            self._metrics.telegram_seconds.observe(time.perf_counter() - started)
            self._metrics.telegram_results.labels(_result(error)).inc()


# -- the HTTP server --------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


class _ThreadingServer(WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        """As WSGIServer's, without http.server's reverse DNS look-up of the address (getfqdn
        can wait seconds for a resolver, on the loop at start)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Each request in its own thread: a slow client never holds up the next scrape."""
        thread = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        thread.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """/metrics (Prometheus text format) and /healthz (200 or 503, one line) in a thread."""

    def __init__(self, host: str, port: int, metrics: Metrics, verdict: Verdict) -> None:
        self.host = host
        self.port = port
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._verdict = verdict
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (OSError when the port is taken) and serve in a daemon thread."""
        server_class = _ThreadingServer6 if ":" in self.host else _ThreadingServer
        self._server = make_server(
            self.host, self.port, self._app, server_class=server_class, handler_class=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
            name="metrics-http",
        )  # fmt: skip
        self._thread.start()
        log.info("metrics served url=%s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            try:
                healthy, reason = self._verdict()
            except Exception as exc:  # a bug of ours reads as unhealthy, not as a dead server
                healthy, reason = False, f"health check failed: {exc!r}"
            status = "200 OK" if healthy else "503 Service Unavailable"
            body = (reason + "\n").encode()
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        if path in ("/metrics", "/"):
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]
