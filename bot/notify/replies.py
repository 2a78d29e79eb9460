"""Command replies as Telegram HTML, built from what the service returns.

Pure functions: a ``Voice`` (the catalogue, the stock names, the clock) and data in, HTML out;
every word comes from the catalogue (bot/messages), every user- or rule-provided text goes through
``esc``. Functions returning ``list[str]`` give lines or blocks that ``commands.answer`` may split
between messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Protocol

from bot.codes import as_stock_code
from bot.kis.status import ConnectionStatus, SubState, SubStatus
from bot.market.texts import label, listing_state, market_line
from bot.notify.format import alert_block, esc, esc_clipped, hhmmss
from bot.notify.voice import Voice
from bot.service import (
    ChatSettings,
    CommandError,
    FindResult,
    StatusReport,
    WatchedStock,
    WatchResult,
)
from bot.store.chats import Mute
from bot.store.outbox import StoredAlert
from bot.ticks import KST


class CommandInfo(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def args_key(self) -> str: ...  # the catalogue's key of its usage line's arguments
    @property
    def summary_key(self) -> str: ...  # … and of its one-line summary


def usage(voice: Voice, command: CommandInfo) -> str:
    """``/watch 종목 [종목…]``: a command and its arguments, in the voice's language."""
    return f"/{command.name} {voice.say(command.args_key)}".rstrip()


def summary(voice: Voice, command: CommandInfo) -> str:
    """One line for /help and Telegram's command menu."""
    return voice.say(command.summary_key)


def problem(voice: Voice, error: CommandError) -> str:
    """A CommandError in words (plain text)."""
    if error.key in voice.say:
        return voice.say(error.key, **error.values)
    return error.key  # a text of its own, not a key


def refusal(voice: Voice, chat_id: int) -> str:
    return voice.say("refusal", chat_id=chat_id)


def bad_arguments(voice: Voice, error: CommandError, usage_line: str) -> str:
    return voice.say("bad_arguments", problem=esc(problem(voice, error)), usage=esc(usage_line))


def unknown_command(voice: Voice) -> str:
    return voice.say("unknown_command")


def help_text(voice: Voice, commands: Sequence[CommandInfo]) -> list[str]:
    lines = [voice.say("help.intro"), ""]
    lines += [
        voice.say("help.command", usage=esc(usage(voice, c)), summary=esc(summary(voice, c)))
        for c in commands
    ]
    lines += ["", voice.say("help.notes")]
    return lines


# -- subscriptions -------------------------------------------------------------------------------

_STATE_KEY = {
    SubState.LIVE: "sub.live",
    SubState.PENDING: "sub.pending",
    SubState.REJECTED: "sub.rejected",
    SubState.NO_CAPACITY: "sub.no_capacity",
    SubState.NOT_WANTED: "sub.not_wanted",
    SubState.FAILED: "sub.failed",
}


def stock(voice: Voice, code: str) -> str:
    """A stock as a person reads it, in HTML: ``<code>삼성전자(005930)</code>``."""
    return f"<code>{esc(voice.label(code))}</code>"


def sub_line(voice: Voice, status: SubStatus, note: str | None = None) -> str:
    """``삼성전자(005930) 🟢 실시간 구독 중 (main)``, with KIS's reason when it refused."""
    key = _STATE_KEY.get(status.state)
    label = voice.say(key) if key else esc(status.state)
    parts = [f"{stock(voice, status.ticker)} {label}"]
    if status.account and status.state is SubState.LIVE:
        parts.append(f"({esc(status.account)})")
    reasons = []
    if status.msg and status.state in (SubState.REJECTED, SubState.FAILED):  # KIS's own words
        code = f" [{esc(status.msg_cd)}]" if status.msg_cd else ""
        reasons.append(f"{esc(status.msg)}{code}")
    if note:
        reasons.append(note)
    if reasons:
        parts.append("— " + "; ".join(reasons))
    return " ".join(parts)


def watched(voice: Voice, results: Sequence[WatchResult]) -> list[str]:
    lines = []
    for result in results:
        if result.error is not None:
            lines.append(voice.say("watch.error", problem=esc(problem(voice, result.error))))
        elif result.kept and not result.added:
            lines.append(voice.say("watch.already", line=sub_line(voice, result.status)))
        elif not result.kept:
            lines.append(sub_line(voice, result.status, voice.say("watch.not_kept")))
        else:
            lines.append(sub_line(voice, result.status))
    kept = sum(r.kept for r in results)
    lines.append(voice.say("watch.count", kept=kept))
    return lines


