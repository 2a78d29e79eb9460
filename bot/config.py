"""Settings: config.yaml + environment secrets, validated (see config.example.yaml for every key).

Secrets are ``SecretStr``: they print as ``**********`` in logs, reprs and error messages.
Environment variables (they win over the file):
  PGMBOT_TELEGRAM_TOKEN               telegram.token
  PGMBOT_KIS_APPKEY, PGMBOT_KIS_APPSECRET   one KIS account (added when kis.accounts is empty)
  ${NAME} inside any string of the file is replaced by the environment variable NAME.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from bot import yamlpos
from bot.charts.settings import DigestSettings
from bot.codes import StockCode
from bot.market.sessions import DEFAULT_SESSIONS, MinuteRange
from bot.problems import ProblemsError, loaded_or_reported
from bot.ticks import TR_IDS

if TYPE_CHECKING:
    from bot.engine.rule_types import RuleSet

REAL_REST_URL = "https://openapi.koreainvestment.com:9443"
REAL_WS_URL = "ws://ops.koreainvestment.com:21000"
PAPER_REFUSAL = (
    "KIS does not serve program-trading data (H0UNPGM0/H0STPGM0/H0NXPGM0) on its paper-trading "
    "(모의투자) server; use a real-account appkey with the real servers"
)
_PAPER_HINTS = ("openapivts", ":29443", ":31000")


def _no_paper(url: str) -> str:
    if any(hint in url for hint in _PAPER_HINTS):
        raise ValueError(PAPER_REFUSAL)
    return url


def _http_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    return url.rstrip("/")


def _ws_url(url: str) -> str:
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise ValueError("must be a ws:// or wss:// URL")
    return url


_DATABASES = ("sqlite", "postgresql")
_POSTGRES_EXTRA = (
    "install pgmbot's postgres extra (pip install 'pgmbot[postgres]', psycopg 3) and write "
    "postgresql+psycopg://USER@HOST/DB"
)


def _database_url(url: str) -> str:
    """A database ``pgmbot run`` can open: a SQLite file, or PostgreSQL with its driver."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        # Echo the value only when it cannot hold a password (user:password@host).
        hint = f"sqlite:///{url}" if "@" not in url else "sqlite:///FILE"
        raise ValueError(f"not a database URL; for a SQLite file write {hint}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in _DATABASES:
        also = " (write postgresql://)" if backend == "postgres" else ""
        raise ValueError(
            "pgmbot keeps its data in SQLite (sqlite:///FILE) or PostgreSQL "
            f"(postgresql+psycopg://USER@HOST/DB), not {backend}{also}"
        )
    if backend == "sqlite" and _in_memory(parsed.database, parsed.query):
        raise ValueError(
            "an in-memory SQLite database is lost when pgmbot stops, and with it every alert "
            "waiting to be delivered: name a file, e.g. sqlite:///pgmbot.db"
        )
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"{backend} has no driver named {driver!r}") from None
    name = driver or dialect.driver
    if dialect.is_async:
        raise ValueError(f"{name} is an asyncio driver; pgmbot needs a synchronous one")
    try:
        dialect.import_dbapi()
    except ImportError:
        extra = f"; {_POSTGRES_EXTRA}" if backend == "postgresql" else ""
        raise ValueError(f"the {backend} driver {name} is not installed{extra}") from None
    return url


def _in_memory(database: str | None, query: Any) -> bool:
    """SQLite's ``sqlite://``, ``:memory:`` and ``file:…?mode=memory`` databases."""
    database = database or ""
    modes = query.get("mode", ())
    memory_mode = "memory" in ((modes,) if isinstance(modes, str) else modes)
    return database in ("", ":memory:") or database.startswith("file::memory:") or memory_mode


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(_Model):
    """One KIS app (appkey/appsecret pair): one WebSocket connection, 41 subscriptions."""

    appkey: SecretStr
    appsecret: SecretStr
    name: str | None = None  # shown in /status and logs instead of the key

    def label(self, index: int) -> str:
        return self.name or f"account{index + 1}"


