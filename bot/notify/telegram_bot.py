"""Telegram: the python-telegram-bot Application inside our asyncio program, and its transport.

(Named ``telegram_bot`` so that no module of ours shadows the ``telegram`` package.)

    bot = TelegramBot(settings.telegram, service)
    await bot.start()                       # getMe, commands menu, long polling in the background
    sender = Sender(store, bot.transport)   # alerts go out through the same Bot
    await bot.notify_admins("rules reloaded with 1 error: ...")
    await bot.stop()

The token is never logged: httpx (which logs request URLs, token included, at INFO) is held at
WARNING, and our own log lines name chats, never the bot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
from telegram import Bot, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, Defaults
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.config import TelegramSettings
from bot.notify.commands import COMMANDS, CONTEXT_TYPES, Access, BotData, install
from bot.notify.format import esc_clipped, to_plain
from bot.notify.transport import (
    ChatBlocked,
    DeliveryError,
    Rejected,
    RetryLater,
    TransientError,
    Uncertain,
)
from bot.service import BotService

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO, and Bot API URLs contain the token.
for _noisy in ("httpx", "httpcore"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
# Opt in to PTB's future time periods (timedelta): its RetryAfter otherwise warns on creation.
os.environ.setdefault("PTB_TIMEDELTA", "true")

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_GONE = ("chat not found", "user is deactivated", "bot was kicked", "group chat was deactivated")
_MAX_ADMIN_TEXT = 1000


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter's wait in seconds (an int or a timedelta, depending on PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def delivery_error(exc: TelegramError) -> DeliveryError:
    """Our view of a failed send: wait, give up on the chat, or try again later."""
    text = str(exc)
    if isinstance(exc, RetryAfter):
        return RetryLater(retry_seconds(exc))
    if isinstance(exc, Forbidden):  # blocked by the user, kicked, user deactivated
        return ChatBlocked(text)
    if isinstance(exc, ChatMigrated):  # the group became a supergroup with a new id
        return ChatBlocked(f"chat migrated to {exc.new_chat_id}: update allowed_chat_ids")
    if isinstance(exc, BadRequest):
        if any(gone in text.lower() for gone in _GONE):
            return ChatBlocked(text)
        return Rejected(text)  # 400: this very request is wrong, e.g. "message is too long"
    if isinstance(exc, InvalidToken):
        return TransientError("invalid bot token")
    if isinstance(exc, TimedOut) and _maybe_sent(exc):
        return Uncertain(f"no answer in time: {text}"[:300])
    return TransientError(f"{type(exc).__name__}: {text}"[:300])


def _maybe_sent(exc: TimedOut) -> bool:
    """A timeout after the request went out (not while connecting or waiting for a
    connection): Telegram may have delivered the message."""
    return not isinstance(exc.__cause__, httpx.ConnectTimeout | httpx.PoolTimeout) and (
        "pool timeout" not in str(exc).lower()
    )


class TelegramTransport:
    """Sends HTML messages with a python-telegram-bot ``Bot``; failures become DeliveryErrors."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, chat_id: int, html: str) -> None:
        try:
            try:
                await self._bot.send_message(
                    chat_id, html, parse_mode=ParseMode.HTML, link_preview_options=_NO_PREVIEW
                )
            except BadRequest as exc:
                if "can't parse entities" not in str(exc).lower():
                    raise
                # A formatting bug must not hold an alert back: send it as plain text.
                log.error("telegram html refused chat=%s error=%r", chat_id, str(exc))
                await self._bot.send_message(chat_id, to_plain(html), parse_mode=None)
        except TelegramError as exc:
            raise delivery_error(exc) from exc


class RedactSecret(logging.Filter):
    """Replaces a secret in log records by ``***``."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), None
        return True


def redact_in_logs(secret: str) -> None:
    """Keep ``secret`` out of python-telegram-bot's and httpx's log lines, whatever the level.

    PTB logs its API URL, token included, at DEBUG; a logger's filters only see the records made
    by that very logger, so every existing ``telegram*``/``httpx``/``httpcore`` logger gets one.
    """
    roots = ("telegram", "httpx", "httpcore")
    names = {n for n in logging.root.manager.loggerDict if n.split(".")[0] in roots}
    for name in names | set(roots):
        logger = logging.getLogger(name)
        if not any(getattr(f, "secret", None) == secret for f in logger.filters):
            logger.addFilter(RedactSecret(secret))


def file_url(base_url: str) -> str:
    """``https://api.telegram.org/bot`` -> ``https://api.telegram.org/file/bot``."""
    root, _, last = base_url.rstrip("/").rpartition("/")
    return f"{root}/file/{last}" if root else f"{base_url}/file"


