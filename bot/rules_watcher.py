"""Rule files edited while the bot runs: watch, re-validate, swap in or keep the last good rules.

The directory is watched (not the files), so editors that save by writing a temporary file and
renaming it over the original are seen like any other save. A rule file that is a symlink is
looked at now and then as well: its target can change, or vanish, with no event in the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from watchfiles import Change, awatch

from bot.engine.rule_types import RuleSet
from bot.engine.spec import RulesError, load_rules
from bot.market.sessions import MinuteRange

#: What a symlinked rule file leads to: (inode, modification time, size), None when nothing.
Target = tuple[int, int, int] | None

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
        self,
        path: Path,
        on_rules: OnRules,
        on_error: OnError,
        *,
        settle_ms: int = 500,
        recheck_ms: int = 2000,
        sessions: Mapping[str, MinuteRange] | None = None,
        chats: Mapping[str, int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.sessions = sessions  # what rules' `hours` names mean (the config's sessions)
        self.chats = chats  # the names rules' `to` may use (the config's chats)
        self._on_rules = on_rules
        self._on_error = on_error
        self._settle_ms = settle_ms
        self._recheck_ms = recheck_ms  # how often to check the directory is still the same
        # A rules file is watched through its directory; a rules directory itself.
        self._one_file = self.path.is_file() or self.path.suffix == ".yaml"
        self._stop = asyncio.Event()
        self.reloads = 0  # successful reloads, for tests and /status
        self.failures = 0

    def _relevant(self, change: Change, name: str) -> bool:
        path = Path(name)
        if self._one_file:
            return path.name == self.path.name
        # Events name the directory as watched (a symlink stays a symlink): compare resolved
        # (realpath, as resolve() raises on a symlink loop).
        return path.suffix == ".yaml" and os.path.realpath(path.parent) == os.path.realpath(
            self.path
        )

    def _directory(self) -> Path:
        return self.path.parent if self._one_file else self.path

    def _link_targets(self) -> dict[str, Target]:
        """What each rule file that is a symlink leads to now."""
        files = [self.path] if self._one_file else self.path.glob("*.yaml")
        targets: dict[str, Target] = {}
        for file in files:
            if not file.is_symlink():
                continue
            try:
                status = os.stat(file)
            except OSError:  # dangling, or a loop
                targets[file.name] = None
                continue
            targets[file.name] = status.st_ino, status.st_mtime_ns, status.st_size
        return targets

    def _identity(self) -> tuple[int, int] | None:
        """Which directory the path names now (device, inode); None while there is none."""
        try:
            status = os.stat(self._directory())
        except OSError:
            return None
        return status.st_dev, status.st_ino

    async def run(self) -> None:
        """Watch until ``stop()``. A directory that is deleted, or replaced by another (a deploy
        that swaps it, ``git checkout``), is watched anew once it is there, and read then."""
        log.info("rules watcher started path=%s", self.path)
        read_first = False  # the rules were read at start
        while not self._stop.is_set():
            watched = self._identity()
            if watched is None:  # gone: the last good rules keep running meanwhile
                await self._pause(self._recheck_ms)
                continue
            just_read = await self._watch(watched, read_first=read_first)
            read_first = True  # whatever takes its place is read once it is watched
            if self._identity() is None and not just_read and not self._stop.is_set():
                await self.reload()  # tells the admins that it is gone
        log.info("rules watcher stopped")

    async def _watch(self, watched: tuple[int, int], *, read_first: bool) -> bool:
        """Reload on every change until stopped, or until the path names another directory
        (then: whether the rules were just read). ``read_first``: read once watching has begun,
        so that nothing written before is missed."""
        targets = self._link_targets()
        async for changes in awatch(
            self._directory(),
            stop_event=self._stop,
            step=self._settle_ms,  # quiet this long before a reload
            debounce=20 * self._settle_ms,  # however busy the directory, reload by then
            watch_filter=self._relevant,
            recursive=False,
            rust_timeout=self._recheck_ms,
            yield_on_timeout=True,  # wake up now and then to see that it is still the same
        ):
            before, targets = targets, self._link_targets()
            moved = sorted({name for name, _ in before.items() ^ targets.items()})
            just_read = bool(changes) or read_first or bool(moved)
            if changes:
                log.info(
                    "rules changed files=%s", sorted({Path(name).name for _, name in changes})
                )
            elif moved:
                log.info("rules symlink targets changed files=%s", moved)
            if just_read:
                await self.reload()
            read_first = False
            if self._identity() != watched:
                log.warning("rules directory replaced or removed path=%s", self.path)
                return just_read
        return False

    async def _pause(self, milliseconds: int) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), milliseconds / 1000)

    async def reload(self) -> None:
        """Re-read the rules now and report the outcome to the callbacks."""
        try:
            ruleset = await asyncio.to_thread(
                load_rules, self.path, sessions=self.sessions, chats=self.chats
            )
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