def unwatched(voice: Voice, asked: Sequence[str], removed: Sequence[str]) -> list[str]:
    lines = []
    if removed:
        stocks = ", ".join(stock(voice, t) for t in removed)
        lines.append(voice.say("unwatch.removed", stocks=stocks))
    gone = set(removed)
    missing = [t for t in asked if t not in gone and as_stock_code(t) not in gone]
    if missing:
        stocks = ", ".join(stock(voice, t) for t in missing)
        lines.append(voice.say("unwatch.missing", stocks=stocks))
    return lines


def watch_list(voice: Voice, stocks: Sequence[WatchedStock]) -> list[str]:
    if not stocks:
        return [voice.say("list.empty")]
    header = voice.say("list.header", count=len(stocks))
    return [header, *(_listed_line(voice, s) for s in stocks)]


def _listed_line(voice: Voice, stock: WatchedStock) -> str:
    """The subscription line, and ``⚠️ 거래정지 · 투자경고`` for a troubled stock."""
    state = listing_state(stock.listing, voice.say)
    return sub_line(voice, stock.status) + (f" ⚠️ {esc(state)}" if state else "")


def found(voice: Voice, result: FindResult) -> list[str]:
    """/find: one line per stock, ``삼성전자(005930) KOSPI``."""
    say = voice.say
    if not result.names_known:
        return [esc(say("market.find.no_names"))]
    if not result.listings:
        return [say("market.find.none", text=esc(result.text))]
    lines = [say("market.find.header", text=esc(result.text), count=len(result.listings))]
    for listing in result.listings:
        state = listing_state(listing, say)
        extra = f" ⚠️ {esc(state)}" if state else ""
        lines.append(f"<code>{esc(label(listing))}</code> {esc(listing.market)}{extra}")
    return lines


# -- alerts, rules, mutes ------------------------------------------------------------------------


def recent_alerts(voice: Voice, alerts: Sequence[StoredAlert], code: str | None) -> list[str]:
    """The last alerts, each with its date and time (the header says KST once)."""
    shown = esc(voice.label(code)) if code else ""
    if not alerts:
        return [voice.say("alerts.none_for", stock=shown) if code else voice.say("alerts.none")]
    count = len(alerts)
    header = (
        voice.say("alerts.header_for", stock=shown, count=count)
        if code
        else voice.say("alerts.header", count=count)
    )
    blocks = [header]
    blocks += [
        alert_block(a.rule, a.ticker, a.time, a.message, voice=voice, zone=False, dated=True)
        + resolved_line(voice, a)
        for a in alerts
    ]
    return blocks


def resolved_line(voice: Voice, alert: StoredAlert) -> str:
    """``\n✅ 09:25:02 해제`` under an alert that was resolved (its date too if another day's),
    else nothing."""
    if alert.resolved_at is None:
        return ""
    at = alert.resolved_at
    same_day = at.astimezone(KST).date() == alert.time.astimezone(KST).date()
    when = hhmmss(at) if same_day else voice.moment(at, dated=True)
    return "\n" + voice.say("resolved.at", when=esc(when))


def rule_list(voice: Voice, lines: Sequence[str], last_error: str | None) -> list[str]:
    out = [voice.say("rules.header", count=len(lines)) if lines else voice.say("rules.none")]
    out += [voice.say("rules.line", line=esc(voice.labels_in(line))) for line in lines]
    if last_error:
        out.append(voice.say("rules.error", error=esc_clipped(last_error, 1500)))
    return out


def muted(voice: Voice, mute: Mute) -> list[str]:
    until = esc(voice.moment(mute.until, zone=True, seconds=False))
    if mute.kind == "rule":
        return [voice.say("mute.rule", rule=esc(mute.target), until=until)]
    return [voice.say("mute.stock", stock=esc(voice.label(mute.target)), until=until)]