def _request(timeout: float, connection_pool_size: int = 1) -> HTTPXRequest:
    """PTB's HTTP client with our connect and read timeouts."""
    return HTTPXRequest(
        connection_pool_size=connection_pool_size, connect_timeout=timeout, read_timeout=timeout
    )


class TelegramBot:
    """The bot: command handlers, long polling, admin notices, and the transport for alerts.

    Args:
        settings: token (required here), base_url, allowed and admin chats.
        service: what the commands call (``bot.service.BotService``).
        poll_timeout: long-poll duration of getUpdates, seconds.
        request_timeout: connect/read timeout of every other Bot API call, seconds.
        refusal_ttl: a chat that is not allowed is told so once per this many seconds.
    """

    def __init__(
        self,
        settings: TelegramSettings,
        service: BotService,
        *,
        poll_timeout: float = 10.0,
        request_timeout: float = 10.0,
        refusal_ttl: float = 3600.0,
    ) -> None:
        if settings.token is None:
            raise ValueError("telegram.token is not set")
        self.settings = settings
        self._poll_timeout = poll_timeout
        redact_in_logs(settings.token.get_secret_value())
        self.app: Application[Any, Any, Any, Any, BotData, Any] = (
            ApplicationBuilder()
            .context_types(CONTEXT_TYPES)
            .token(settings.token.get_secret_value())
            .base_url(settings.base_url)
            .base_file_url(file_url(settings.base_url))
            .defaults(Defaults(link_preview_options=_NO_PREVIEW))
            .request(_request(request_timeout, connection_pool_size=16))
            .get_updates_request(_request(request_timeout))
            .build()
        )
        allowed = {*settings.allowed_chat_ids, *settings.admin_chat_ids}  # admins may always
        access = Access(allowed, refusal_ttl)
        install(self.app, service, access, settings.admin_chat_ids)
        self.transport = TelegramTransport(self.app.bot)

    async def start(self, *, attempts: int = 5, retry_delay: float = 2.0) -> None:
        """Check the token (getMe), publish the command menu, start polling in the background.

        The Bot API unreachable is retried ``attempts`` times, the delay doubling from
        ``retry_delay`` seconds. Raises telegram.error.InvalidToken for a wrong token (at once),
        NetworkError when the Bot API stays unreachable.
        """
        for attempt in range(1, attempts + 1):
            try:
                await self.app.initialize()
                await self.app.bot.set_my_commands(COMMANDS)
                break
            except (InvalidToken, RetryAfter):
                raise
            except NetworkError as exc:
                if attempt == attempts:
                    raise
                delay = retry_delay * 2 ** (attempt - 1)
                log.warning(
                    "telegram unreachable at start attempt=%d retry_in=%.1fs error=%r",
                    attempt,
                    delay,
                    str(exc),
                )
                await asyncio.sleep(delay)
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            timeout=timedelta(seconds=self._poll_timeout),
            allowed_updates=[Update.MESSAGE],
            error_callback=_polling_error,
        )
        log.info("telegram started bot=@%s", self.app.bot.username)

    async def stop(self) -> None:
        """Stop polling and handlers, close connections. Safe after a failed or partial start."""
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        log.info("telegram stopped")

    async def notify_admins(self, text: str) -> int:
        """Send plain ``text`` (escaped here, clipped) to every admin chat; returns how many did.

        Best effort, for operational notices such as rule reload errors: failures are logged.
        """
        return await send_to_admins(self.app.bot, self.settings.admin_chat_ids, text)


async def send_to_admins(bot: Bot, admins: Sequence[int], text: str) -> int:
    html = esc_clipped(text, _MAX_ADMIN_TEXT)
    delivered = 0
    for chat_id in admins:
        try:
            await bot.send_message(chat_id, html, parse_mode=ParseMode.HTML)
            delivered += 1
        except TelegramError as exc:
            log.warning("admin notice failed chat=%s error=%r", chat_id, str(exc))
    return delivered


def _polling_error(exc: TelegramError) -> None:
    # PTB retries by itself; one line per failure instead of its traceback.
    log.warning("telegram polling failed error=%s: %s", type(exc).__name__, exc)
