"""The rule types, registered by name (bot.engine.rule_base, bot/engine/types/), the union that
validates a rule by its ``type``, and RuleSet. Semantics: docs/RULES-SPEC.md; loading files with
positions: bot.engine.spec.

Adding a rule type is one module in bot/engine/types/ and its import below.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from bot.engine.rule_base import (
    FIELD_ALIASES,
    RULE_TYPES,
    KeyProblem,
    RuleBase,
    as_text,
    parse_amount,
    parse_field,
    unit_problem,
)

# The order of registration is the order `type` errors list them in.
from bot.engine.types.threshold import ThresholdRule  # isort: skip
from bot.engine.types.sign_flip import SignFlipRule  # isort: skip
from bot.engine.types.change import ChangeRule  # isort: skip
from bot.engine.types.expr_rule import ExprRule  # isort: skip

__all__ = [
    "FIELD_ALIASES",
    "MODELS",
    "RULE",
    "TYPES",
    "AnyRule",
    "ChangeRule",
    "ExprRule",
    "KeyProblem",
    "RuleSet",
    "SignFlipRule",
    "ThresholdRule",
    "as_text",
    "parse_amount",
    "parse_field",
    "rule_changes",
    "unit_problem",
]

#: Any rule, of whichever type: what the engine, the loader and the templates handle.
AnyRule = RuleBase
MODELS: dict[str, type[RuleBase]] = RULE_TYPES
TYPES = tuple(RULE_TYPES)
_MEMBERS: list[Any] = list(RULE_TYPES.values())
_UNION: Any = reduce(operator.or_, _MEMBERS)
Rule = Annotated[_UNION, Field(discriminator="type")]
RULE: TypeAdapter[RuleBase] = TypeAdapter(Rule)


@dataclass(frozen=True)
class RuleSet:
    """Validated rules, in file then list order."""

    rules: tuple[RuleBase, ...]
    files: tuple[Path, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [rule.id for rule in self.rules]

    @property
    def enabled(self) -> list[RuleBase]:
        return [rule for rule in self.rules if rule.enabled]

    def summary_lines(self) -> list[str]:
        return [rule.summary() for rule in self.rules]


def rule_changes(old: RuleSet, new: RuleSet) -> dict[str, list[str]]:
    """The ids added, removed and changed (in what makes them fire) from ``old`` to ``new``."""
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    return {
        "added": [id_ for id_ in after if id_ not in before],
        "removed": [id_ for id_ in before if id_ not in after],
        "changed": [
            id_
            for id_, rule in after.items()
            if id_ in before and rule.definition() != before[id_].definition()
        ],
    }
