"""Telegram commands: parse arguments, call the service, answer in HTML. Nothing else.

Every command is registered with ``@command(name)``, which is also the guard: a chat that is not in
``allowed_chat_ids`` gets one short refusal (per chat, then silence for ``refusal_ttl``) and
nothing runs; a CommandError (the user's mistake, from us or the service) is answered with its
message and the command's usage line. Anything else is a bug: ``on_error`` logs it with its
traceback, reports it (escaped) to the admin chats and answers with a short apology.

The handlers reach the service through ``context.bot_data``, a typed ``BotData`` (PTB's
``ContextTypes(bot_data=...)``), so mypy checks every call. Every word they answer with comes from
the catalogue (bot/messages) through the ``Voice`` in ``bot_data``: a command's usage line and
summary are the keys ``cmd.NAME.args`` and ``cmd.NAME.summary`` (or those ``@command`` names),
and every message of the demo carries its tag.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any

from telegram import BotCommand, CallbackQuery, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from bot.charts import replies as chart_replies
from bot.charts.levels import NoData
from bot.charts.service import DEFAULT_TOP, MAX_TOP, ChartService
from bot.notify import replies
from bot.notify.buttons import MAX_DATA, parse_press
from bot.notify.format import MAX_MESSAGE, esc, esc_clipped, join, pack, to_plain
from bot.notify.voice import PLAIN, Voice
from bot.service import BotService, CommandError, shown
from bot.store.chats import Mute

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args_key: str  # the catalogue's key of the usage line's arguments (cmd.NAME.args)
    summary_key: str  # … of the line for /help and Telegram's menu (cmd.NAME.summary)
    callback: Handler | None = None  # guarded (None: only its texts, e.g. for the guard)
    admin_only: bool = False  # only a user listed in telegram.admin_chat_ids may run it


REGISTRY: list[Command] = []
_HELP = Command("help", "cmd.help.args", "cmd.help.summary")  # the unknown command's usage
DEFAULT_ALERTS = 10
MAX_NAME_WORDS = 4  # words of a stock's name in /alerts, /mute, /unmute (KODEX 200 …)


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
        self.voice: Voice = PLAIN

    def install(
        self, service: BotService, access: Access, admins: Sequence[int], voice: Voice = PLAIN
    ) -> None:
        self._service, self._access, self.admins = service, access, list(admins)
        self.voice = voice

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


def guard(handler: Handler, info: Command) -> Handler:
    """Run ``handler`` for allowed chats only; answer a CommandError with it and the usage of
    the command ``info``."""

    @wraps(handler)
    async def guarded(update: Update, context: Context) -> None:
        chat, message = update.effective_chat, update.effective_message
        if chat is None or message is None:
            return
        if addressed_elsewhere(message.text, context.bot.username):
            return  # "/status@other_bot" in a group: another bot's, not ours to answer
        data = context.bot_data
        voice = data.voice
        if not data.access.allows(chat.id):
            if data.access.tell_refusal(chat.id):
                log.info("chat refused chat=%s text=%r", chat.id, (message.text or "")[:40])
                await message.reply_html(voice.tagged(replies.refusal(voice, chat.id)))
            return
        await heard_from(data, chat.id)
        if info.admin_only and not is_admin(update, data.admins):
            user = update.effective_user.id if update.effective_user else None
            log.info("admin command refused chat=%s user=%s command=%s", chat.id, user, info.name)
            await message.reply_html(voice.tagged(voice.say("notify.admin_only")))
            return
        try:
            await handler(update, context)
        except CommandError as exc:
            usage = replies.usage(voice, info)
            log.info("bad arguments chat=%s command=%s error=%s", chat.id, info.name, exc.key)
            await message.reply_html(voice.tagged(replies.bad_arguments(voice, exc, usage)))

    return guarded


def addressed_elsewhere(text: str | None, username: str | None) -> bool:
    """``/cmd@name`` where ``name`` is not this bot: in a group, a command for another bot."""
    if not text or not text.startswith("/"):
        return False
    head = text.split(maxsplit=1)[0]
    _, at, name = head.partition("@")
    return bool(at) and (username is None or name.lower() != username.lower())


def is_admin(update: Update, admins: Sequence[int]) -> bool:
    """The user who wrote is an admin (their id listed in ``telegram.admin_chat_ids``): in a
    group, being in an allowed (or admin) chat is not enough."""
    user = update.effective_user
    return user is not None and user.id in admins


def command(
    name: str,
    args_key: str | None = None,
    summary_key: str | None = None,
    *,
    admin_only: bool = False,
) -> Callable[[Handler], Handler]:
    """Register a command handler, guarded (see ``guard``); the catalogue holds its usage
    arguments and summary, under ``cmd.NAME.args`` and ``cmd.NAME.summary`` unless given.
    ``admin_only``: only an admin user may run it, whatever chat it is written in."""

    def register(handler: Handler) -> Handler:
        args = args_key or f"cmd.{name}.args"
        summary = summary_key or f"cmd.{name}.summary"
        info = Command(name, args, summary, admin_only=admin_only)
        REGISTRY.append(replace(info, callback=guard(handler, info)))
        return handler

    return register


def service_of(context: Context) -> BotService:
    return context.bot_data.service


def voice_of(context: Context) -> Voice:
    return context.bot_data.voice


async def answer(update: Update, context: Context, blocks: Sequence[str]) -> None:
    """Reply with HTML blocks, split into several messages when over Telegram's limit; each
    message of the demo under its tag."""
    message = update.effective_message
    assert message is not None
    voice = voice_of(context)
    start = 0
    for count in pack(blocks, MAX_MESSAGE - voice.tag_room(), sep="\n"):
        await message.reply_html(voice.tagged(join(blocks[start : start + count], sep="\n")))
        start += count


def chat_id_of(update: Update) -> int:
    assert update.effective_chat is not None
    return update.effective_chat.id


def words(context: Context) -> list[str]:
    return list(context.args or [])


# -- the commands --------------------------------------------------------------------------------


@command("help")
async def cmd_help(update: Update, context: Context) -> None:
    """Explain the bot and every command."""
    await answer(update, context, replies.help_text(voice_of(context), REGISTRY))


@command("start")
async def cmd_start(update: Update, context: Context) -> None:
    """Greet and explain, as /help does."""
    await answer(update, context, replies.help_text(voice_of(context), REGISTRY))


@command("watch")
async def cmd_watch(update: Update, context: Context) -> None:
    """Watch stock codes (the feed subscribes to them)."""
    results = await service_of(context).watch(chat_id_of(update), words(context))
    await answer(update, context, replies.watched(voice_of(context), results))


@command("unwatch")
async def cmd_unwatch(update: Update, context: Context) -> None:
    """Stop watching stock codes."""
    codes = words(context)
    service = service_of(context)
    results = await service.unwatch(chat_id_of(update), codes)
    # A name that went is not "not watched here": the reply compares codes.
    asked = [service.code_of(word) or word for word in codes]
    await answer(update, context, replies.unwatched(voice_of(context), asked, results))


@command("find", "market.find.args", "market.find.summary")
async def cmd_find(update: Update, context: Context) -> None:
    """Search listed stocks by name."""
    found = await service_of(context).find(chat_id_of(update), " ".join(words(context)))
    await answer(update, context, replies.found(voice_of(context), found))


@command("list")
async def cmd_list(update: Update, context: Context) -> None:
    """List this chat's watched codes with their subscription state."""
    no_arguments(context)
    statuses = await service_of(context).watch_list(chat_id_of(update))
    await answer(update, context, replies.watch_list(voice_of(context), statuses))


