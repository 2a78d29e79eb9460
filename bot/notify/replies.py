"""Command replies as Telegram HTML, built from what the service returns.

Pure functions: data in, HTML out; every user- or rule-provided text goes through ``esc``.
Functions returning ``list[str]`` give lines or blocks that ``commands.answer`` may split between
messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.codes import as_stock_code
from bot.kis.status import ConnectionStatus, SubState, SubStatus
from bot.market.texts import label, listing_state
from bot.messages import KOREAN
from bot.notify.format import alert_block, esc, esc_clipped
from bot.service import FindResult, StatusReport, WatchedStock, WatchResult
from bot.store.chats import Mute
from bot.store.outbox import StoredAlert
from bot.ticks import KST


class CommandInfo(Protocol):
    @property
    def usage(self) -> str: ...
    @property
    def summary(self) -> str: ...


def refusal(chat_id: int) -> str:
    return (
        "⛔ This bot is private.\n"
        f"Your chat id is <code>{chat_id}</code>: ask its owner to add it to "
        "<code>telegram.allowed_chat_ids</code>."
    )


def bad_arguments(problem: str, usage: str) -> str:
    return f"⚠️ {esc(problem)}\nUsage: <code>{esc(usage)}</code>"


def unknown_command() -> str:
    return "Unknown command. /help lists what I can do."


def help_text(commands: Sequence[CommandInfo]) -> list[str]:
    lines = [
        "<b>pgmbot</b> watches KIS real-time program trading (프로그램 매매) and alerts you "
        "when your rules fire.",
        "",
    ]
    lines += [f"<code>{esc(c.usage)}</code> — {esc(c.summary)}" for c in commands]
    lines += [
        "",
        "CODE is a 6-character stock code such as <code>005930</code>. "
        "DURATION is like <code>30m</code>, <code>2h</code>, <code>1d</code>, <code>1h30m</code>. "
        "Rules live in the bot's <code>rules/</code> folder.",
    ]
    return lines


# -- subscriptions -------------------------------------------------------------------------------

_STATE_LABEL = {
    SubState.LIVE: "🟢 live",
    SubState.PENDING: "⏳ subscribing",
    SubState.REJECTED: "❌ refused by KIS",
    SubState.NO_CAPACITY: "🚫 no free subscription slot",
    SubState.NOT_WANTED: "⚪ not subscribed",
    SubState.FAILED: "⚠️ no answer from KIS (tried again at the next connection)",
}


def sub_line(status: SubStatus) -> str:
    """``005930 🟢 live (main)``, with KIS's reason when it refused."""
    label = _STATE_LABEL.get(status.state) or esc(status.state)
    parts = [f"<code>{esc(status.ticker)}</code> {label}"]
    if status.account and status.state is SubState.LIVE:
        parts.append(f"({esc(status.account)})")
    if status.msg and status.state is not SubState.LIVE:
        code = f" [{esc(status.msg_cd)}]" if status.msg_cd else ""
        parts.append(f"— {esc(status.msg)}{code}")
    return " ".join(parts)


def watched(results: Sequence[WatchResult]) -> list[str]:
    lines = []
    for result in results:
        if result.error:
            lines.append(f"❌ {esc(result.error)}")
        elif result.kept and not result.added:
            lines.append(sub_line(result.status) + " (already watched)")
        else:
            lines.append(sub_line(result.status))
    kept = sum(r.kept for r in results)
    lines.append(f"👀 {kept} of them in this chat's list; /list shows all.")
    return lines


def unwatched(asked: Sequence[str], removed: Sequence[str]) -> list[str]:
    lines = []
    if removed:
        lines.append("Stopped watching " + ", ".join(f"<code>{esc(t)}</code>" for t in removed))
    gone = set(removed)
    missing = [t for t in asked if t not in gone and as_stock_code(t) not in gone]
    if missing:
        lines.append("Not watched here: " + ", ".join(f"<code>{esc(t)}</code>" for t in missing))
    return lines


def watch_list(stocks: Sequence[WatchedStock]) -> list[str]:
    if not stocks:
        return ["This chat watches nothing yet. Try <code>/watch 005930</code>."]
    return [f"👀 Watched here ({len(stocks)}):", *(_listed_line(s) for s in stocks)]


