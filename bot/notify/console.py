"""Alerts on the terminal: a Transport that prints, and a one-line view of an Alert (a resolved
event's line carries ✅ where a fired alert's has none)."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.alerts import Alert
from bot.notify.format import RESOLVED_MARK, hhmmss, to_plain


class ConsoleTransport:
    """Prints each message as plain text under a ``── chat ID ──`` rule. Never fails.

    A reply is printed like any message (its ✅ header shows what it answers); the console has
    no message ids, so ``send`` returns None."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def alive(self) -> bool:
        return True

    async def send(self, chat_id: int, html: str, *, reply_to: int | None = None) -> None:
        stream = self._stream or sys.stdout  # looked up late: tests and the CLI swap stdout
        stream.write(f"── chat {chat_id} ──\n{to_plain(html)}\n")
        stream.flush()


def alert_line(alert: Alert) -> str:
    """``09:22:37 005930 samsung-net-buy-10b  프로그램 순매수 100억 돌파`` (no newlines inside);
    a resolved event: ``09:25:02 005930 samsung-net-buy-10b  ✅ 해제 · …``."""
    message = " ".join(alert.message.split())
    mark = f"{RESOLVED_MARK} " if alert.kind == "resolved" else ""
    return f"{hhmmss(alert.time)} {alert.ticker} {alert.rule}  {mark}{message}"


def print_alerts(alerts: list[Alert], stream: TextIO | None = None) -> None:
    """One line per alert, for the demo and when no Telegram token is configured."""
    out = stream or sys.stdout
    for alert in alerts:
        out.write(alert_line(alert) + "\n")
    out.flush()