@command("alerts")
async def cmd_alerts(update: Update, context: Context) -> None:
    """Show this chat's recent alerts."""
    code, n = alerts_arguments(words(context))
    found = await service_of(context).alerts(chat_id_of(update), code, n)
    await answer(update, context, replies.recent_alerts(voice_of(context), found, code))


@command("rules")
async def cmd_rules(update: Update, context: Context) -> None:
    """List the loaded rules."""
    no_arguments(context)
    lines, last_error = await service_of(context).rules(chat_id_of(update))
    await answer(update, context, replies.rule_list(voice_of(context), lines, last_error))


@command("reload", admin_only=True)
async def cmd_reload(update: Update, context: Context) -> None:
    """Re-read the rule files now (admins only)."""
    no_arguments(context)
    lines, last_error = await service_of(context).reload_rules(chat_id_of(update))
    voice = voice_of(context)
    await answer(
        update,
        context,
        [voice.say("notify.reloaded"), *replies.rule_list(voice, lines, last_error)],
    )


@command("mute")
async def cmd_mute(update: Update, context: Context) -> None:
    """Mute a rule or a code for this chat."""
    args = words(context)
    if not 2 <= len(args) <= MAX_NAME_WORDS + 1:
        raise CommandError("error.mute_arguments")
    target = " ".join(args[:-1])  # a rule id, a code or a name (names may have spaces)
    mute = await service_of(context).mute(chat_id_of(update), target, args[-1])
    await answer(update, context, replies.muted(voice_of(context), mute))