def _listed_line(stock: WatchedStock) -> str:
    """The subscription line, and ``⚠️ 거래정지 · 투자경고`` for a troubled stock."""
    state = listing_state(stock.listing, KOREAN)
    return sub_line(stock.status) + (f" ⚠️ {esc(state)}" if state else "")


def found(result: FindResult) -> list[str]:
    """/find: one line per stock, ``삼성전자(005930) KOSPI``."""
    say = KOREAN
    if not result.names_known:
        return [esc(say("market.find.no_names"))]
    if not result.listings:
        return [esc(say("market.find.none", text=result.text))]
    lines = [esc(say("market.find.header", text=result.text, count=len(result.listings)))]
    for listing in result.listings:
        state = listing_state(listing, say)
        extra = f" ⚠️ {esc(state)}" if state else ""
        lines.append(f"<code>{esc(label(listing))}</code> {esc(listing.market)}{extra}")
    return lines


# -- alerts, rules, mutes ------------------------------------------------------------------------


def recent_alerts(alerts: Sequence[StoredAlert], code: str | None) -> list[str]:
    scope = f" for <code>{esc(code)}</code>" if code else ""
    if not alerts:
        return [f"No alerts{scope} yet."]
    blocks = [f"Last {len(alerts)} alert(s){scope}, newest last:"]
    blocks += [alert_block(a.rule, a.ticker, a.time, a.message) for a in alerts]
    return blocks


def rule_list(lines: Sequence[str], last_error: str | None) -> list[str]:
    out = [f"📜 {len(lines)} rule(s) loaded:" if lines else "No rules loaded."]
    out += [f"• {esc(line)}" for line in lines]
    if last_error:
        out.append(f"⚠️ Last reload failed:\n<pre>{esc_clipped(last_error, 1500)}</pre>")
    return out


def when(moment: datetime) -> str:
    """``15:30 KST``, with the date when it is not today (in Korea)."""
    local = moment.astimezone(KST)
    today = datetime.now(KST).date()
    return local.strftime("%H:%M KST" if local.date() == today else "%Y-%m-%d %H:%M KST")


def muted(mute: Mute) -> list[str]:
    what = "Rule" if mute.kind == "rule" else "Stock"
    return [f"🔕 {what} <code>{esc(mute.target)}</code> muted here until {when(mute.until)}."]


def unmuted(target: str | None, ended: int) -> list[str]:
    if target is None:
        return [f"🔔 {ended} mute(s) ended." if ended else "No mutes to end."]
    if not ended:
        return [f"<code>{esc(target)}</code> was not muted."]
    return [f"🔔 <code>{esc(target)}</code> unmuted."]


# -- status --------------------------------------------------------------------------------------


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int((datetime.now(moment.tzinfo) - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def connection_line(conn: ConnectionStatus) -> str:
    mark = "🟢" if conn.connected else "🔴"
    line = f"{mark} <b>{esc(conn.account)}</b> {conn.subscribed}/{conn.limit} subscribed"
    if conn.last_error:
        line += f" — {esc_clipped(conn.last_error, 200)}"
    return line


def status(report: StatusReport) -> list[str]:
    feed = report.feed
    lines = ["<b>pgmbot status</b>"]
    if report.market:
        lines.append(f"🕘 {esc(report.market)}")
    lines += [connection_line(c) for c in feed.connections] or ["🔴 no feed connection"]
    lines += [
        f"Subscriptions: {feed.used}/{feed.capacity} (wanted: {report.wanted})",
        f"Ticks: {feed.ticks:,} (last {ago(feed.last_tick_at)})",
        f"Malformed frames skipped: {feed.bad_frames:,}",
        f"Rules loaded: {report.rules_loaded}"
        + (" — ⚠️ last reload failed, see /rules" if report.rules_error else ""),
        f"Alerts waiting for delivery: {report.pending:,}",
    ]
    if report.blocked_chats:
        lines.append(f"Chats that blocked the bot: {report.blocked_chats}")
    if report.failed:
        lines.append(f"⚠️ Alerts given up on: {report.failed:,}")
    if report.last_failure is not None:
        failure = report.last_failure
        lines.append(
            f"Last: <code>{esc(failure.rule)}</code> {esc(failure.ticker)} to chat "
            f"{failure.chat_id} after {failure.attempts} attempt(s) — "
            f"{esc_clipped(failure.error or '?', 200)}"
        )
    return lines
