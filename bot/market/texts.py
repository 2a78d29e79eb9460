"""The market's words for people: where the market stands, why a word is no stock, a moment.

Every text comes from the catalogue (``market.*`` keys of bot/messages); these functions only
choose the message and fill it in. Plain text: a caller that sends HTML escapes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.market.calendar import MarketState
from bot.market.names import Found, Listing, Resolution
from bot.market.sessions import MinuteRange
from bot.messages import Catalogue
from bot.ticks import KST


def moment(at: datetime, say: Catalogue) -> str:
    """``12/02(수) 08:00`` (KST)."""
    local = at.astimezone(KST)
    weekday = say("market.weekdays").split()[local.weekday()]
    return say(
        "market.moment",
        date=local.strftime("%m/%d"),
        weekday=weekday,
        time=local.strftime("%H:%M"),
    )


def session_name(session: str, say: Catalogue) -> str:
    """정규장, 프리마켓 …; a session of the config's own is shown by its name."""
    key = f"market.session.{session}"
    try:
        return say(key)
    except KeyError:
        return session


def market_line(state: MarketState, say: Catalogue, *, simulated: bool = False) -> str:
    """``정규장 진행 중`` or ``장 마감 · 다음 개장 12/02(수) 08:00``; for the simulator, what the
    real market is doing, so simulated ticks are never taken for it."""
    if state.session is not None:
        line = say("market.open", session=session_name(state.session, say))
    elif state.next_open is None:
        line = say("market.closed_unknown")
    else:
        line = say("market.closed", next=moment(state.next_open, say))
    return say("market.real", state=line) if simulated else line


def resolution_problem(resolution: Resolution, say: Catalogue) -> str:
    """Why a word of /watch is no stock to watch."""
    word = resolution.text[:40]
    if resolution.found is Found.UNLISTED:
        return say("market.unlisted", code=resolution.code)
    if resolution.found is Found.AMBIGUOUS:
        shown = ", ".join(label(c) for c in resolution.candidates)
        return say("market.ambiguous", word=word, candidates=shown)
    if resolution.found is Found.UNKNOWN:
        return say("market.unknown", word=word)
    return say("market.not_a_code", word=word)


def label(listing: Listing) -> str:
    return f"{listing.name}({listing.code})"


def listing_state(listing: Listing | None, say: Catalogue) -> str | None:
    """``거래정지 · 투자경고`` for a stock under a halt or a warning, None for the others."""
    if listing is None:
        return None
    parts = [say("market.halted")] if listing.halted else []
    if listing.warning:
        parts.append(listing.warning)
    return " · ".join(parts) or None


def session_of(hhmmss: str, sessions: Mapping[str, MinuteRange]) -> str | None:
    """The session a tick time (``STCK_CNTG_HOUR``, KST) falls in, None for none."""
    try:
        seconds = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:6])
    except ValueError:
        return None
    return next((name for name, minutes in sessions.items() if minutes.holds(seconds)), None)


def session_tag(hhmmss: str, sessions: Mapping[str, MinuteRange], say: Catalogue) -> str | None:
    """``[애프터]``, ``[프리]`` for an alert fired outside the regular session; None in it (or
    outside every session: a replayed or simulated tick)."""
    session = session_of(hhmmss, sessions)
    if session is None or session == "regular":
        return None
    try:
        return say(f"market.tag.{session}")
    except KeyError:
        return say("market.tag.other", session=session)
