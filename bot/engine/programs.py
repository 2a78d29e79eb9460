"""Compiled programs shared by stocks: what a rule set runs, compiled once per distinct part.

A stock runs the rules that apply to it: the house rules (no ``tickers:``), which are the same for
every stock, and the rules that list it. Both are cut into parts of at most ``PART_SIZE`` rules,
in rule-set order, and each distinct part (by its rules' definition keys) is compiled once
(bot.engine.compiler). Every stock runs the house parts; stocks listed by the same rules share
the parts of those too. A stock binds its own state to a part by calling the part's builder: no
compiling. So compiling costs grow with the number of distinct rule sets, not with stocks, and a
new rule set compiles only the parts it does not share with the one before (``reuse``).

Everything is compiled when a ``Programs`` is made, so it can be made in a worker thread while
the engine runs on under the rules before (bot.live_rules); the engine then swaps it in between
two ticks. A part holds the GIL while Python compiles it, for about 0.25 ms per rule: ``PART_SIZE``
bounds each such pause for the event loop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass

from bot.engine.compiler import Compiled, compile_rules
from bot.engine.rule_types import AnyRule, RuleSet

#: Rules per compiled part: a desk's 100 house rules in one part share their series and guards
#: (bot.engine.compiler); compiling a part holds the GIL ~30 ms (benchmarks/README.md).
PART_SIZE = 128


def no_pause() -> None:
    pass


def definition_key(rule: AnyRule) -> str:
    """Equal keys mean equal firing behaviour (message and description do not count)."""
    return json.dumps(rule.definition(), sort_keys=True, default=str)


def digest(keys: Sequence[str]) -> str:
    """The rules key of rules with these definition keys (see ``rules_key``)."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def rules_key(ruleset: RuleSet) -> str:
    """A digest of what the enabled rules fire on: equal keys, equal engine behaviour (a state
    saved under one key fits a rule set of the same key)."""
    return digest([definition_key(rule) for rule in ruleset.enabled])


@dataclass(frozen=True, slots=True, eq=False)
class Part:
    """Some rules compiled into one step function's builder: ``build.bind(fires, states)``."""

    keys: tuple[str, ...]  # the rules' definition keys, in the order the step runs them
    build: Compiled


Parts = tuple[Part, ...]


class Programs:
    """One rule set, compiled: its parts, and which of them each ticker runs. Immutable once
    made, so a worker thread may make the next one while the engine runs this one.

    ``shared=False`` compiles each ticker's rules whole on its first tick, as the engine did
    before sharing: the reference that tests compare sharing against.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        reuse: Programs | None = None,
        shared: bool = True,
        part_size: int = PART_SIZE,
        pause: Callable[[], None] = no_pause,
    ) -> None:
        """``reuse``: the running rule set's, whose parts need no compiling again. ``pause`` is
        called after each part compiled: a worker thread sleeps a moment there, so that the
        event loop's thread gets the GIL and a core (bot.live_rules)."""
        if part_size < 1:
            raise ValueError(f"part_size must be at least 1, not {part_size}")
        self.ruleset = ruleset
        enabled = ruleset.enabled
        keys = [definition_key(rule) for rule in enabled]
        self.rules: dict[str, AnyRule] = dict(zip(keys, enabled, strict=True))
        self.order = {rule.id: n for n, rule in enumerate(enabled)}  # an alert's place in a tick
        self.key = digest(keys)
        self.shared = shared
        self._size = part_size
        self._pause = pause
        self._known: Mapping[tuple[str, ...], Part] = reuse._parts if reuse is not None else {}
        self._ran: Set[str] = reuse.rules.keys() if reuse is not None else set()  # carried over
        self._parts: dict[tuple[str, ...], Part] = {}
        self.compiled = 0  # parts compiled here (not reused from ``reuse``)
        self._house: Parts = ()
        self._listed: dict[str, Parts] = {}  # tickers some rule lists
        self._whole: dict[str, Parts] = {}  # shared=False: compiled on a ticker's first tick
        if shared:
            self._compile_all()
        self._known, self._ran = {}, set()  # what this one does not use may go

    def _compile_all(self) -> None:
        rules = self.rules.items()
        self._house = self._cut([key for key, rule in rules if rule.tickers is None])
        listing: dict[str, list[str]] = {}
        for key, rule in rules:
            for ticker in dict.fromkeys(rule.tickers or ()):
                listing.setdefault(ticker, []).append(key)
        by_set: dict[tuple[str, ...], Parts] = {}
        for ticker, listed in listing.items():
            own = tuple(listed)
            parts = by_set.get(own)
            if parts is None:
                parts = by_set[own] = self._house + self._cut(own)
            self._listed[ticker] = parts

    def _cut(self, keys: Sequence[str]) -> Parts:
        """These rules as parts of at most ``part_size`` rules, each compiled once."""
        size = self._size
        return tuple(self._part(tuple(keys[i : i + size])) for i in range(0, len(keys), size))

    def _part(self, keys: tuple[str, ...]) -> Part:
        part = self._parts.get(keys) or self._known.get(keys)
        if part is None:
            # New rules next to rules that ran: the stocks' states will not agree on what they
            # share, and their first ticks under these rules need the part compiled apart too.
            mixed = not self._ran.isdisjoint(keys) and not self._ran >= set(keys)
            part = Part(keys, compile_rules(self.values(keys), apart=mixed))
            self.compiled += 1
            self._pause()
        self._parts[keys] = part
        return part

    def parts(self, ticker: str) -> Parts:
        """The parts ``ticker`` runs: every rule that applies to it, each once."""
        if self.shared:
            return self._listed.get(ticker, self._house)
        parts = self._whole.get(ticker)
        if parts is None:
            keys = tuple(
                key
                for key, rule in self.rules.items()
                if rule.tickers is None or ticker in rule.tickers
            )
            parts = self._whole[ticker] = (Part(keys, compile_rules(self.values(keys))),)
        return parts

    def values(self, keys: Sequence[str]) -> list[AnyRule]:
        """The rules of these definition keys (this rule set's: with its messages)."""
        return [self.rules[key] for key in keys]

    @property
    def distinct(self) -> int:
        """How many distinct parts the tickers run, compiled here or reused."""
        return len(self._parts)
