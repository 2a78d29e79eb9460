"""Rule files: loading a rules directory (every ``*.yaml``) into a RuleSet, with every problem
of every file as ``file:line:column: what is wrong``, in words a trader understands.

Every file holds ``rules:``, a list of rules (see docs/RULES.md and the contract,
docs/RULES-SPEC.md); the rule types themselves are in bot.engine.rule_types.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot import yamlpos
from bot.engine.rule_types import MODELS, RULE, TYPES, AnyRule, KeyProblem, RuleSet, as_text
from bot.engine.templates import (
    RESOLVED_EXTRAS,
    TemplateError,
    check_placeholders,
    check_template,
)
from bot.market.sessions import DEFAULT_SESSIONS, MinuteRange
from bot.problems import ProblemsError


class RulesError(ProblemsError):
    """Rule files that cannot be used."""


_TYPE_LIST = ", ".join(TYPES[:-1]) + " or " + TYPES[-1]
_RULE_WORDS = {
    "union_tag_not_found": f"every rule needs a type: {_TYPE_LIST}",
    "union_tag_invalid": f"unknown rule type: use {_TYPE_LIST}",
    "model_type": "a rule is a set of keys (id: …, type: …, field: …), one per line",
    "model_attributes_type": "a rule is a set of keys (id: …, type: …, field: …), one per line",
}


def _messages(
    error: ValidationError, doc: yamlpos.Document, prefix: tuple[Any, ...], text: str | None
) -> list[str]:
    """``file:line:column: rule 'id': key: what is wrong`` for each error of one rule."""
    raw = doc.data
    for part in prefix:
        raw = raw[part]
    name = _rule_name(raw)
    lines = []
    for item in error.errors(include_url=False):
        kind = item["type"]
        loc = {"union_tag_not_found": (), "union_tag_invalid": ("type",)}.get(kind, item["loc"])
        if loc and loc[0] in TYPES:  # pydantic names the union member first
            loc = loc[1:]
        cause = (item.get("ctx") or {}).get("error")
        key = cause.key if isinstance(cause, KeyProblem) else None
        if key is not None:
            loc = (*loc, key)
        path = yamlpos.document_path(doc, (*prefix, *loc))
        where = "" if key else ".".join(str(p) for p in path[len(prefix) :])  # else: in words
        at_value = isinstance(cause, KeyProblem) and cause.at_value
        by_key = kind == "extra_forbidden" or (key is not None and not at_value)
        at = doc.key_position(path) if by_key else doc.position(path)
        offset = getattr(cause, "offset", None)
        if offset is not None and text is not None:
            at = inside_value(at, text, offset)
        lines.append(
            f"{at}: {name}: {where + ': ' if where else ''}{yamlpos.wording(item, _RULE_WORDS)}"
        )
    return lines


def inside_value(at: yamlpos.Position, text: str, offset: int) -> yamlpos.Position:
    """The position of character ``offset`` of a text value written at ``at``: on its line
    when the value is a plain or quoted scalar that holds it there (``when: "X > 1억"``), the
    line of a ``|`` block's content, else ``at`` itself."""
    lines = text.splitlines()
    if not 0 < at.line <= len(lines):
        return at
    line = lines[at.line - 1]
    start = at.column - 1
    lead = line[start : start + 1]
    if lead in ("'", '"'):
        start += 1
    elif lead == "|":  # a literal block: the value's lines follow, each as written
        block = lines[at.line :]
        indent = len(block[0]) - len(block[0].lstrip()) if block else 0
        before = [len(part) + 1 for part in block]
        row = 0
        while row < len(block) - 1 and offset >= before[row] - indent:
            offset -= before[row] - indent
            row += 1
        return yamlpos.Position(at.file, at.line + 1 + row, indent + offset + 1)
    if start + offset >= len(line):  # folded over lines: the start of the value will do
        return at
    return yamlpos.Position(at.file, at.line, start + offset + 1)


def overlooked_files(path: Path | str) -> list[Path]:
    """Files of a rules directory that look like rules but are not read (``*.yml``)."""
    path = Path(path)
    if not path.is_dir():
        return []
    return sorted(
        p for p in path.iterdir() if p.suffix.lower() in (".yml", ".yaml") and p.suffix != ".yaml"
    )


def _rule_files(path: Path) -> list[Path]:
    """The files to read: a broken symlink is one of them (reading it says what is wrong), so
    that a deploy whose link target vanished is refused, not read as a file with no rules."""
    if path.is_dir():
        return sorted(p for p in path.glob("*.yaml") if p.is_file() or broken_link(p))
    return [path]