@command("unmute")
async def cmd_unmute(update: Update, context: Context) -> None:
    """End a mute (all of this chat's mutes without an argument)."""
    args = words(context)
    if len(args) > MAX_NAME_WORDS:
        raise CommandError("error.unmute_arguments")
    target = " ".join(args) if args else None
    ended = await service_of(context).unmute(chat_id_of(update), target)
    await answer(update, context, replies.unmuted(voice_of(context), target, ended))


@command("mutes", "notify.cmd.mutes.args", "notify.cmd.mutes.summary")
async def cmd_mutes(update: Update, context: Context) -> None:
    """List this chat's active mutes with their end times."""
    no_arguments(context)
    mutes = await service_of(context).mutes(chat_id_of(update))
    await answer(update, context, replies.mute_list(voice_of(context), mutes))


@command("quiet", "notify.cmd.quiet.args", "notify.cmd.quiet.summary")
async def cmd_quiet(update: Update, context: Context) -> None:
    """Set, turn off or show this chat's quiet hours (alerts then come without sound)."""
    args = words(context)
    if len(args) > 1:
        raise CommandError("notify.quiet.bad", word=shown(" ".join(args)))
    service, voice = service_of(context), voice_of(context)
    hours = await service.quiet(chat_id_of(update), args[0] if args else None)
    if hours is not None:
        text = voice.say("notify.quiet.on", range=esc(str(hours)))
    elif args:
        text = voice.say("notify.quiet.turned_off")
    else:
        text = voice.say("notify.quiet.none")
    await answer(update, context, [text])


@command("settings", "notify.cmd.settings.args", "notify.cmd.settings.summary")
async def cmd_settings(update: Update, context: Context) -> None:
    """This chat's settings at a glance."""
    no_arguments(context)
    settings = await service_of(context).settings(chat_id_of(update))
    await answer(update, context, replies.chat_settings(voice_of(context), settings))


@command("status")
async def cmd_status(update: Update, context: Context) -> None:
    """Show the bot's health."""
    no_arguments(context)
    report = await service_of(context).status(chat_id_of(update))
    await answer(update, context, replies.status(voice_of(context), report))


# -- charts (bot.charts: /chart, /now, /top, /digest) ---------------------------------------------


def charts_of(context: Context) -> ChartService:
    charts = service_of(context).charts
    if charts is None:
        raise CommandError("charts.off")
    return charts


def chart_arguments(args: Sequence[str]) -> tuple[str, str | None]:
    """``CODE|NAME [DATE]``: a last word that looks like a date is the date (names may have
    spaces)."""
    if not args:
        raise CommandError("charts.give_stock")
    last = args[-1]
    if len(args) > 1 and (last.startswith("-") or (last[:4].isdigit() and len(last) >= 8)):
        return " ".join(args[:-1]), last
    return " ".join(args), None


