"""Problems: a file that cannot be used says everything that is wrong with it at once, each a
line a person can act on (``file:line:column: what is wrong``), and every command prints them
the same way."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO, TypeVar

T = TypeVar("T")


class ProblemsError(ValueError):
    """Something that cannot be used; ``problems`` are its ``file:line:column: ...`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def report(self, title: str | None = None, stream: TextIO | None = None) -> None:
        """Print the problems, under ``pgmbot: {title}:`` when given, to stderr."""
        out = stream or sys.stderr
        if title is not None:
            print(f"pgmbot: {title}:", file=out)
        print(*self.problems, sep="\n", file=out)


def loaded_or_reported(load: Callable[[], T], title: str) -> T | None:
    """``load()``, or None once its problems are printed under ``title`` (a command then exits
    2: the input is unusable)."""
    try:
        return load()
    except ProblemsError as exc:
        exc.report(title)
        return None