def broken_link(path: Path) -> bool:
    """A symlink that leads nowhere: to nothing, or round in a loop."""
    return path.is_symlink() and not path.exists()


def _real(path: Path) -> Path:
    """Where a path leads (``Path.resolve`` raises on a symlink loop; this does not)."""
    return Path(os.path.realpath(path))


def _unreadable(path: Path, exc: OSError) -> str:
    """Why a rules path cannot be read, in words: a symlink loop or a dangling symlink is said
    as one."""
    if exc.errno == errno.ELOOP:
        return f"{path}: a symlink loop (the link leads back to itself)"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"{path}: a symlink to {os.readlink(path)}, which is not there"
    return f"{path}: cannot read: {exc.strerror}"


def read_yaml(file: Path) -> tuple[yamlpos.Document, str]:
    """A YAML file (a rule file, a rule test file) and its text; RulesError says what is wrong,
    where."""
    try:
        raw = file.read_bytes()
        text = raw.decode("utf-8")
        return yamlpos.load(text, str(file)), text
    except OSError as exc:
        raise RulesError([_unreadable(file, exc)]) from None
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1  # of the line; what precedes is valid
        line = raw.count(b"\n", 0, exc.start) + 1
        where = f"{line}:{len(raw[start : exc.start].decode()) + 1}"
        raise RulesError([f"{file}:{where}: not UTF-8 text (save the file as UTF-8)"]) from None
    except yamlpos.YamlError as exc:
        raise RulesError([str(exc)]) from None


def _file_rules(
    file: Path,
    problems: list[str],
    sessions: Mapping[str, MinuteRange] | None,
    chats: Mapping[str, int] | None = None,
) -> list[Located]:
    """Parse one file; return each valid rule with where it is, noting problems."""
    try:
        doc, text = read_yaml(file)
    except RulesError as exc:
        problems.extend(exc.problems)
        return []
    if doc.data is None:
        if text.strip():
            return []  # comments only: no rules
        # Most likely a save caught half-way; a file meant to hold no rules says so.
        problems.append(f"{file}: the file is empty (write 'rules: []' for a file with no rules)")
        return []
    if not isinstance(doc.data, dict) or set(doc.data) != {"rules"}:
        extra = [key for key in doc.data if key != "rules"] if isinstance(doc.data, dict) else []
        at = doc.key_position((extra[0],)) if extra else doc.position(())
        problems.append(f"{at}: a rule file holds one key, 'rules', a list of rules")
        return []
    return document_rules(doc, problems, sessions, text, chats)


Located = tuple[Any | None, yamlpos.Document, int]


def document_rules(
    doc: yamlpos.Document,
    problems: list[str],
    sessions: Mapping[str, MinuteRange] | None = None,
    text: str | None = None,
    chats: Mapping[str, int] | None = None,
) -> list[Located]:
    """Validate the ``rules`` list of a loaded document (a rule file or a rule test file).

    ``sessions`` are what ``hours`` names mean (default: bot.market.sessions.DEFAULT_SESSIONS;
    a config's ``market.sessions`` may redefine them); ``text``, the document's text, lets an
    error inside an expression point at its part. A rule with errors comes back as
    ``(None, doc, index)``: its id still counts for duplicates.
    """
    # ``chats``: the config's chat names, which ``to`` may use (None: not checked, no config).
    context = {"sessions": sessions if sessions is not None else DEFAULT_SESSIONS, "chats": chats}
    items = doc.data.get("rules") if isinstance(doc.data, dict) else None
    if not isinstance(items, list):
        problems.append(f"{doc.position(('rules',))}: 'rules' must be a list of rules")
        return []
    found: list[Located] = []
    for index, raw in enumerate(items):
        try:
            rule = RULE.validate_python(raw, context=context)
        except ValidationError as exc:
            problems.extend(_messages(exc, doc, ("rules", index), text))
            problems.extend(_shape_problems(raw, exc, doc, index))
            problems.extend(_template_problems(raw, doc, index, None))
            found.append((None, doc, index))
            continue
        template = _template_problems(raw, doc, index, rule)
        problems.extend(template)
        found.append((None if template else rule, doc, index))
    return found