@command("chart", "charts.cmd.chart.args", "charts.cmd.chart.summary")
async def cmd_chart(update: Update, context: Context) -> None:
    """A stock's day as a picture (sendPhoto), or why there is none."""
    charts = charts_of(context)
    stock, day = chart_arguments(words(context))
    try:
        chart = await charts.chart(stock, day)
    except NoData as exc:
        await answer(update, context, [esc(str(exc))])
        return
    message = update.effective_message
    assert message is not None
    caption = voice_of(context).tagged(chart_replies.caption(chart, charts.say))
    await message.reply_photo(chart.png, caption=caption, parse_mode=ParseMode.HTML)


@command("now", "charts.cmd.now.args", "charts.cmd.now.summary")
async def cmd_now(update: Update, context: Context) -> None:
    """A stock's latest figures, with the change over 5 and 30 minutes."""
    charts = charts_of(context)
    stock, _ = chart_arguments(words(context))
    try:
        label, figures = charts.now(stock)
    except NoData as exc:
        await answer(update, context, [esc(str(exc))])
        return
    await answer(update, context, ["\n".join(chart_replies.now(label, figures, charts.say))])


@command("top", "charts.cmd.top.args", "charts.cmd.top.summary")
async def cmd_top(update: Update, context: Context) -> None:
    """This chat's watched stocks by today's net-buy value."""
    charts = charts_of(context)
    args = words(context)
    if len(args) > 1 or (args and not (args[0].isdigit() and len(args[0]) < 4)):
        raise CommandError("charts.bad_count", most=MAX_TOP)
    n = int(args[0]) if args else DEFAULT_TOP
    rows = await charts.top(chat_id_of(update), n)
    await answer(update, context, chart_replies.top(rows, charts.say))


@command("digest", "charts.cmd.digest.args", "charts.cmd.digest.summary")
async def cmd_digest(update: Update, context: Context) -> None:
    """Turn this chat's daily digest on or off, or say whether it is on."""
    charts = charts_of(context)
    args = words(context)
    if len(args) > 1:
        raise CommandError("charts.digest.bad_word", word=shown(" ".join(args)))
    on = await charts.digest(chat_id_of(update), args[0] if args else None)
    key = "charts.digest.is_on" if on else "charts.digest.is_off"
    await answer(update, context, [charts.say(key)])


# -- arguments -----------------------------------------------------------------------------------


def no_arguments(context: Context) -> None:
    if context.args:
        raise CommandError("error.no_arguments")


def alerts_arguments(args: Sequence[str]) -> tuple[str | None, int]:
    """``[STOCK] [N]``, N first or last: a number of up to 5 digits is N, the other words are
    the stock, a code or a name (names may have spaces: ``KODEX 200 5``).

    Only the shape is checked here; the service checks the stock and the range of N.
    """
    rest = list(args)
    n = DEFAULT_ALERTS
    for end in (-1, 0):
        if rest and _count(rest[end]):
            n = int(rest.pop(end))
            break
    if len(rest) > MAX_NAME_WORDS:
        raise CommandError("error.alerts_arguments")
    return (" ".join(rest) if rest else None), n


def _count(word: str) -> bool:
    return word.isascii() and word.isdigit() and len(word) < 6


# -- buttons under alert messages (bot/notify/buttons.py) ---------------------------------------


