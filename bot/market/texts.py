"""The market's words for people: where the market stands, a stock's label and state.

Every text comes from the catalogue (``market.*`` keys of bot/messages); these functions only
choose the message and fill it in. Plain text: a caller that sends HTML escapes it.
"""

from __future__ import annotations

from datetime import datetime

from bot.market.calendar import MarketState
from bot.market.names import Listing
from bot.messages import Catalogue
from bot.ticks import KST


def moment(at: datetime, say: Catalogue) -> str:
    """``12/02(수) 08:00`` (KST), in the catalogue's words for dates (``time.*``)."""
    local = at.astimezone(KST)
    return f"{say.date(local.date())} {local:%H:%M}"


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
