"""How the bot speaks to people: the language, stock names, dates and times, the session, the
demo's tag. One ``Voice`` is made by the app and shared by every place that builds text a person
reads (command replies, alert messages, admin notices, the console).

Everything here is plain text; the HTML of Telegram messages is ``format.py``'s and
``replies.py``'s job (they escape what comes from here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from bot.clock import utc_now
from bot.market.names import Names
from bot.market.sessions import DEFAULT_SESSIONS, MinuteRange
from bot.messages import KOREAN, Catalogue
from bot.ticks import KST

_CODE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9A-Z]{6}(?![0-9A-Za-z])")


@dataclass(frozen=True, slots=True)
class Voice:
    """The catalogue (``say``), the stock names in use now, and what every message must tell.

    Args:
        say: the messages of the configured locale.
        names: the holder of the current stock directory (swapped when a master file loads).
        demo: the feed is the built-in simulator: every Telegram message says so.
        clock: the wall clock (UTC), to tell today's alerts from older ones.
        sessions: the trading sessions by name, to tag alerts outside the regular one.
    """

    say: Catalogue = KOREAN
    names: Names = field(default_factory=Names)
    demo: bool = False
    clock: Callable[[], datetime] = utc_now
    sessions: Mapping[str, MinuteRange] = field(default_factory=lambda: DEFAULT_SESSIONS)

    # -- stocks ----------------------------------------------------------------------------------

    def label(self, code: str) -> str:
        """``삼성전자(005930)``, or the code alone when its name is not known."""
        return self.names.label(code)

    def labels_in(self, text: str) -> str:
        """``text`` with every stock code the directory knows shown with its name."""
        return _CODE_IN_TEXT.sub(lambda match: self.label(match.group(0)), text)

    # -- dates and times (KST) -------------------------------------------------------------------

    def today(self) -> date:
        """Today in Korea, by the wall clock."""
        return self.clock().astimezone(KST).date()

    def day(self, day: date) -> str:
        """``06/03(월)``; with the year when it is not this year's."""
        return self.say.date(day, year=day.year != self.today().year)

    def moment(
        self, when: datetime, *, dated: bool = False, zone: bool = False, seconds: bool = True
    ) -> str:
        """``09:22:37`` in Korean time, preceded by its date when it is not today (or always,
        with ``dated``), followed by ``KST`` with ``zone`` (once per message)."""
        local = when.astimezone(KST)
        text = local.strftime("%H:%M:%S" if seconds else "%H:%M")
        if dated or local.date() != self.today():
            text = f"{self.day(local.date())} {text}"
        return f"{text} {self.say('time.zone')}" if zone else text

    def ago(self, moment: datetime | None) -> str:
        """``3초 전``: how long ago, by the wall clock."""
        if moment is None:
            return self.say("ago.never")
        seconds = max(0, int((self.clock() - moment).total_seconds()))
        if seconds < 120:
            return self.say("ago.seconds", n=seconds)
        if seconds < 7200:
            return self.say("ago.minutes", n=seconds // 60)
        return self.say("ago.hours", n=seconds // 3600)

    # -- sessions ----------------------------------------------------------------------------

    def session(self, when: datetime) -> str | None:
        """The session a moment falls in (``pre``, ``regular``, ``after``), None outside all."""
        local = when.astimezone(KST)
        second = local.hour * 3600 + local.minute * 60 + local.second
        for name, minutes in self.sessions.items():
            if minutes.holds(second):
                return name
        return None

    def session_tag(self, when: datetime) -> str | None:
        """``[애프터]``, ``[프리]``, ``[장외]``; None in the regular session."""
        name = self.session(when)
        if name == "regular":
            return None
        key = f"session.{name or 'closed'}"
        return self.say(key) if key in self.say else None

    # -- the demo ----------------------------------------------------------------------------

    def demo_tag(self) -> str | None:
        """``[모의 데이터]`` when the feed is the built-in simulator."""
        return self.say("demo.tag") if self.demo else None

    def tagged(self, text: str) -> str:
        """``text`` under the demo's tag line (when it is the demo)."""
        tag = self.demo_tag()
        return f"{tag}\n{text}" if tag else text

    def tag_room(self) -> int:
        """Characters (UTF-16 units) ``tagged`` adds: room to keep free under a length limit."""
        tag = self.demo_tag()
        return 0 if tag is None else len(f"{tag}\n".encode("utf-16-le")) // 2


PLAIN = Voice()
"""Korean, codes only, not the demo: the default where no app-made voice is given."""
