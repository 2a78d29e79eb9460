"""Telegram commands: parse arguments, call the service, answer in HTML. Nothing else.

Every command is registered with ``@command``, which is also the guard: a chat that is not in
``allowed_chat_ids`` gets one short refusal (per chat, then silence for ``refusal_ttl``) and
nothing runs; a CommandError (the user's mistake, from us or the service) is answered with its
message and the command's usage line. Anything else is a bug: ``on_error`` logs it with its
traceback, reports it (escaped) to the admin chats and answers with a short apology.

The handlers reach the service through ``context.bot_data``, a typed ``BotData`` (PTB's
``ContextTypes(bot_data=...)``), so mypy checks every call.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackContext,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from bot.messages import KOREAN
from bot.notify import replies
from bot.notify.format import MAX_MESSAGE, esc_clipped, join, pack
from bot.service import BotService, CommandError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str  # the usage line's arguments, e.g. "CODE [CODE…]"
    summary: str  # one line for /help and Telegram's command menu
    callback: Handler  # guarded

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


REGISTRY: list[Command] = []
DEFAULT_ALERTS = 10


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

    def allow(self, chat_id: int) -> None:
        """One more chat may use the bot (a group that became a supergroup)."""
        self._allowed = self._allowed | {chat_id}

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


class BotData:
    """What every handler may use: ``context.bot_data``. PTB makes it empty; ``install`` fills
    it before any update is handled."""

    def __init__(self) -> None:
        self._service: BotService | None = None
        self._access: Access | None = None
        self.admins: list[int] = []

    def install(self, service: BotService, access: Access, admins: Sequence[int]) -> None:
        self._service, self._access, self.admins = service, access, list(admins)

    @property
    def service(self) -> BotService:
        if self._service is None:
            raise RuntimeError("bot_data used before install()")
        return self._service

    @property
    def access(self) -> Access:
        if self._access is None:
            raise RuntimeError("bot_data used before install()")
        return self._access


Context = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]
CONTEXT_TYPES = ContextTypes(bot_data=BotData)
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]


def guard(handler: Handler, usage: str) -> Handler:
    """Run ``handler`` for allowed chats only; answer a CommandError with it and the usage."""

    @wraps(handler)
    async def guarded(update: Update, context: Context) -> None:
        chat, message = update.effective_chat, update.effective_message
        if chat is None or message is None:
            return
        data = context.bot_data
        if not data.access.allows(chat.id):
            if data.access.tell_refusal(chat.id):
                log.info("chat refused chat=%s text=%r", chat.id, (message.text or "")[:40])
                await message.reply_html(replies.refusal(chat.id))
            return
        await heard_from(data, chat.id)
        try:
            await handler(update, context)
        except CommandError as exc:
            log.info("bad arguments chat=%s usage=%r error=%r", chat.id, usage, str(exc))
            await message.reply_html(replies.bad_arguments(str(exc), usage))

    return guarded


def command(name: str, args: str, summary: str) -> Callable[[Handler], Handler]:
    """Register a command handler, guarded (see ``guard``)."""

    def register(handler: Handler) -> Handler:
        usage = f"/{name} {args}".rstrip()
        REGISTRY.append(Command(name, args, summary, guard(handler, usage)))
        return handler

    return register


def service_of(context: Context) -> BotService:
    return context.bot_data.service


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


@command("watch", "CODE [CODE…]", "watch stocks: their alerts come to this chat")
async def cmd_watch(update: Update, context: Context) -> None:
    """Watch stock codes (the feed subscribes to them)."""
    results = await service_of(context).watch(chat_id_of(update), words(context))
    await answer(update, replies.watched(results))


@command("unwatch", "CODE [CODE…]", "stop watching stocks")
async def cmd_unwatch(update: Update, context: Context) -> None:
    """Stop watching stock codes."""
    codes = words(context)
    service = service_of(context)
    results = await service.unwatch(chat_id_of(update), codes)
    # A name that went is not "not watched here": the reply compares codes.
    asked = [service.code_of(word) or word for word in codes]
    await answer(update, replies.unwatched(asked, results))


@command("find", KOREAN("market.find.args"), KOREAN("market.find.summary"))
async def cmd_find(update: Update, context: Context) -> None:
    """Search listed stocks by name."""
    found = await service_of(context).find(chat_id_of(update), " ".join(words(context)))
    await answer(update, replies.found(found))


@command("list", "", "this chat's watched stocks and their state")
async def cmd_list(update: Update, context: Context) -> None:
    """List this chat's watched codes with their subscription state."""
    no_arguments(context)
    statuses = await service_of(context).watch_list(chat_id_of(update))
    await answer(update, replies.watch_list(statuses))


@command("alerts", "[CODE] [N]", "the last N alerts (default 10), optionally of one stock")
async def cmd_alerts(update: Update, context: Context) -> None:
    """Show this chat's recent alerts."""
    code, n = alerts_arguments(words(context))
    found = await service_of(context).alerts(chat_id_of(update), code, n)
    await answer(update, replies.recent_alerts(found, code))


