"""Alerts on the terminal: a Transport that prints, and a one-line view of an Alert (a resolved
event's line carries ✅ where a fired alert's has none)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from bot.alerts import Alert
from bot.notify.format import RESOLVED_MARK, to_plain
from bot.notify.transport import PLAIN_MESSAGE, Extras
from bot.notify.voice import PLAIN, Voice


class ConsoleTransport:
    """Prints each message as plain text under a ``── chat ID ──`` rule. Never fails.

    A reply is printed like any message (its ✅ header shows what it answers); the console has
    no message ids, so ``send`` returns None."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def alive(self) -> bool:
        return True

    async def send(
        self,
        chat_id: int,
        html: str,
        *,
        reply_to: int | None = None,
        extras: Extras = PLAIN_MESSAGE,
    ) -> None:
        stream = self._stream or sys.stdout  # looked up late: tests and the CLI swap stdout
        stream.write(f"── chat {chat_id} ──\n{to_plain(html)}\n")
        stream.flush()


def alert_line(alert: Alert, voice: Voice = PLAIN) -> str:
    """``09:22:37 KST 삼성전자(005930) samsung-net-buy-10b  프로그램 순매수 100억 돌파``: the
    date when it is not today's, the session when not the regular one (no newlines inside). A
    resolved event's message follows ✅: ``09:25:02 KST 삼성전자(005930) … ✅ 해제 · …``."""
    message = " ".join(alert.message.split())
    if alert.kind == "resolved":
        message = f"{RESOLVED_MARK} {message}"
    when = voice.moment(alert.time, zone=True)
    session = voice.session_tag(alert.time)
    if session:
        when = f"{session} {when}"
    return f"{when} {voice.label(alert.ticker)} {alert.rule}  {message}"


def print_alerts(
    alerts: Sequence[Alert], stream: TextIO | None = None, voice: Voice = PLAIN
) -> None:
    """One line per alert, for the demo and when no Telegram token is configured."""
    out = stream or sys.stdout
    for alert in alerts:
        out.write(alert_line(alert, voice) + "\n")
    out.flush()