def _shape_problems(
    raw: Any, error: ValidationError, doc: yamlpos.Document, index: int
) -> list[str]:
    """Which keys a rule has, checked even when a value is wrong (pydantic checks the whole rule
    only once every value is right): one run names both mistakes."""
    model = _model_of(raw)
    checked = any(
        isinstance((e.get("ctx") or {}).get("error"), KeyProblem) for e in error.errors()
    )
    problem = model.shape_problem(raw) if model is not None and not checked else None
    if problem is None:
        return []
    path: tuple[str | int, ...] = ("rules", index, *([problem.key] if problem.key else []))
    at = doc.key_position(path) if problem.key else doc.position(path)
    return [f"{at}: {_rule_name(raw)}: {problem}"]


def _model_of(raw: Any) -> type[AnyRule] | None:
    """The model a raw rule names with its ``type``, if any."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    return MODELS.get(kind) if isinstance(kind, str) else None


def _rule_name(raw: Any) -> str:
    """How problems name a rule: by its id, when it has one."""
    return f"rule {raw['id']!r}" if isinstance(raw, dict) and "id" in raw else "rule"


def _template_problems(
    raw: Any, doc: yamlpos.Document, index: int, rule: AnyRule | None
) -> list[str]:
    """The messages' problems (``message``, ``resolve_message``). For a rule with other errors,
    only placeholders that no rule of its type has (what else it may use depends on what is
    wrong)."""
    found = []
    for key in ("message", "resolve_message"):
        message = raw.get(key) if isinstance(raw, dict) else None
        model = _model_of(raw)
        if not isinstance(message, str) or (rule is None and model is None):
            continue
        try:
            if rule is not None:
                check_template(rule, message if key == "resolve_message" else None)
            else:
                assert model is not None
                allowed = model.type_placeholders()
                allowed += RESOLVED_EXTRAS if key == "resolve_message" else ()
                check_placeholders(message, allowed, raw["type"])
        except TemplateError as exc:
            at = doc.position(("rules", index, key))
            found.append(f"{at}: {_rule_name(raw)}: {key}: {exc}")
    return found


def _raw_id(doc: yamlpos.Document, index: int) -> str | None:
    raw = doc.data["rules"][index]
    value = raw.get("id") if isinstance(raw, dict) else None
    return as_text(value) if isinstance(value, str | int) else None  # type: ignore[return-value]


def build_ruleset(located: Iterable[Located], files: Iterable[Path] = ()) -> RuleSet:
    """A RuleSet from validated rules; duplicate ids are errors. Raises RulesError."""
    problems: list[str] = []
    rules: list[Any] = []
    first_seen: dict[str, str] = {}
    for rule, doc, index in located:
        id_ = rule.id if rule is not None else _raw_id(doc, index)
        if id_ is None:
            continue
        where = doc.position(("rules", index, "id"))
        if id_ in first_seen:
            problems.append(
                f"{where}: rule {id_!r}: duplicate id (first defined at {first_seen[id_]})"
            )
            continue
        first_seen[id_] = str(where)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RulesError(problems)
    return RuleSet(tuple(rules), tuple(files))


_POSITION = re.compile(r"(.*?):(\d+):(\d+): ")


def _by_position(problem: str) -> tuple[str, int, int]:
    """Sort key: file, line, column (a problem without a position first in its file)."""
    match = _POSITION.match(problem)
    if match is None:
        return problem.partition(": ")[0], 0, 0
    return match.group(1), int(match.group(2)), int(match.group(3))


def _missing(path: Path) -> str:
    """Why a rules path given is not there."""
    if broken_link(path):
        try:
            os.stat(path)
        except OSError as exc:
            return _unreadable(path, exc)
    return f"{_real(path)}: no such rules file or directory"


def load_rules(
    *paths: Path | str,
    sessions: Mapping[str, MinuteRange] | None = None,
    chats: Mapping[str, int] | None = None,
) -> RuleSet:
    """Load every ``*.yaml`` of each directory (or each file) as one rule set: ids are unique
    across all of them. ``sessions``: what the names in ``hours`` mean (default: the
    defaults of bot.market.sessions). RulesError lists every problem."""
    missing = [_missing(Path(path)) for path in paths if not Path(path).exists()]
    if missing:
        raise RulesError(missing)
    once: dict[Path, Path] = {}  # a file named twice (a directory and a file in it) counts once
    for file in (file for path in paths for file in _rule_files(Path(path))):
        once.setdefault(_real(file), file)
    chosen = list(once.values())
    problems: list[str] = []
    located = [item for file in chosen for item in _file_rules(file, problems, sessions, chats)]
    try:
        ruleset = build_ruleset(located, chosen)
    except RulesError as exc:
        problems.extend(exc.problems)
    if problems:
        raise RulesError(sorted(problems, key=_by_position))
    return ruleset
