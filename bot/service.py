"""The operations behind the chat commands, for any transport (Telegram, tests).

Each method parses and checks its arguments (CommandError with a message a user can act on),
changes the store and the feed's wanted set, and returns plain values, never HTML. The transport
formats. Every method is a coroutine and reaches the database through the ``AsyncStore``, so no
command makes the event loop wait for it.

/watch keeps only what can work: a code KIS refuses, or that finds no free subscription slot, is
not kept in the chat's list (the result says so: ``kept`` is False); a code still pending when the
wait ends is kept and subscribes when it can. The config's ``watch`` codes are always wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from bot.clock import utc_now
from bot.codes import stock_code
from bot.durations import (
    MAX_SECONDS,
    DurationTooLong,
    DurationUnitOrder,
    is_today,
    parse_duration,
)
from bot.kis.status import FeedStats, SubState, SubStatus
from bot.market.calendar import MarketCalendar, MarketState
from bot.market.names import Directory, Found, Listing, Resolution
from bot.market.texts import label
from bot.notify.quiet import QuietHours, quiet_hours
from bot.store.chats import Mute
from bot.store.facade import AsyncStore
from bot.store.outbox import Failure, StoredAlert
from bot.ticks import KST

if TYPE_CHECKING:
    from bot.charts.service import ChartService

log = logging.getLogger(__name__)

MAX_ALERTS = 50  # most alerts one /alerts shows
MAX_CODES = 50  # most codes one /watch or /unwatch takes
MAX_MUTE = timedelta(days=30)  # a longer silence is an /unwatch
_SHOWN = 40  # characters of a user's word quoted back in an error


class CommandError(Exception):
    """A user's mistake in a command's arguments: a message key of the catalogue (bot/messages)
    and its values, which say what to do instead. ``str()`` is the key, for the logs."""

    def __init__(self, key: str, /, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def shown(word: str) -> str:
    """A user's word as quoted back: repr'd and clipped, whatever its length."""
    return repr(word if len(word) <= _SHOWN else word[: _SHOWN - 1] + "…")


class FeedControl(Protocol):
    """What the service needs of the feed (``bot.kis.feed.Feed`` provides it)."""

    def set_wanted(self, tickers: Collection[str]) -> None: ...
    def status(self, ticker: str) -> SubStatus: ...
    async def wait_settled(
        self,
        tickers: Collection[str],
        timeout: float,  # noqa: ASYNC109 (the feed's API: a bound, not a cancellation)
    ) -> dict[str, SubStatus]: ...
    def stats(self) -> FeedStats: ...


class RulesView(Protocol):
    """The loaded rules, as /rules and /mute see them."""

    def summary_lines(self) -> list[str]: ...
    @property
    def ids(self) -> Collection[str]: ...
    @property
    def last_error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class WatchResult:
    """One code of a /watch: its subscription state, and what happened to the chat's list."""

    ticker: str  # normalized, or as typed when invalid
    status: SubStatus  # an invalid code: NOT_WANTED, with the reason in ``msg``
    added: bool  # newly added to this chat's list (False: already there, invalid or not kept)
    kept: bool  # in this chat's list after the command
    error: CommandError | None = None  # why the code is invalid
    listing: Listing | None = None  # the stock's name and state, when a master file is loaded
    candidates: tuple[Listing, ...] = ()  # a name that fits several stocks: them


@dataclass(frozen=True, slots=True)
class WatchedStock:
    """One stock of /list: its subscription and, when known, its listing (name, halt, warning)."""

    status: SubStatus
    listing: Listing | None = None

    @property
    def ticker(self) -> str:
        return self.status.ticker

    @property
    def state(self) -> SubState:
        return self.status.state


@dataclass(frozen=True, slots=True)
class FindResult:
    """What /find found: up to ``limit`` listings; ``names_known`` False when no master file
    is loaded (nothing can be found by name)."""

    text: str
    listings: list[Listing]
    names_known: bool


@dataclass(frozen=True, slots=True)
class StatusReport:
    feed: FeedStats
    pending: int  # deliveries waiting to be sent
    rules_loaded: int
    rules_error: str | None  # the last reload's problems, None when it succeeded
    wanted: int  # tickers the feed is asked to subscribe
    blocked_chats: int
    failed: int = 0  # deliveries given up on
    last_failure: Failure | None = None
    market: MarketState | None = None  # where the market stands (None: no calendar given)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """/settings: what decides which alerts reach this chat, and how."""

    quiet: QuietHours | None
    mutes: list[Mute]
    watches: list[str]
    rules: list[tuple[str, bool]]  # (rule id, routed here by its `to`), those the chat receives