class KisSettings(_Model):
    rest_url: Annotated[str, AfterValidator(_http_url), AfterValidator(_no_paper)] = REAL_REST_URL
    ws_url: Annotated[str, AfterValidator(_ws_url), AfterValidator(_no_paper)] = REAL_WS_URL
    tr_id: Literal["H0UNPGM0", "H0STPGM0", "H0NXPGM0"] = "H0UNPGM0"
    paper: bool = False  # refused: KIS serves no program trading on paper-trading
    custtype: Literal["P", "B"] = "P"
    accounts: list[Account] = Field(default_factory=list)
    max_subscriptions: int = Field(41, ge=1, le=41)  # per account
    subscribe_interval: float = Field(0.05, ge=0)  # seconds between subscription sends
    silence_timeout: float = Field(120.0, gt=0)  # reconnect after this long without any message
    reconnect_min: float = Field(2.0, gt=0)
    reconnect_max: float = Field(60.0, gt=0)
    in_use_backoff: float = Field(300.0, gt=0)  # after OPSP8996 ALREADY IN USE appkey
    approval_max_age: float = Field(23 * 3600, gt=0)  # renew the approval key after this long

    @field_validator("paper")
    @classmethod
    def _refuse_paper(cls, paper: bool) -> bool:
        if paper:
            raise ValueError(PAPER_REFUSAL)
        return paper


class TelegramSettings(_Model):
    token: SecretStr | None = None  # none: alerts go to the console only
    base_url: str = "https://api.telegram.org/bot"
    allowed_chat_ids: list[int] = Field(default_factory=list)
    admin_chat_ids: list[int] = Field(default_factory=list)
    # Alerts for one chat that fire within this many seconds go out as one message.
    group_window: float = Field(2.0, ge=0)


class StorageSettings(_Model):
    url: Annotated[str, AfterValidator(_database_url)] = "sqlite:///pgmbot.db"  # or PostgreSQL
    # Alerts of trading days more than this many days ago are deleted (never one still waiting
    # to be delivered); null keeps them all.
    keep_days: int | None = Field(90, ge=1)


class RulesSettings(_Model):
    path: Path = Path("rules")


DEFAULT_MASTER_URL = "https://new.real.download.dws.co.kr/common/master"
_SESSION_NAME = re.compile(r"[a-z][a-z0-9_]{0,19}")


def _session_range(text: str) -> str:
    return str(MinuteRange.parse(text))


def _sessions(sessions: dict[str, str]) -> dict[str, str]:
    """The defaults with the config's sessions over them; names are words, ranges never meet."""
    bad = [name for name in sessions if not _SESSION_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"session names are lower-case words like regular, not {bad[0]!r}")
    merged = {name: str(minutes) for name, minutes in DEFAULT_SESSIONS.items()} | sessions
    ordered = sorted(
        ((MinuteRange.parse(text), name) for name, text in merged.items()),
        key=lambda item: item[0].first,
    )
    for (first, first_name), (second, second_name) in itertools.pairwise(ordered):
        if second.first <= first.last:
            raise ValueError(
                f"sessions {first_name} ({first}) and {second_name} ({second}) overlap"
            )
    return merged


class MarketSettings(_Model):
    """The market: where the stock master files come from, sessions, days that differ."""

    # KIS's master files: {master_url}/kospi_code.mst.zip and kosdaq_code.mst.zip.
    master_url: Annotated[str, AfterValidator(_http_url)] = DEFAULT_MASTER_URL
    # Sessions by name (pre, regular, after, or names of your own) as HH:MM-HH:MM, KST; the
    # config's ranges replace the defaults of the same name, and rules' `hours` follow them.
    sessions: Annotated[
        dict[str, Annotated[str, AfterValidator(_session_range)]], AfterValidator(_sessions)
    ] = Field(default_factory=lambda: {n: str(m) for n, m in DEFAULT_SESSIONS.items()})
    closed_days: list[date] = Field(default_factory=list)  # one-off closures
    open_days: list[date] = Field(default_factory=list)  # days that trade against the calendar
    # Minutes without a tick, during a session on a trading day, before the admins are told.
    silent_minutes: float = Field(2.0, gt=0, le=240)

    @property
    def session_ranges(self) -> dict[str, MinuteRange]:
        return {name: MinuteRange.parse(text) for name, text in self.sessions.items()}


