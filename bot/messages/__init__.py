"""What pgmbot says to people, one catalogue per language.

Every text a Telegram user reads comes from here by key: ``say("watch.added", stock=...)``.
``ko`` is the default (``locale: ko``); ``en`` must hold the same keys with the same
placeholders (tests/test_messages.py proves it). Templates are ``str.format`` strings whose
values are already-escaped HTML where the message is HTML: escaping is the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Literal

from bot.messages import en, ko

Locale = Literal["ko", "en"]
CATALOGUES: Mapping[str, Mapping[str, str]] = {"ko": ko.MESSAGES, "en": en.MESSAGES}


class Catalogue:
    """The messages of one language; calling it renders one."""

    __slots__ = ("_messages", "locale")

    def __init__(self, locale: Locale = "ko") -> None:
        self.locale: Locale = locale
        self._messages = CATALOGUES[locale]

    def __call__(self, key: str, /, **values: object) -> str:
        """The message ``key`` with ``values`` filled in; KeyError for an unknown key."""
        return self._messages[key].format(**values)

    def __contains__(self, key: object) -> bool:
        return key in self._messages

    def date(self, day: date, *, year: bool = False) -> str:
        """``06/03(월)``, or ``2024/06/03(월)`` with ``year``: dates in this language's words."""
        weekday = self._messages["time.weekdays"].split(",")[day.weekday()]
        key = "time.date_year" if year else "time.date"
        return self(key, year=day.year, month=day.month, day=day.day, weekday=weekday)


KOREAN = Catalogue("ko")
ENGLISH = Catalogue("en")
