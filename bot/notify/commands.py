"""Telegram commands: parse arguments, call the service, answer in HTML. Nothing else.

Every command is registered with ``@command``, which is also the guard: a chat that is not in
``allowed_chat_ids`` gets one short refusal (per chat, then silence for ``refusal_ttl``) and
nothing runs; a ValueError (bad arguments, from us or the service) is answered with its message
and the command's usage line. Other failures go to ``on_error``: logged, and reported to the
admin chats.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from bot.notify import replies
from bot.notify.format import MAX_MESSAGE, esc, join, pack

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Awaitable[None]]
Service = Any  # bot.service.BotService; typed loosely so that tests may pass their own


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str  # the usage line's arguments, e.g. "CODE [CODE…]"
    summary: str  # one line for /help and Telegram's command menu
    callback: Handler

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


REGISTRY: list[Command] = []


class Access:
    """Which chats may use the bot, and which were refused recently (so told only once)."""

    def __init__(
        self,
        allowed: Iterable[int],
        refusal_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed = frozenset(allowed)
        self._ttl = refusal_ttl
        self._clock = clock
        self._refused: dict[int, float] = {}  # chat -> when it was last told

    def allows(self, chat_id: int) -> bool:
        return chat_id in self._allowed

    def tell_refusal(self, chat_id: int) -> bool:
        """True if this chat should be told it is refused now (first time in ``refusal_ttl``)."""
        now = self._clock()
        if len(self._refused) > 10_000:  # a flood of strangers must not grow this forever
            self._refused = {c: t for c, t in self._refused.items() if now - t < self._ttl}
        last = self._refused.get(chat_id)
        if last is not None and now - last < self._ttl:
            return False
        self._refused[chat_id] = now
        return True


def command(name: str, args: str, summary: str) -> Callable[[Handler], Handler]:
    """Register a command handler, guarded (allowed chats only) and with usage on bad arguments."""

    def register(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(update: Update, context: Context) -> None:
            chat, message = update.effective_chat, update.effective_message
            if chat is None or message is None:
                return
            access: Access = context.bot_data["access"]
            if not access.allows(chat.id):
                if access.tell_refusal(chat.id):
                    log.info("chat refused chat=%s command=%s", chat.id, name)
                    await message.reply_html(replies.refusal(chat.id))
                return
            try:
                await handler(update, context)
            except ValueError as exc:
                log.info("bad arguments chat=%s command=%s error=%r", chat.id, name, str(exc))
                await message.reply_html(replies.bad_arguments(str(exc), entry.usage))

        entry = Command(name, args, summary, guarded)
        REGISTRY.append(entry)
        return guarded

    return register


def service_of(context: Context) -> Service:
    return context.bot_data["service"]


async def answer(update: Update, blocks: Sequence[str]) -> None:
    """Reply with HTML blocks, split into several messages when over Telegram's limit."""
    message = update.effective_message
    assert message is not None
    start = 0
    for count in pack(blocks, MAX_MESSAGE, sep="\n"):
        await message.reply_html(join(blocks[start : start + count], sep="\n"))
        start += count


def chat_id_of(update: Update) -> int:
    assert update.effective_chat is not None
    return update.effective_chat.id


def words(context: Context) -> list[str]:
    return list(context.args or [])


# -- the commands --------------------------------------------------------------------------------


@command("help", "", "what this bot does and its commands")
async def cmd_help(update: Update, context: Context) -> None:
    """Explain the bot and every command."""
    await answer(update, replies.help_text(REGISTRY))


@command("start", "", "welcome and help")
async def cmd_start(update: Update, context: Context) -> None:
    """Greet and explain, as /help does."""
    await answer(update, replies.help_text(REGISTRY))


# -- wiring --------------------------------------------------------------------------------------


async def unknown_command(update: Update, context: Context) -> None:
    """Any other /word: point to /help (strangers get the refusal instead)."""
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return
    access: Access = context.bot_data["access"]
    if not access.allows(chat.id):
        if access.tell_refusal(chat.id):
            await message.reply_html(replies.refusal(chat.id))
        return
    await message.reply_html(replies.unknown_command())


async def on_error(update: object, context: Context) -> None:
    """Log a handler failure and report it, short and escaped, to the admin chats."""
    error = context.error
    where = ""
    if isinstance(update, Update) and update.effective_chat is not None:
        text = update.effective_message.text if update.effective_message else None
        where = f" chat={update.effective_chat.id} text={(text or '')[:60]!r}"
    log.error("handler failed%s", where, exc_info=error)
    notice = f"⚠️ pgmbot error{html.escape(where)}: {esc(type(error).__name__)}: {esc(error)}"
    for admin in context.bot_data.get("admins", ()):
        try:
            await context.bot.send_message(admin, notice[:1000], parse_mode=ParseMode.HTML)
        except Exception as exc:  # the report itself must not raise into PTB
            log.warning("error report failed chat=%s error=%r", admin, str(exc))
    if isinstance(update, Update) and update.effective_message is not None:
        await update.effective_message.reply_text("Sorry, that failed; the admins were told.")


COMMANDS = [BotCommand(c.name, c.summary) for c in REGISTRY]


def install(
    app: Application[Any, Any, Any, Any, Any, Any],
    service: Service,
    access: Access,
    admins: Sequence[int],
) -> None:
    """Register every command, the unknown-command answer and the error handler on ``app``."""
    app.bot_data.update(service=service, access=access, admins=list(admins))
    for entry in REGISTRY:
        app.add_handler(CommandHandler(entry.name, entry.callback))
    app.add_handler(MessageHandler(filters.COMMAND, unknown_command))
    app.add_error_handler(on_error)