async def on_button(update: Update, context: Context) -> None:
    """A button pressed under an alert message: do what it says and answer the press (a short
    confirmation, or a refusal when the chat is not allowed or the data is not ours)."""
    query = update.callback_query
    if query is None:
        return
    data, voice = context.bot_data, voice_of(context)
    chat_id = query.message.chat.id if query.message is not None else None
    if chat_id is None or not data.access.allows(chat_id):
        log.info("button refused chat=%s reason=not_allowed", chat_id)
        await query.answer(voice.say("notify.button.refused"))
        return
    press = parse_press(query.data)
    pressed = None
    if press is not None:
        await heard_from(data, chat_id)
        pressed = await data.service.press(chat_id, press.action, press.alert_id)
    if pressed is None:
        log.info("button refused chat=%s data=%r", chat_id, str(query.data)[:MAX_DATA])
        await query.answer(voice.say("notify.button.stale"))
        return
    if pressed.mute is not None:
        await query.answer(_muted_answer(voice, pressed.mute))
        return
    await _chart_pressed(context, query, chat_id, pressed.ticker)


def _muted_answer(voice: Voice, mute: Mute) -> str:
    until = voice.moment(mute.until, zone=True, seconds=False)
    if mute.kind == "rule":
        return voice.say("notify.button.muted_rule", rule=mute.target, until=until)
    return voice.say("notify.button.muted_stock", stock=voice.label(mute.target), until=until)


async def _chart_pressed(
    context: Context, query: CallbackQuery, chat_id: int, ticker: str
) -> None:
    """The chart button: the stock's chart of today as a picture in the chat, as /chart."""
    voice = voice_of(context)
    charts = service_of(context).charts
    if charts is None:
        await query.answer(to_plain(voice.say("charts.off")))
        return
    await query.answer(voice.say("notify.button.chart_sent"))
    try:
        chart = await charts.chart(ticker, None)
    except NoData as exc:
        await context.bot.send_message(
            chat_id, voice.tagged(esc(str(exc))), parse_mode=ParseMode.HTML
        )
        return
    caption = voice.tagged(chart_replies.caption(chart, charts.say))
    await context.bot.send_photo(chat_id, chart.png, caption=caption, parse_mode=ParseMode.HTML)


# -- wiring --------------------------------------------------------------------------------------


async def unknown_command(update: Update, context: Context) -> None:
    """Any other /word: point to /help."""
    assert update.effective_message is not None
    voice = voice_of(context)
    await update.effective_message.reply_html(voice.tagged(replies.unknown_command(voice)))


async def on_error(update: object, context: Context) -> None:
    """Log a handler failure and report it, short and escaped, to the admin chats."""
    error = context.error
    where = ""
    if isinstance(update, Update) and update.effective_chat is not None:
        text = update.effective_message.text if update.effective_message else None
        where = f" chat={update.effective_chat.id} text={(text or '')[:60]!r}"
    log.error("handler failed%s", where, exc_info=error)
    voice = voice_of(context)
    failure = f"{type(error).__name__}: {error}"
    notice = esc_clipped(voice.say("notice.handler_failed", where=where, error=failure), 1000)
    notice = voice.tagged(notice)
    for admin in context.bot_data.admins:
        try:
            await context.bot.send_message(admin, notice, parse_mode=ParseMode.HTML)
        except Exception as exc:  # the report itself must not raise into PTB
            log.warning("error report failed chat=%s error=%r", admin, str(exc))
    if isinstance(update, Update) and update.effective_message is not None:
        with contextlib.suppress(Exception):
            await update.effective_message.reply_text(voice.tagged(voice.say("apology")))


def menu(voice: Voice) -> list[BotCommand]:
    """Telegram's command menu (setMyCommands): every command, described in the voice's
    language (command names themselves must be Latin)."""
    return [BotCommand(c.name, replies.summary(voice, c)) for c in REGISTRY]


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
    voice: Voice = PLAIN,
) -> None:
    """Register every command, the unknown-command answer and the error handler on ``app``."""
    app.bot_data.install(service, access, admins, voice)
    for entry in REGISTRY:
        assert entry.callback is not None
        app.add_handler(CommandHandler(entry.name, entry.callback))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.COMMAND, guard(unknown_command, _HELP)))
    app.add_handler(MessageHandler(~filters.COMMAND, any_message))
    app.add_error_handler(on_error)
