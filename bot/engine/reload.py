"""Rule files edited while the bot runs: watch, re-validate, swap in or keep the last good rules.

The directory is watched (not the files), so editors that save by writing a temporary file and
renaming it over the original are seen like any other save.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from bot.engine.rule_types import RuleSet
from bot.engine.spec import RulesError, load_rules

log = logging.getLogger(__name__)

OnRules = Callable[[RuleSet], Awaitable[None]]
OnError = Callable[[list[str]], Awaitable[None]]


class RulesWatcher:
    """Calls ``on_rules(ruleset)`` after a valid change, ``on_error(problems)`` after a bad one.

    A reload waits until the directory has been quiet for ``settle_ms``: a save made of several
    steps (truncate then write, delete then create, ``git checkout``) is read once, whole, so the
    rules it leaves unchanged keep their state.
    """

    def __init__(
        self, path: Path, on_rules: OnRules, on_error: OnError, *, settle_ms: int = 500
    ) -> None:
        self.path = Path(path)
        self._on_rules = on_rules
        self._on_error = on_error
        self._settle_ms = settle_ms
        self._stop = asyncio.Event()
        self.reloads = 0  # successful reloads, for tests and /status
        self.failures = 0

    def _relevant(self, change: Change, name: str) -> bool:
        path = Path(name)
        if self.path.is_dir() or not self.path.exists():
            # Events name the directory as watched (a symlink stays a symlink): compare resolved.
            return path.suffix == ".yaml" and path.parent.resolve() == self.path.resolve()
        return path.name == self.path.name

    async def run(self) -> None:
        """Watch until ``stop()``."""
        directory = self.path if self.path.is_dir() else self.path.parent
        log.info("rules watcher started path=%s", self.path)
        async for changes in awatch(
            directory,
            stop_event=self._stop,
            step=self._settle_ms,  # quiet this long before a reload
            debounce=20 * self._settle_ms,  # however busy the directory, reload by then
            watch_filter=self._relevant,
            recursive=False,
        ):
            log.info("rules changed files=%s", sorted({Path(name).name for _, name in changes}))
            await self.reload()
        log.info("rules watcher stopped")

    async def reload(self) -> None:
        """Re-read the rules now and report the outcome to the callbacks."""
        try:
            ruleset = await asyncio.to_thread(load_rules, self.path)
        except RulesError as exc:
            self.failures += 1
            await self._on_error(exc.problems)
            return
        except Exception as exc:  # a loader bug must not end hot reload for good
            log.exception("rules reload crashed path=%s", self.path)
            self.failures += 1
            await self._on_error([f"{self.path}: cannot load the rules ({exc!r}); please report"])
            return
        self.reloads += 1
        await self._on_rules(ruleset)

    def stop(self) -> None:
        self._stop.set()