# -- operations: metrics, health, standby (issue 14) ------------------------------------------


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) -> (host, port); ValueError in plain words."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class MetricsSettings(_Model):
    # HOST:PORT serving /metrics (Prometheus) and /healthz; null (the default) serves nothing.
    listen: str | None = None
    # A non-loopback address exposes the bot's figures to the network: say so explicitly.
    allow_remote: bool = False
    # During a trading session /healthz fails when subscribed tickers sent nothing this long.
    stale_ticks: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> MetricsSettings:
        if self.listen is not None:
            host, _port = listen_address(self.listen)
            if not is_loopback(host) and not self.allow_remote:
                raise ValueError(
                    f"listen: {self.listen!r} is not a loopback address; set "
                    "metrics.allow_remote: true to serve metrics to the network"
                )
        return self


class StandbySettings(_Model):
    """PostgreSQL only: several bots on one database, one active (docs/OPERATIONS.md)."""

    # The active bot checks its lock connection this often; a standby tries to take it as often.
    check_every: float = Field(1.0, gt=0, le=30)
    # A standby that got the lock waits this long before it connects to KIS and Telegram: longer
    # than the old active needs to notice it lost the lock and stop (2 checks, 1 s to stop).
    takeover_delay: float = Field(5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _outlasts_the_old_active(self) -> StandbySettings:
        if self.takeover_delay < 2 * self.check_every + 1:
            raise ValueError(
                "takeover_delay must be at least 2 * check_every + 1 s: the old active bot "
                "needs that long to notice it lost the lock and stop"
            )
        return self


ChatName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")]


class Settings(_Model):
    kis: KisSettings = Field(default_factory=KisSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    watch: list[StockCode] = Field(default_factory=list)  # subscribed at start for the admin chats
    record_dir: Path | None = None  # append raw frames here (same as `run --record DIR`)
    # Recorded day files: gzipped once older than yesterday, deleted when more than this many
    # days old; null keeps them all.
    record_keep_days: int | None = Field(30, ge=1)
    # Seconds between two checkpoints of the engine's state: a restart replays only what the
    # recording holds after the newest one.
    checkpoint_every: float = Field(60.0, gt=0, le=3600)
    # The daily digest after the close (bot.charts.digest): digest.time, digest.after (KST).
    digest: DigestSettings = Field(default_factory=DigestSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The language of everything a person reads (replies, alerts, the menu): ko (default) or en.
    locale: Literal["ko", "en"] = "ko"
    log_format: Literal["text", "json"] = "text"  # json: one object per line (journald, Loki)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    standby: StandbySettings = Field(default_factory=StandbySettings)
    # Names for chats, which rules' ``to`` may use: ``chats: {desk: -1001234, me: 42}``.
    chats: dict[ChatName, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _admins_are_allowed(self) -> Settings:
        missing = set(self.telegram.admin_chat_ids) - set(self.telegram.allowed_chat_ids)
        if missing:
            # Admins may always use the bot: fold them into the allowed chats.
            allowed = [*self.telegram.allowed_chat_ids, *sorted(missing)]
            telegram = self.telegram.model_copy(update={"allowed_chat_ids": allowed})
            object.__setattr__(self, "telegram", telegram)
        return self

    @property
    def live(self) -> bool:
        """True when KIS credentials are configured (otherwise `run` starts the demo)."""
        return bool(self.kis.accounts)


def config_warnings(settings: Settings) -> list[str]:
    """Settings that are valid but make a bot that does nothing visible; said at start-up.

    ``pgmbot config check`` prints them too. Each is one line, free of secrets.
    """
    telegram = settings.telegram
    warnings: list[str] = []
    if settings.live and not settings.watch and not (telegram.token and telegram.allowed_chat_ids):
        nobody = (
            "no telegram.token" if not telegram.token else "telegram.allowed_chat_ids is empty"
        )
        warnings.append(
            "live mode with nothing to watch: `watch` is empty and no chat can add stocks "
            f"({nobody}), so nothing is subscribed and no alert can fire"
        )
    if telegram.token and not telegram.allowed_chat_ids:
        warnings.append(
            "telegram.token is set but telegram.allowed_chat_ids is empty: the bot refuses every "
            "chat and sends alerts to none (send /start to the bot to learn your chat id)"
        )
    elif telegram.token and settings.watch and not telegram.admin_chat_ids:
        warnings.append(
            "`watch` is subscribed for the admin chats, and telegram.admin_chat_ids is empty: "
            "its alerts reach no chat"
        )
    return warnings


class ConfigError(ProblemsError):
    """A config that cannot be used."""


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


Missing = list[tuple[str, tuple[str | int, ...]]]  # (variable, path of the value using it)


def _expand_env(data: Any, env: dict[str, str], missing: Missing, path: yamlpos.Path_ = ()) -> Any:
    if isinstance(data, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                missing.append((name, path))
                return ""
            return env[name]

        return _ENV_REF.sub(sub, data)
    if isinstance(data, dict):
        return {k: _expand_env(v, env, missing, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_expand_env(v, env, missing, (*path, i)) for i, v in enumerate(data)]
    return data


def _apply_env(data: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    data = dict(data)
    if env.get("PGMBOT_TELEGRAM_TOKEN"):
        data["telegram"] = {**(data.get("telegram") or {}), "token": env["PGMBOT_TELEGRAM_TOKEN"]}
    if env.get("PGMBOT_KIS_APPKEY") and env.get("PGMBOT_KIS_APPSECRET"):
        kis = dict(data.get("kis") or {})
        if not kis.get("accounts"):
            kis["accounts"] = [
                {"appkey": env["PGMBOT_KIS_APPKEY"], "appsecret": env["PGMBOT_KIS_APPSECRET"]}
            ]
        data["kis"] = kis
    return data


def rule_sessions(path: Path | None) -> dict[str, MinuteRange] | None:
    """What the session names in rules' ``hours`` mean under the config at ``path`` (its
    ``market.sessions``), for the commands that read rules without running the bot (replay,
    rules check/test, chart); None without a config: the defaults. ConfigError if it is bad."""
    return None if path is None else load_settings(path).market.session_ranges


def command_rules(rules: Path, config: Path | None) -> RuleSet | None:
    """The rules a command reads alone (replay, chart), their ``hours`` names following
    ``config``'s sessions when given; None once the problems are printed (exit 2)."""
    from bot.engine.spec import load_rules

    chats: dict[str, int] | None = None
    if config is not None:
        sessions = loaded_or_reported(lambda: rule_sessions(config), "the config has errors")
        if sessions is None:
            return None
        chats = load_settings(config).chats
    else:
        sessions = None
    return loaded_or_reported(
        lambda: load_rules(rules, sessions=sessions, chats=chats), "the rules have errors"
    )


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read and validate settings. ``path=None`` means defaults + environment only.

    Raises ConfigError listing every problem with its file:line:column.
    """
    env = dict(os.environ) if env is None else env
    if path is None:
        doc = yamlpos.Document({}, {}, "<defaults>")
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
        try:
            doc = yamlpos.load(text, str(path))
        except yamlpos.YamlError as exc:
            raise ConfigError([str(exc)]) from None
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise ConfigError([f"{doc.position(())}: the config must be a mapping of settings"])
    missing: Missing = []
    data = _apply_env(_expand_env(doc.data, env, missing), env)
    if missing:
        raise ConfigError(
            [
                f"{doc.position(path)}: {'.'.join(map(str, path))}: environment variable "
                f"{name} is not set"
                for name, path in missing
            ]
        )
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(yamlpos.validation_messages(exc, doc)) from None
    unused = _endpoints_without_accounts(settings)
    if unused:
        raise ConfigError(
            [
                f"{doc.position(('kis', name))}: kis.{name}: set but no KIS account: add "
                "kis.accounts (appkey, appsecret) or export PGMBOT_KIS_APPKEY and "
                "PGMBOT_KIS_APPSECRET; without an account pgmbot runs its demo simulator"
                for name in unused
            ]
        )
    return settings


def _endpoints_without_accounts(settings: Settings) -> list[str]:
    """Endpoints the config sets while it has no account: `run` would start its own simulator
    and ignore them in silence, and a bot meant to be live would stream made-up data."""
    if settings.live:
        return []
    return [name for name in ("rest_url", "ws_url") if name in settings.kis.model_fields_set]


__all__ = [
    "TR_IDS",
    "ConfigError",
    "Settings",
    "config_warnings",
    "load_settings",
]
