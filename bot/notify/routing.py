"""Where each rule's alerts go, and which go without sound, from the loaded rules.

A rule's ``to`` names chats by id or by a name of the config's ``chats``; the outbox makes the
decision with these routes, in one place (``Outbox._deliveries_for``): a routed rule goes to
its chats (those allowed that did not block the bot or mute it), whether or not they watch the
stock; a rule without ``to`` goes to every allowed chat watching the stock, as always.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

log = logging.getLogger(__name__)

Routes = Mapping[str, frozenset[int]]  # rule id -> its chats (a rule not in it: the watchers)


class RoutedRule(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def to(self) -> tuple[int | str, ...] | None: ...
    @property
    def notify(self) -> str: ...


def rule_routes(
    rules: Iterable[RoutedRule], chats: Mapping[str, int]
) -> dict[str, frozenset[int]]:
    """Rule id -> the chat ids its ``to`` names (names looked up in ``chats``; one the config
    does not define, possible only where the rules were loaded without the config, is left out
    and logged)."""
    routes: dict[str, frozenset[int]] = {}
    for rule in rules:
        if not rule.to:
            continue
        ids: set[int] = set()
        for chat in rule.to:
            if isinstance(chat, int):
                ids.add(chat)
            elif chat in chats:
                ids.add(chats[chat])
            else:
                log.warning("rule names an unknown chat, left out rule=%s chat=%s", rule.id, chat)
        routes[rule.id] = frozenset(ids)
    return routes


def silent_rules(rules: Iterable[RoutedRule]) -> frozenset[str]:
    """The ids of the rules with ``notify: silent``."""
    return frozenset(rule.id for rule in rules if rule.notify == "silent")


class Routing:
    """Routes and silent rules of the rules loaded now (``current()``), worked out again only
    when the rules were replaced (a reload)."""

    def __init__(
        self, current: Callable[[], Iterable[RoutedRule]], chats: Mapping[str, int]
    ) -> None:
        self._current = current
        self._chats = dict(chats)
        self._seen: object = None
        self._routes: Routes = {}
        self._silent: frozenset[str] = frozenset()

    def _refresh(self) -> None:
        rules = self._current()
        if rules is not self._seen:
            listed = list(rules)
            self._routes, self._silent = rule_routes(listed, self._chats), silent_rules(listed)
            self._seen = rules

    def routes(self) -> Routes:
        self._refresh()
        return self._routes

    def silent(self) -> frozenset[str]:
        self._refresh()
        return self._silent

    def describe(self, rule_id: str, names: Mapping[str, int] | None = None) -> str | None:
        """Where a rule goes, for /rules and /settings: its chats' names or ids; None: every
        watching chat."""
        chats = self.routes().get(rule_id)
        if chats is None:
            return None
        by_id = {chat_id: name for name, chat_id in (names or self._chats).items()}
        return ", ".join(by_id.get(chat, str(chat)) for chat in sorted(chats)) or "-"