@command("rules", "", "the loaded rules and the last reload error")
async def cmd_rules(update: Update, context: Context) -> None:
    """List the loaded rules."""
    no_arguments(context)
    lines, last_error = await service_of(context).rules(chat_id_of(update))
    await answer(update, replies.rule_list(lines, last_error))


@command("mute", "RULE|CODE DURATION", "silence a rule or a stock for a while")
async def cmd_mute(update: Update, context: Context) -> None:
    """Mute a rule or a code for this chat."""
    args = words(context)
    if len(args) != 2:
        raise CommandError("Give what to mute and for how long, e.g. /mute 005930 30m.")
    mute = await service_of(context).mute(chat_id_of(update), args[0], args[1])
    await answer(update, replies.muted(mute))


@command("unmute", "[RULE|CODE]", "end one mute, or all of them")
async def cmd_unmute(update: Update, context: Context) -> None:
    """End a mute (all of this chat's mutes without an argument)."""
    args = words(context)
    if len(args) > 1:
        raise CommandError("Give at most one rule or code.")
    target = args[0] if args else None
    ended = await service_of(context).unmute(chat_id_of(update), target)
    await answer(update, replies.unmuted(target, ended))


@command("status", "", "feed, subscriptions and delivery health")
async def cmd_status(update: Update, context: Context) -> None:
    """Show the bot's health."""
    no_arguments(context)
    await answer(update, replies.status(await service_of(context).status(chat_id_of(update))))


# -- arguments -----------------------------------------------------------------------------------


def no_arguments(context: Context) -> None:
    if context.args:
        raise CommandError("This command takes no arguments.")


def alerts_arguments(args: Sequence[str]) -> tuple[str | None, int]:
    """``[CODE] [N]`` in either order: a 6-character word is a code, a shorter number is N.

    Only the shape is checked here; the service checks the code and the range of N.
    """
    code: str | None = None
    n = DEFAULT_ALERTS
    for arg in args[:3]:
        if len(arg) == 6 and code is None:
            code = arg
        elif arg.isdigit() and len(arg) < 6:
            n = int(arg)
        else:
            raise CommandError(f"{arg!r} is neither a stock code nor a count.")
    if len(args) > 2:
        raise CommandError("Give at most a code and a count.")
    return code, n


# -- wiring --------------------------------------------------------------------------------------


async def unknown_command(update: Update, context: Context) -> None:
    """Any other /word: point to /help."""
    assert update.effective_message is not None
    await update.effective_message.reply_html(replies.unknown_command())


async def on_error(update: object, context: Context) -> None:
    """Log a handler failure and report it, short and escaped, to the admin chats."""
    error = context.error
    where = ""
    if isinstance(update, Update) and update.effective_chat is not None:
        text = update.effective_message.text if update.effective_message else None
        where = f" chat={update.effective_chat.id} text={(text or '')[:60]!r}"
    log.error("handler failed%s", where, exc_info=error)
    notice = esc_clipped(f"⚠️ pgmbot error{where}: {type(error).__name__}: {error}", 1000)
    for admin in context.bot_data.admins:
        try:
            await context.bot.send_message(admin, notice, parse_mode=ParseMode.HTML)
        except Exception as exc:  # the report itself must not raise into PTB
            log.warning("error report failed chat=%s error=%r", admin, str(exc))
    if isinstance(update, Update) and update.effective_message is not None:
        with contextlib.suppress(Exception):
            await update.effective_message.reply_text("Sorry, that failed; the admins were told.")


COMMANDS = [BotCommand(c.name, c.summary) for c in REGISTRY]


async def heard_from(data: BotData, chat_id: int) -> None:
    """An allowed chat wrote: it has unblocked the bot. A database that cannot say so now must
    not stop the command (the next message tries again)."""
    try:
        await data.service.heard_from(chat_id)
    except Exception as exc:
        log.warning("unblock failed chat=%s error=%r", chat_id, str(exc)[:200])


async def any_message(update: Update, context: Context) -> None:
    """A message that is no command: an allowed chat that writes has unblocked the bot."""
    chat = update.effective_chat
    if chat is not None and context.bot_data.access.allows(chat.id):
        await heard_from(context.bot_data, chat.id)


def install(
    app: Application[Any, Any, Any, Any, BotData, Any],
    service: BotService,
    access: Access,
    admins: Sequence[int],
) -> None:
    """Register every command, the unknown-command answer and the error handler on ``app``."""
    app.bot_data.install(service, access, admins)
    for entry in REGISTRY:
        app.add_handler(CommandHandler(entry.name, entry.callback))
    app.add_handler(MessageHandler(filters.COMMAND, guard(unknown_command, "/help")))
    app.add_handler(MessageHandler(~filters.COMMAND, any_message))
    app.add_error_handler(on_error)
