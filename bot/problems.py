"""Problems: a file that cannot be used says everything that is wrong with it at once, each a
line a person can act on (``file:line:column: what is wrong``), and every command prints them
the same way."""

from __future__ import annotations

import sys
from typing import TextIO


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