def mute_list(voice: Voice, mutes: Sequence[Mute]) -> list[str]:
    """/mutes: each active mute, what it covers and when it ends (KST), soonest first."""
    if not mutes:
        return [voice.say("notify.mutes.none")]
    return [
        voice.say("notify.mutes.header", count=len(mutes)),
        *map(partial(mute_line, voice), mutes),
    ]


def mute_line(voice: Voice, mute: Mute) -> str:
    until = esc(voice.moment(mute.until, zone=True, seconds=False))
    if mute.kind == "rule":
        return voice.say("notify.mutes.rule", rule=esc(mute.target), until=until)
    return voice.say("notify.mutes.stock", stock=esc(voice.label(mute.target)), until=until)


def chat_settings(voice: Voice, settings: ChatSettings) -> list[str]:
    """/settings: the chat's language, quiet hours, mutes, watches and the rules it receives
    (a rule routed to it by ``to`` marked →)."""
    none = voice.say("notify.settings.none")
    language = f"{voice.say('notify.settings.language')} ({voice.say.locale})"
    quiet = esc(str(settings.quiet)) + " KST" if settings.quiet is not None else none
    mutes = ", ".join(_mute_words(voice, m) for m in settings.mutes) or none
    watches = ", ".join(esc(voice.label(code)) for code in settings.watches) or none
    rules = ", ".join(
        f"<code>{esc(r)}</code>{' →' if routed else ''}" for r, routed in settings.rules
    )
    return [
        voice.say("notify.settings.header"),
        voice.say("notify.settings.locale", locale=language),
        voice.say("notify.settings.quiet", quiet=quiet),
        voice.say("notify.settings.mutes", mutes=mutes),
        voice.say("notify.settings.watches", watches=watches),
        voice.say("notify.settings.rules", rules=rules or none),
    ]


def _mute_words(voice: Voice, mute: Mute) -> str:
    until = esc(voice.moment(mute.until, zone=True, seconds=False))
    target = esc(mute.target if mute.kind == "rule" else voice.label(mute.target))
    return f"{target} ~{until}"


def unmuted(voice: Voice, target: str | None, ended: int) -> list[str]:
    if target is None:
        return [voice.say("unmute.all", count=ended) if ended else voice.say("unmute.nothing")]
    code = as_stock_code(target)
    shown = esc(voice.label(code) if code is not None else target)
    if not ended:
        return [voice.say("unmute.not_muted", target=shown)]
    return [voice.say("unmute.done", target=shown)]


# -- status --------------------------------------------------------------------------------------


def connection_line(voice: Voice, conn: ConnectionStatus) -> str:
    line = voice.say(
        "status.connection",
        mark="🟢" if conn.connected else "🔴",
        account=esc(conn.account),
        subscribed=conn.subscribed,
        limit=conn.limit,
    )
    if conn.last_error:
        line = voice.say(
            "status.connection_error", line=line, error=esc_clipped(conn.last_error, 200)
        )
    return line


def status(voice: Voice, report: StatusReport) -> list[str]:
    feed = report.feed
    say = voice.say
    lines = [say("status.title")]
    if voice.demo:
        lines.append(say("status.demo"))
    if report.market is not None:
        lines.append(f"🕘 {esc(market_line(report.market, say, simulated=voice.demo))}")
    lines += [connection_line(voice, c) for c in feed.connections] or [say("status.no_connection")]
    rules_key = "status.rules_failed" if report.rules_error else "status.rules"
    lines += [
        say("status.subscriptions", used=feed.used, capacity=feed.capacity, wanted=report.wanted),
        say("status.ticks", ticks=f"{feed.ticks:,}", ago=esc(voice.ago(feed.last_tick_at))),
        say("status.bad_frames", count=f"{feed.bad_frames:,}"),
        say(rules_key, count=report.rules_loaded),
        say("status.pending", count=f"{report.pending:,}"),
    ]
    if report.blocked_chats:
        lines.append(say("status.blocked", count=report.blocked_chats))
    if report.failed:
        lines.append(say("status.failed", count=f"{report.failed:,}"))
    if report.last_failure is not None:
        failure = report.last_failure
        lines.append(
            say(
                "status.last_failure",
                rule=esc(failure.rule),
                stock=esc(voice.label(failure.ticker)),
                chat_id=failure.chat_id,
                attempts=failure.attempts,
                error=esc_clipped(failure.error or "?", 200),
            )
        )
    return lines
