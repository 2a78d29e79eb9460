"""Telegram: the python-telegram-bot Application inside our asyncio program, and its transport.

(Named ``telegram_bot`` so that no module of ours shadows the ``telegram`` package.)

    bot = TelegramBot(settings.telegram, service, on_migrate=store_moves_chat)
    await bot.start()                       # InvalidToken if Telegram refuses the token
    sender = Sender(store, bot.transport)   # alerts go out through the same Bot
    await bot.notify_admins("rules reloaded with 1 error: ...")
    await bot.stop()                        # never raises

Telegram may be away: ``start()`` returns after one attempt, and a background task connects
(getMe, the command menu) with backoff; until then ``ready`` is False and the transport's sends
fail transiently, so alerts wait in the store. Polling is ours, not PTB's Updater (which stops
for good on one 401): every failure, a 401 spell included, is retried with backoff up to
``retry_max`` seconds, and the admins hear of a 401 spell once.

The token is never logged: httpx (which logs request URLs, token included, at INFO) is held at
WARNING, and our own log lines name chats, never the bot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, Defaults, MessageHandler, filters
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.backoff import Backoff
from bot.config import TelegramSettings
from bot.notify.commands import CONTEXT_TYPES, Access, BotData, install, menu
from bot.notify.format import esc_clipped, to_plain
from bot.notify.transport import (
    PLAIN_MESSAGE,
    ChatBlocked,
    ChatMoved,
    DeliveryError,
    Extras,
    Rejected,
    RetryLater,
    TransientError,
    Uncertain,
)
from bot.notify.voice import PLAIN, Voice
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
# Commands, the service messages of a migrating group, and presses of an alert's buttons.
_ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
_MIGRATION_GROUP = -1  # PTB handler group: apart from the commands, so both see an update
_STOP_TIMEOUT = 2.0  # seconds for the last getUpdates at stop (confirming what was taken)

# Called with (old chat id, new chat id) when a group became a supergroup.
Migrate = Callable[[int, int], Awaitable[None]]


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
        return ChatMoved(exc.new_chat_id)
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
    """Sends HTML messages with a python-telegram-bot ``Bot``; failures become DeliveryErrors.

    Until ``ready()`` is true (the Bot API not reached yet) every send fails with TransientError,
    so the sender keeps the rows for later. A group that became a supergroup raises ChatMoved,
    after ``on_migrate(old_id, new_id)``.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        ready: Callable[[], bool] = lambda: True,
        on_migrate: Migrate | None = None,
    ) -> None:
        self._bot = bot
        self._ready = ready
        self._on_migrate = on_migrate

    async def alive(self) -> bool:
        """getMe answers: the Bot API works (a message failing meanwhile is to blame)."""
        if not self._ready():
            return False
        try:
            await self._bot.get_me()
        except TelegramError:
            return False
        return True

    async def send(
        self,
        chat_id: int,
        html: str,
        *,
        reply_to: int | None = None,
        extras: Extras = PLAIN_MESSAGE,
    ) -> int:
        """Send; return the message's id. A reply whose message is gone is sent all the same
        (``allow_sending_without_reply``): a resolved event must not fail for a deleted alert.
        ``extras``: without sound (``disable_notification``), with a row of inline buttons."""
        if not self._ready():
            raise TransientError("telegram not connected yet")
        reply = (
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        keyboard = keyboard_of(extras)
        try:
            try:
                sent = await self._bot.send_message(
                    chat_id,
                    html,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=_NO_PREVIEW,
                    reply_parameters=reply,
                    disable_notification=extras.silent,
                    reply_markup=keyboard,
                )
            except BadRequest as exc:
                if "can't parse entities" not in str(exc).lower():
                    raise
                # A formatting bug must not hold an alert back: send it as plain text.
                log.error("telegram html refused chat=%s error=%r", chat_id, str(exc))
                sent = await self._bot.send_message(
                    chat_id,
                    to_plain(html),
                    parse_mode=None,
                    reply_parameters=reply,
                    disable_notification=extras.silent,
                    reply_markup=keyboard,
                )
        except ChatMigrated as exc:
            if self._on_migrate is not None:
                await self._on_migrate(chat_id, exc.new_chat_id)
            raise ChatMoved(exc.new_chat_id) from exc
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        return sent.message_id

    async def send_photo(self, chat_id: int, png: bytes, caption_html: str = "") -> None:
        """Send a picture (a chart) with an HTML caption of at most 1,024 characters."""
        if not self._ready():
            raise TransientError("telegram not connected yet")
        try:
            await self._bot.send_photo(
                chat_id, png, caption=caption_html or None, parse_mode=ParseMode.HTML
            )
        except ChatMigrated as exc:
            if self._on_migrate is not None:
                await self._on_migrate(chat_id, exc.new_chat_id)
            raise ChatMoved(exc.new_chat_id) from exc
        except TelegramError as exc:
            raise delivery_error(exc) from exc


def keyboard_of(extras: Extras) -> InlineKeyboardMarkup | None:
    """The message's buttons as one row of an inline keyboard (None: no buttons)."""
    if not extras.buttons:
        return None
    row = [InlineKeyboardButton(b.text, callback_data=b.data) for b in extras.buttons]
    return InlineKeyboardMarkup([row])


class Migrations:
    """Hands each group -> supergroup move to ``hook`` once (Telegram tells it several times).

    A move is seen in a refused send and in two service messages (one in each chat). A hook that
    fails is logged, and called again the next time the move is seen.
    """

    def __init__(self, hook: Migrate | None) -> None:
        self._hook = hook
        self._done: set[tuple[int, int]] = set()
        self._lock = asyncio.Lock()

    async def moved(self, old_id: int, new_id: int) -> None:
        async with self._lock:  # two sends refused at once must not move the chat twice
            if (old_id, new_id) in self._done:
                return
            log.warning("telegram chat migrated old=%s new=%s", old_id, new_id)
            if self._hook is None:
                return
            try:
                await self._hook(old_id, new_id)
            except Exception:
                log.exception("chat migration hook failed old=%s new=%s", old_id, new_id)
                return
            self._done.add((old_id, new_id))

    async def on_message(self, update: Update, context: object) -> None:
        """PTB handler for the service messages ``migrate_to_chat_id``/``migrate_from_chat_id``."""
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id is not None:  # in the old group
            await self.moved(message.chat.id, message.migrate_to_chat_id)
        elif message.migrate_from_chat_id is not None:  # in the new supergroup
            await self.moved(message.migrate_from_chat_id, message.chat.id)


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


@dataclass(slots=True)
class _Spell:
    """A run of failed polls, from the first failure to the next good poll."""

    since: float  # time.monotonic()
    failures: int = 0
    unauthorized: bool = False  # Telegram refused the token (401) at least once
    admins_told: bool = False


class TelegramBot:
    """The bot: command handlers, long polling, admin notices, and the transport for alerts.

    Args:
        settings: token (required here), base_url, allowed and admin chats.
        service: what the commands call (``bot.service.BotService``).
        on_migrate: called with ``(old_id, new_id)`` when a group turned into a supergroup (a
            send refused with ``migrate_to_chat_id``, or the service message announcing it);
            once per move while it succeeds, again when it raised.
        poll_timeout: long-poll duration of getUpdates, seconds.
        request_timeout: connect/read timeout of every other Bot API call, seconds.
        refusal_ttl: a chat that is not allowed is told so once per this many seconds.
        retry_min, retry_max: connecting and polling are retried after a failure, the delay
            doubling from ``retry_min`` up to ``retry_max`` seconds.
        voice: the language, stock names and demo tag of every reply, notice and the menu.
    """

    def __init__(
        self,
        settings: TelegramSettings,
        service: BotService,
        *,
        on_migrate: Migrate | None = None,
        poll_timeout: float = 10.0,
        request_timeout: float = 10.0,
        refusal_ttl: float = 3600.0,
        retry_min: float = 1.0,
        retry_max: float = 60.0,
        voice: Voice = PLAIN,
    ) -> None:
        if settings.token is None:
            raise ValueError("telegram.token is not set")
        self.settings = settings
        self.voice = voice
        self._poll_timeout = poll_timeout
        self._stop_timeout = min(request_timeout, _STOP_TIMEOUT)
        self._retry = (retry_min, retry_max)
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
            .updater(None)  # we poll ourselves: PTB's updater stops for good on one 401
            .build()
        )
        allowed = {*settings.allowed_chat_ids, *settings.admin_chat_ids}  # admins may always
        self.access = access = Access(allowed, refusal_ttl)
        install(self.app, service, access, settings.admin_chat_ids, voice)
        self._migrations = Migrations(on_migrate)
        self.app.add_handler(
            MessageHandler(filters.StatusUpdate.MIGRATE, self._migrations.on_message),
            group=_MIGRATION_GROUP,
        )
        self.transport = TelegramTransport(
            self.app.bot, ready=lambda: self.ready, on_migrate=self._migrations.moved
        )
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._offset: int | None = None  # the next update_id to ask for
        self._unconfirmed = False  # the last poll returned updates Telegram has not seen confirmed
        self._spell: _Spell | None = None

    @property
    def ready(self) -> bool:
        """True once the Bot API answered: token checked, command menu published, polling."""
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def start(self) -> None:
        """Connect (getMe, the command menu) and poll for commands in the background.

        Returns after one attempt: when the Bot API cannot be reached (or answers 5xx, times out,
        asks to wait), ``ready`` stays False, the transport's sends fail transiently, and a
        background task keeps trying with backoff; commands and the menu come once it answers.
        Raises telegram.error.InvalidToken when Telegram refuses the token (401): a config
        mistake, not an outage.
        """
        if self._task is not None:
            raise RuntimeError("TelegramBot.start() was already called")
        try:
            await self._connect()
        except InvalidToken:
            raise
        except Exception as exc:
            log.warning(
                "telegram unreachable at start, connecting in the background error=%s",
                describe(exc),
                exc_info=not isinstance(exc, TelegramError),
            )
        self._task = asyncio.create_task(self._run(), name="telegram")

    async def stop(self) -> None:
        """Stop polling and handlers, close connections.

        Never raises (but for its own cancellation), whatever polling is doing: connecting,
        failing, answering 401, or after a failed or no start at all. A failing step is logged.
        """
        self._ready.clear()  # from now on the transport refuses, as before start
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:  # a bug: say it, go on
                log.error("telegram task failed", exc_info=task.exception())
        await self._quietly("confirm updates", self._confirm_updates)
        if self.app.running:
            await self._quietly("stop handlers", self.app.stop)
        await self._quietly("shut down", self.app.shutdown)
        # After a failed start the application never initialized, but the bot's clients opened.
        await self._quietly("close connections", self.app.bot.shutdown)
        log.info("telegram stopped")

    async def notify_admins(self, text: str) -> int:
        """Send plain ``text`` (escaped here, clipped) to every admin chat; returns how many did.

        Best effort, for operational notices such as rule reload errors: failures are logged,
        and nothing is sent before the Bot API was reached. The demo's notices carry its tag.
        """
        if not self.ready:
            log.warning("admin notice not sent, telegram not connected text=%r", text[:80])
            return 0
        return await send_to_admins(
            self.app.bot, self.settings.admin_chat_ids, self.voice.tagged(text), self._migrations
        )

    # -- connecting ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        """getMe (checks the token), the command menu, then updates are handled: ready."""
        await self.app.initialize()
        try:
            await self.app.bot.set_my_commands(menu(self.voice))
        except BadRequest as exc:  # our menu is wrong: commands work anyway, say it loudly
            log.error("telegram refused the command menu error=%r", str(exc))
        await self.app.bot.delete_webhook()  # while a webhook is set, getUpdates answers 409
        if not self.app.running:
            await self.app.start()
        self._ready.set()
        log.info("telegram started bot=@%s", self.app.bot.username)

    async def _run(self) -> None:
        backoff = Backoff(*self._retry)
        attempt = 1  # start() made the first
        while not self.ready:
            await asyncio.sleep(backoff.next())
            attempt += 1
            try:
                await self._connect()
            except Exception as exc:
                log.warning(
                    "telegram connect failed attempt=%d error=%s",
                    attempt,
                    describe(exc),
                    exc_info=not isinstance(exc, TelegramError),
                )
        await self._poll()

    # -- polling ---------------------------------------------------------------------------------

    async def _poll(self) -> None:
        """Long-poll getUpdates for ever; every failure is retried with backoff (never ends)."""
        backoff = Backoff(*self._retry)
        while True:
            try:
                updates = await self.app.bot.get_updates(
                    offset=self._offset,
                    timeout=timedelta(seconds=self._poll_timeout),
                    allowed_updates=_ALLOWED_UPDATES,
                )
            except Exception as exc:
                await asyncio.sleep(await self._poll_failed(exc, backoff))
                continue
            backoff.reset()
            await self._poll_worked()
            for update in updates:
                await self.app.update_queue.put(update)
            if updates:
                self._offset = updates[-1].update_id + 1
            self._unconfirmed = bool(updates)

    async def _poll_failed(self, exc: Exception, backoff: Backoff) -> float:
        """Log the failure, tell the admins of a 401 spell once; returns how long to wait."""
        spell = self._spell = self._spell or _Spell(time.monotonic())
        spell.failures += 1
        delay = retry_seconds(exc) if isinstance(exc, RetryAfter) else backoff.next()
        log.warning(
            "telegram polling failed error=%s failures=%d retry_in=%.1fs",
            describe(exc),
            spell.failures,
            delay,
            exc_info=not isinstance(exc, TelegramError),
        )
        if isinstance(exc, InvalidToken) and not spell.unauthorized:
            spell.unauthorized = True
            # Sending usually fails with the same 401; then they hear of it once it is over.
            notice = self.voice.say("notice.polling_refused", retry=self._retry[1])
            spell.admins_told = await self.notify_admins(notice) > 0
        return delay

    async def _poll_worked(self) -> None:
        spell, self._spell = self._spell, None
        if spell is None:
            return
        seconds = time.monotonic() - spell.since
        log.info("telegram polling resumed after=%.1fs failures=%d", seconds, spell.failures)
        if spell.unauthorized and not spell.admins_told:
            await self.notify_admins(self.voice.say("notice.polling_resumed", seconds=seconds))

    async def _confirm_updates(self) -> None:
        """Tell Telegram the updates of the last poll were taken, so a restart gets none twice."""
        if not self._unconfirmed or self._offset is None:
            return
        async with asyncio.timeout(self._stop_timeout):
            await self.app.bot.get_updates(
                offset=self._offset, timeout=0, allowed_updates=_ALLOWED_UPDATES
            )
        self._unconfirmed = False

    async def _quietly(self, step: str, action: Callable[[], Awaitable[None]]) -> None:
        try:
            await action()
        except Exception as exc:
            log.warning("telegram stop step failed step=%r error=%s", step, describe(exc))


def describe(exc: BaseException) -> str:
    """A failure in one short line for the logs (never the token, which InvalidToken carries)."""
    if isinstance(exc, InvalidToken):
        return "InvalidToken: Telegram refused the bot token (401)"
    return f"{type(exc).__name__}: {exc}"[:300]


async def send_to_admins(
    bot: Bot, admins: Sequence[int], text: str, migrations: Migrations | None = None
) -> int:
    """Send ``text`` to each admin chat; one that moved to a supergroup gets it at its new id."""
    html = esc_clipped(text, _MAX_ADMIN_TEXT)
    delivered = 0
    for chat_id in admins:
        target = chat_id
        for _ in range(2):  # the second time at a migrated group's new id
            try:
                await bot.send_message(target, html, parse_mode=ParseMode.HTML)
                delivered += 1
                break
            except ChatMigrated as exc:
                log.warning(
                    "admin chat migrated chat=%s new=%s (update telegram.admin_chat_ids)",
                    target,
                    exc.new_chat_id,
                )
                if migrations is not None:
                    await migrations.moved(target, exc.new_chat_id)
                target = exc.new_chat_id
            except TelegramError as exc:
                log.warning("admin notice failed chat=%s error=%s", target, describe(exc))
                break
    return delivered