@dataclass(frozen=True, slots=True)
class Pressed:
    """What a button press did: the alert's stock, and the mute it made (None: the chart)."""

    ticker: str
    mute: Mute | None


def mute_length(text: str) -> timedelta:
    """How long a /mute lasts: the rules' duration grammar (``30m``, ``2h``, ``1d``, ``1h30m``,
    ``2시간``), but a bare number needs a unit here (minutes? hours?). CommandError saying why."""
    cleaned = text.strip().lower()
    if cleaned.isdigit() and len(cleaned) <= 9:
        raise CommandError("error.unit", word=shown(text), n=cleaned)
    try:
        seconds = parse_duration(cleaned)
    except DurationTooLong:
        seconds = MAX_SECONDS
    except DurationUnitOrder:
        raise CommandError("error.duration_order", word=shown(text)) from None
    except ValueError:
        raise CommandError("notify.duration", word=shown(text)) from None
    if seconds <= 0:
        raise CommandError("error.duration_zero")
    if seconds > MAX_MUTE.total_seconds():
        raise CommandError("error.duration_max", days=MAX_MUTE.days)
    return timedelta(seconds=seconds)


def trading_day_end(calendar: MarketCalendar, moment: datetime) -> datetime:
    """The end of ``moment``'s trading day (KST): the last session's end on a day that trades,
    while it is not over; else the next midnight (a mute "for today" on a closed evening or a
    holiday ends with the calendar day, never takes the next trading day too)."""
    local = moment.astimezone(KST)
    day = local.date()
    if calendar.is_trading_day(day) and calendar.sessions:
        last = max(minutes.end_seconds for minutes in calendar.sessions.values())
        end = datetime.combine(day, datetime.min.time(), tzinfo=KST) + timedelta(seconds=last)
        if end > local:
            return end
    return datetime.combine(day, datetime.min.time(), tzinfo=KST) + timedelta(days=1)


def parse_code(code: str) -> str:
    """A 6-character stock code, upper-cased. CommandError saying why not."""
    try:
        return stock_code(code)
    except ValueError:
        raise CommandError("error.not_code", word=shown(code)) from None


