"""Telegram HTML: alert messages, packing them under the 4096-character limit, plain text.

Every text that comes from a user or a rule goes through ``esc``. Command replies, built from the
same pieces, live in ``replies.py``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.notify.voice import PLAIN, Voice
from bot.ticks import KST

#: Telegram's limit on a message's text. Lengths here are counted in UTF-16 code units of the HTML
#: source, which bounds what Telegram counts (the text after parsing: tags gone, entities shorter).
MAX_MESSAGE = 4096
#: Room kept for one alert's text, so a long template never crowds a whole message.
MAX_ALERT_TEXT = 1500
ELLIPSIS = "…"

_TAG = re.compile(r"<[^<>]*>")


def esc(text: object) -> str:
    """Text made safe for Telegram's HTML parse mode."""
    return html.escape(str(text), quote=False)


def length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def esc_clipped(text: str, budget: int) -> str:
    """``esc(text)``, cut with an ellipsis so that the result is at most ``budget`` units long."""
    escaped = esc(text)
    if length(escaped) <= budget:
        return escaped
    out: list[str] = []
    used = length(ELLIPSIS)
    for char in text:
        piece = esc(char)
        used += length(piece)
        if used > budget:
            break
        out.append(piece)
    return "".join(out) + ELLIPSIS


def hhmmss(when: datetime) -> str:
    """``09:22:37`` in Korean time."""
    return when.astimezone(KST).strftime("%H:%M:%S")


def alert_block(
    rule: str,
    ticker: str,
    when: datetime,
    message: str,
    *,
    voice: Voice = PLAIN,
    zone: bool = True,
    dated: bool = False,
) -> str:
    """One alert: a header line, then the rule's message.

    The header names the stock (``삼성전자(005930)`` when the directory knows it), its session
    when not the regular one (``[애프터]``), the tick time in Korean time with its date when not
    today's (always with ``dated``) and ``KST`` with ``zone`` (once per message), the rule id.
    """
    moment = voice.moment(when, dated=dated, zone=zone)
    session = voice.session_tag(when)
    header = voice.say(
        "alert.header",
        stock=esc(voice.label(ticker)),
        when=esc(f"{session} {moment}" if session else moment),
        rule=esc(rule),
    )
    return f"{header}\n{esc_clipped(message, MAX_ALERT_TEXT)}"


class Fired(Protocol):
    """What an alert message shows of an alert (Alert, StoredAlert, PendingDelivery)."""

    @property
    def rule(self) -> str: ...
    @property
    def ticker(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def message(self) -> str: ...


def alert_blocks(alerts: Sequence[Fired], voice: Voice = PLAIN) -> list[str]:
    """The blocks of one alert message: the first one says the times are KST."""
    return [
        alert_block(a.rule, a.ticker, a.time, a.message, voice=voice, zone=i == 0)
        for i, a in enumerate(alerts)
    ]


def alert_message(alerts: Sequence[Fired], voice: Voice = PLAIN) -> tuple[int, str]:
    """How many of ``alerts`` go into the next message (at least one), and its HTML: under the
    4096 limit, under the demo's tag when it is the demo."""
    blocks = alert_blocks(alerts, voice)
    count = pack(blocks, MAX_MESSAGE - voice.tag_room())[0]
    return count, voice.tagged(join(blocks[:count]))


def pack(blocks: Sequence[str], limit: int = MAX_MESSAGE, sep: str = "\n\n") -> list[int]:
    """How many blocks go into each message, in order, joined by ``sep`` within ``limit``.

    Messages break only between blocks. A block longer than ``limit`` on its own still gets a
    message of its own (callers keep blocks short: see ``alert_block``).
    """
    counts: list[int] = []
    size = count = 0
    for block in blocks:
        grown = size + length(sep) + length(block) if count else length(block)
        if count and grown > limit:
            counts.append(count)
            size, count = length(block), 1
        else:
            size, count = grown, count + 1
    if count:
        counts.append(count)
    return counts


def join(blocks: Sequence[str], sep: str = "\n\n") -> str:
    return sep.join(blocks)


def to_plain(text: str) -> str:
    """The text of an HTML message as a reader sees it (for the console)."""
    return html.unescape(_TAG.sub("", text))
