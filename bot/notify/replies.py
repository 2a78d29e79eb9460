"""Command replies as Telegram HTML, built from what the service returns.

Pure functions: data in, HTML out; every user- or rule-provided text goes through ``esc``.
Functions returning ``list[str]`` give lines or blocks that ``commands.answer`` may split between
messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.notify.format import esc


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
        "DURATION is like <code>30m</code>, <code>2h</code>, <code>1h30m</code>. "
        "Rules live in the bot's <code>rules/</code> folder.",
    ]
    return lines