class BotService:
    """The bot's commands. Chat methods refuse (PermissionError) chats not allowed."""

    def __init__(
        self,
        store: AsyncStore,
        feed: FeedControl,
        rules: RulesView,
        *,
        allowed_chat_ids: Collection[int],
        admin_chat_ids: Collection[int] = (),
        static_watch: Collection[str] = (),
        settle_timeout: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
        directory: Callable[[], Directory] = Directory,
        market: Callable[[datetime], MarketState] | None = None,
        calendar: MarketCalendar | None = None,
        routes: Callable[[], Mapping[str, frozenset[int]]] | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.rules_view = rules
        self.allowed_chat_ids = frozenset(allowed_chat_ids) | frozenset(admin_chat_ids)
        self.admin_chat_ids = frozenset(admin_chat_ids)
        self.static_watch = frozenset(stock_code(t) for t in static_watch)
        self.settle_timeout = settle_timeout
        self._clock = clock
        self.charts: ChartService | None = None  # /chart, /now, /top (bot.charts), when on
        # /reload: re-read the rule files now (the app's rules watcher), when there is one.
        self.reload: Callable[[], Awaitable[None]] | None = None
        # The current directory: the bot swaps in a new one when a fresh master file loads.
        self.directory = directory
        self.market = market
        self.calendar = calendar  # "오늘" ends with its trading day (None: the default sessions)
        self.routes = routes or dict  # rule id -> the chats its `to` names (bot/notify/routing)
        self.wanted_count = 0  # stocks the feed was last asked for (the dead-man watch asks)

    async def wanted(self) -> set[str]:
        """What the feed should subscribe: every allowed chat's watches and the config's."""
        return await self.store.all_watched() | self.static_watch

    async def refresh_feed(self, asked: Sequence[str] = ()) -> None:
        """Tell the feed what is wanted; codes just asked for come last, in the order asked,
        so when slots run short they go to the codes the user named first."""
        wanted = await self.wanted()
        self.wanted_count = len(wanted)
        first = sorted(wanted.difference(asked))
        self.feed.set_wanted([*first, *(code for code in asked if code in wanted)])

    async def watch(self, chat_id: int, codes: Sequence[str]) -> list[WatchResult]:
        """Watch stocks, by code or name, in this chat; one result per distinct stock, in the
        order given."""
        await self._chat(chat_id)
        asked = _distinct(codes)
        directory = self.directory()
        resolved = {word: directory.resolve(word) for word in asked}
        invalid = {
            word: no_stock(r)
            for word, r in resolved.items()
            if r.code is None or r.found is Found.UNLISTED
        }
        valid_codes = list(
            dict.fromkeys(r.code for r in resolved.values() if r.code and r.found is Found.STOCK)
        )
        added = set(await self.store.add_watches(chat_id, valid_codes))
        statuses: dict[str, SubStatus] = {}
        if valid_codes:
            await self.refresh_feed(valid_codes)
            statuses = await self.feed.wait_settled(valid_codes, self.settle_timeout)
        dropped = [
            code
            for code in valid_codes
            if code in added and _unusable(statuses.get(code) or self.feed.status(code))
        ]
        if dropped:
            await self.store.remove_watches(chat_id, dropped)
            await self.refresh_feed()
        results: list[WatchResult] = []
        for word in asked:
            resolution = resolved[word]
            if word in invalid:
                status = SubStatus(word[:_SHOWN], SubState.NOT_WANTED)
                results.append(
                    WatchResult(
                        word[:_SHOWN],
                        status,
                        False,
                        False,
                        invalid[word],
                        candidates=resolution.candidates,
                    )
                )
                continue
            ticker = resolution.code
            assert ticker is not None
            if any(r.ticker == ticker for r in results):
                continue  # a name and its code are one stock
            status = statuses.get(ticker) or self.feed.status(ticker)
            listing = directory.get(ticker)
            if ticker in dropped:
                result = WatchResult(ticker, status, False, False)
            else:
                result = WatchResult(ticker, status, ticker in added, True)
            results.append(replace(result, listing=listing))
        log.info(
            "watch chat=%s added=%s dropped=%s invalid=%d",
            chat_id,
            ",".join(sorted(added - set(dropped))) or "-",
            ",".join(dropped) or "-",
            len(invalid),
        )
        return results

    def code_of(self, word: str) -> str | None:
        """The stock a word of /unwatch names (None: none, or several)."""
        return self.directory().resolve(word).code

    async def find(self, chat_id: int, text: str, limit: int = 20) -> FindResult:
        """/find: listed stocks whose name (or code) holds ``text``."""
        await self._chat(chat_id)
        words = text.strip()
        if not words:
            raise CommandError("market.find.empty")
        directory = self.directory()
        return FindResult(words[:_SHOWN], directory.search(words, limit), directory.loaded)

    async def unwatch(self, chat_id: int, codes: Sequence[str]) -> list[str]:
        """Stop watching codes in this chat; return the codes removed (normalized). A code the
        chat did not watch, or not a code at all, is simply not in the answer."""
        await self._chat(chat_id)
        directory = self.directory()
        watched = await self.store.watches(chat_id)
        tickers = []
        for word in _distinct(codes):
            ticker = _unwatch_code(directory.resolve(word, limit=len(watched) + 1), watched)
            if ticker is not None:
                tickers.append(ticker)
        removed = await self.store.remove_watches(chat_id, tickers)
        if removed:
            await self.refresh_feed()
        return removed

    async def watch_list(self, chat_id: int) -> list[WatchedStock]:
        """This chat's codes, sorted, with the feed's state and the listing of each."""
        await self._chat(chat_id)
        directory = self.directory()
        return [
            WatchedStock(self.feed.status(ticker), directory.get(ticker))
            for ticker in await self.store.watches(chat_id)
        ]

    async def alerts(
        self, chat_id: int, ticker: str | None = None, n: int = 10
    ) -> list[StoredAlert]:
        """The last ``n`` alerts addressed to this chat (of one code if given), oldest first,
        each with the time of its resolved event (``resolved_at``, None if not resolved)."""
        await self._chat(chat_id)
        if not 1 <= n <= MAX_ALERTS:
            raise CommandError("error.count_range", most=MAX_ALERTS)
        code = stock_of(self.directory(), ticker) if ticker is not None else None
        return await self.store.recent_alerts(ticker=code, limit=n, chat_id=chat_id)

    async def rules(self, chat_id: int) -> tuple[list[str], str | None]:
        """One summary line per loaded rule, and the last reload error (None if it worked)."""
        await self._chat(chat_id)
        return self.rules_view.summary_lines(), self.rules_view.last_error

    async def reload_rules(self, chat_id: int) -> tuple[list[str], str | None]:
        """/reload (admins): re-read the rule files now, without waiting for the watcher to see
        an edit; then what /rules shows (an edit refused keeps the last good rules)."""
        await self._chat(chat_id)
        if self.reload is None:
            raise CommandError("notify.reload_off")
        await self.reload()
        return await self.rules(chat_id)

    async def mute(self, chat_id: int, target: str, duration: str) -> Mute:
        """Silence a rule id or a code in this chat for ``duration`` (30m, 2h, 1d, 1h30m,
        30분, 2시간, or 오늘: until the end of the trading day).

        A word that is both a rule id and a code means the rule.
        """
        await self._chat(chat_id)
        kind, resolved = self._target(target)
        return await self.mute_until(chat_id, kind, resolved, duration)

    async def mute_until(self, chat_id: int, kind: str, target: str, duration: str) -> Mute:
        """Mute an already resolved target (``kind`` "rule" or "ticker") for ``duration``."""
        await self._chat(chat_id)
        now = self._clock()
        if is_today(duration):
            until = trading_day_end(self.calendar or _default_calendar(), now)
        else:
            until = now + mute_length(duration)
        return await self.store.mute(chat_id, target, until, kind=kind, now=now)

    async def press(self, chat_id: int, action: str, alert_id: int) -> Pressed | None:
        """A button under an alert message (bot/notify/buttons.py): mute its stock for an hour
        (``s``), its rule for today (``r``), or name its stock for a chart (``c``). None, and
        nothing changed, when that alert was never addressed to this chat (forged or stale)."""
        await self._chat(chat_id)
        found = await self.store.alert_in_chat(chat_id, alert_id)
        if found is None:
            log.info("button refused, no such alert here chat=%s alert=%s", chat_id, alert_id)
            return None
        rule, ticker = found
        if action == "s":
            return Pressed(ticker, await self.mute_until(chat_id, "ticker", ticker, "1h"))
        if action == "r":
            return Pressed(ticker, await self.mute_until(chat_id, "rule", rule, "오늘"))
        return Pressed(ticker, None)

    async def quiet(self, chat_id: int, setting: str | None = None) -> QuietHours | None:
        """/quiet: set this chat's quiet hours (``22:00-07:00``, KST, may cross midnight), turn
        them ``off``, or (no argument) tell them. Returns the hours in force after it."""
        await self._chat(chat_id)
        if setting is None:
            return quiet_hours(await self.store.quiet(chat_id))
        if setting.strip().lower() in ("off", "끄기", "해제"):
            await self.store.set_quiet(chat_id, None)
            return None
        try:
            hours = QuietHours.parse(setting)
        except ValueError:
            raise CommandError("notify.quiet.bad", word=shown(setting)) from None
        await self.store.set_quiet(chat_id, str(hours))
        return hours

    async def settings(self, chat_id: int) -> ChatSettings:
        """/settings: quiet hours, mutes, watches, and the rules this chat receives: those
        routed to it, and (when it watches a stock) those without ``to``."""
        await self._chat(chat_id)
        watches = await self.store.watches(chat_id)
        routes = self.routes()
        received = [
            (rule, rule in routes)
            for rule in sorted(self.rules_view.ids)
            if (chat_id in routes[rule] if rule in routes else bool(watches))
        ]
        return ChatSettings(
            quiet_hours(await self.store.quiet(chat_id)),
            await self.store.mutes(chat_id, self._clock()),
            watches,
            received,
        )

    async def unmute(self, chat_id: int, target: str | None = None) -> int:
        """End this chat's mute of a rule or code, or all of them; return how many ended."""
        await self._chat(chat_id)
        now = self._clock()
        if target is None:
            return await self.store.unmute(chat_id, None, now=now)
        ended = await self.store.unmute(chat_id, target.strip(), now=now)
        with_code = self.code_of(target)  # a code written otherwise, or the stock's name
        if with_code is not None and with_code != target.strip():
            ended += await self.store.unmute(chat_id, with_code, now=now)
        return ended

    async def mutes(self, chat_id: int) -> list[Mute]:
        await self._chat(chat_id)
        return await self.store.mutes(chat_id, self._clock())

    async def status(self, chat_id: int) -> StatusReport:
        """Feed health, rules and the delivery backlog."""
        await self._chat(chat_id)
        failed = await self.store.failed_count()
        failures = await self.store.failures(1) if failed else []
        return StatusReport(
            feed=self.feed.stats(),
            pending=await self.store.pending_count(),
            rules_loaded=len(self.rules_view.summary_lines()),
            rules_error=self.rules_view.last_error,
            wanted=len(await self.wanted()),
            blocked_chats=len(await self.store.blocked_chats()),
            failed=failed,
            last_failure=failures[0] if failures else None,
            market=self.market(self._clock()) if self.market is not None else None,
        )

    async def move_chat(self, old: int, new: int) -> bool:
        """A group became a supergroup: an allowed one takes its watches and mutes along and
        stays allowed under its new id. False for a chat that was not allowed."""
        if old not in self.allowed_chat_ids:
            return False
        await self.store.move_chat(old, new)
        self.allowed_chat_ids = self.allowed_chat_ids | {new}
        if old in self.admin_chat_ids:
            self.admin_chat_ids = self.admin_chat_ids | {new}
        return True

    async def heard_from(self, chat_id: int) -> None:
        """Any message from an allowed chat: it has not blocked the bot (any more)."""
        if chat_id in self.allowed_chat_ids:
            await self.store.unblock(chat_id)

    # -- helpers -----------------------------------------------------------------------------

    async def _chat(self, chat_id: int) -> None:
        """Refuse strangers (the command guard already did; this is the second lock)."""
        if chat_id not in self.allowed_chat_ids:
            raise PermissionError(f"chat {chat_id} is not allowed")

    def _target(self, target: str) -> tuple[str, str]:
        """``("rule", id)`` or ``("ticker", code)`` (a code or a name, as /watch takes them);
        CommandError for anything else."""
        word = target.strip()
        if word in set(self.rules_view.ids):
            return "rule", word
        resolution = self.directory().resolve(word)
        if resolution.code is not None:
            return "ticker", resolution.code
        if resolution.found is Found.AMBIGUOUS:
            raise no_stock(resolution)
        raise CommandError("error.not_target", word=shown(target))


def stock_of(directory: Directory, word: str) -> str:
    """The code a word names: a code, or a listed name as /watch takes it. A code no master file
    lists still counts (its past alerts, a mute of it); CommandError saying why otherwise."""
    resolution = directory.resolve(word)
    if resolution.code is None:
        raise no_stock(resolution)
    return resolution.code


def no_stock(resolution: Resolution) -> CommandError:
    """Why a word is no stock (to watch: an unlisted code is one too)."""
    word = shown(resolution.text)
    if resolution.found is Found.UNLISTED:
        return CommandError("market.unlisted", code=resolution.code)
    if resolution.found is Found.AMBIGUOUS:
        candidates = ", ".join(label(c) for c in resolution.candidates)
        return CommandError("market.ambiguous", word=word, candidates=candidates)
    if resolution.found is Found.UNKNOWN:
        return CommandError("market.unknown", word=word)
    try:
        parse_code(resolution.text)
    except CommandError as exc:
        return exc
    return CommandError("market.not_a_code", word=word)


_CALENDAR: list[MarketCalendar] = []


def _default_calendar() -> MarketCalendar:
    """The default sessions and KRX holidays, made once (the holidays tables take a moment)."""
    if not _CALENDAR:
        _CALENDAR.append(MarketCalendar())
    return _CALENDAR[0]


def _unwatch_code(resolution: Resolution, watched: Collection[str]) -> str | None:
    """The code a word of /unwatch means: as /watch resolves it, but a code no longer listed
    may still go, and a name that fits several stocks means the one this chat watches."""
    if resolution.found is Found.UNLISTED:
        return resolution.code
    if resolution.found is Found.AMBIGUOUS:
        mine = [c.code for c in resolution.candidates if c.code in watched]
        return mine[0] if len(mine) == 1 else None
    return resolution.code


def _unusable(status: SubStatus) -> bool:
    return status.state in (SubState.REJECTED, SubState.NO_CAPACITY)


def _distinct(codes: Iterable[str]) -> list[str]:
    """The codes, stripped, without repeats, at most MAX_CODES (CommandError beyond)."""
    distinct = list(dict.fromkeys(c.strip() for c in codes if c.strip()))
    if not distinct:
        raise CommandError("error.no_codes")
    if len(distinct) > MAX_CODES:
        raise CommandError("error.too_many_codes", most=MAX_CODES)
    return distinct
