"""The rules of the running bot: what the engine runs, and what a reload does to it.

``LoadedRules`` is what /rules and /status read; ``RulesController`` is what the rules watcher
calls: a valid change is compiled in a worker thread while the old rules keep running, then
swapped into the engine between two ticks (unchanged rules keep their state); a broken one keeps
the last good rules running and tells the admins, once fixed too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from bot.engine.evaluate import Engine
from bot.engine.rule_types import RuleSet, rule_changes
from bot.notices import AdminNotices

log = logging.getLogger(__name__)


def _breathe() -> None:
    """Between two parts compiled in the worker thread: a millisecond's sleep lets the event
    loop's thread take the GIL (a busy thread would keep it up to a whole time slice of the
    OS's, tens of milliseconds on a busy machine)."""
    time.sleep(0.001)


def _some(ids: list[str], shown: int = 10) -> str:
    """Ids for a log line: a desk's reload may change hundreds of rules."""
    more = f",+{len(ids) - shown}" if len(ids) > shown else ""
    return ",".join(ids[:shown]) + more


@dataclass
class LoadedRules:
    """The rules the engine runs and the last reload error: what /rules and /status show."""

    ruleset: RuleSet
    last_error: str | None = None

    def summary_lines(self) -> list[str]:
        return self.ruleset.summary_lines()

    @property
    def ids(self) -> set[str]:
        return set(self.ruleset.ids)


class RulesController:
    """Applies reloads to the engine; the watcher's ``on_rules`` and ``on_error``."""

    def __init__(self, rules: LoadedRules, engine: Engine, notices: AdminNotices) -> None:
        self.rules = rules
        self.engine = engine
        self.notices = notices

    async def on_rules(self, ruleset: RuleSet) -> None:
        """Compile ``ruleset`` off the loop (the engine runs the old rules meanwhile), then swap
        it in: one quick step between two ticks, however many rules and stocks."""
        start = time.perf_counter()
        changes = await asyncio.to_thread(rule_changes, self.rules.ruleset, ruleset)
        programs = await asyncio.to_thread(self.engine.prepare, ruleset, _breathe)
        self.engine.swap(programs)
        self.rules.ruleset, self.rules.last_error = ruleset, None
        took = (time.perf_counter() - start) * 1000
        log.info("rules compiled parts=%d took_ms=%.0f", programs.compiled, took)
        log.info(
            "rules reloaded count=%d %s",
            len(ruleset.rules),
            " ".join(f"{kind}={_some(ids)}" for kind, ids in changes.items() if ids),
        )
        if self.notices.clear("rules"):  # the admins were told of the errors
            self.notices.say("notice.rules_fixed", count=len(ruleset.rules))

    async def on_error(self, problems: list[str]) -> None:
        self.rules.last_error = "\n".join(problems)
        log.error("rules reload failed, keeping the last good rules problems=%r", problems)
        self.notices.clear("rules")  # every new mistake is worth telling
        self.notices.say("notice.rules_failed", kind="rules", problems=self.rules.last_error)
