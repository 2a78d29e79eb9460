"""The buttons under an alert message, and the callback data they send back.

A press comes from the client, so its data is input like any other: ``n1:ACTION:ALERT`` with
ACTION one of ``s`` (mute this stock for an hour), ``r`` (mute this rule for today), ``c`` (the
chart of this stock), and ALERT the stored alert's id. Anything else is refused. The alert's
rule and stock are looked up in the store, and only among the alerts addressed to the chat the
button was pressed in: forged ids, an alert of another chat, or one pruned since (a stale
message after a restart, days later) find nothing and change nothing.

A message grouping several alerts carries the buttons of its first alert (the one it starts
with); a resolved event's message carries none (there is nothing left to silence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.notify.transport import Button
from bot.notify.voice import Voice

Action = Literal["s", "r", "c"]
MUTE_STOCK: Action = "s"
MUTE_RULE: Action = "r"
CHART: Action = "c"
_VERSION = "n1"  # a layout of older buttons, if ever changed, is then told apart and refused
_DATA = re.compile(r"n1:([src]):([1-9][0-9]{0,17})")
MAX_DATA = 64  # bytes: Telegram's limit for callback data
STOCK_MUTE = "1h"  # what "mute this stock" lasts
RULE_MUTE = "오늘"  # … and "mute this rule": until the end of the trading day


@dataclass(frozen=True, slots=True)
class Press:
    """A checked press: what to do, and about which stored alert."""

    action: Action
    alert_id: int


def data_of(action: Action, alert_id: int) -> str:
    data = f"{_VERSION}:{action}:{alert_id}"
    assert len(data.encode()) <= MAX_DATA
    return data


def parse_press(data: object) -> Press | None:
    """The press ``data`` says, or None for anything that is not exactly what we send."""
    if not isinstance(data, str) or len(data) > MAX_DATA:
        return None
    match = _DATA.fullmatch(data)
    if match is None:
        return None
    action: Action = match.group(1)  # type: ignore[assignment]  # the pattern allows no other
    return Press(action, int(match.group(2)))


def alert_buttons(voice: Voice, alert_id: int) -> tuple[Button, ...]:
    """The row under an alert message: mute the stock 1 h, mute the rule today, the chart."""
    return (
        Button(voice.say("notify.button.mute_stock"), data_of(MUTE_STOCK, alert_id)),
        Button(voice.say("notify.button.mute_rule"), data_of(MUTE_RULE, alert_id)),
        Button(voice.say("notify.button.chart"), data_of(CHART, alert_id)),
    )
