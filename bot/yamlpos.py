"""YAML loading that remembers where every value came from, without PyYAML's surprises.

Used for config.yaml and rule files. Plain scalars follow the YAML 1.2 core schema, narrowed to
what a trader would mean: ``NO``/``yes``/``on`` stay strings (only ``true``/``false`` are
booleans), ``12:30`` stays a string (no base-60), and a number with a leading zero (``005930``)
stays a string, so tickers survive unquoted. Duplicate keys are errors. Every value's position is
kept, so a validation error can name ``file:line:column``.

What a hostile or mistaken file could use to exhaust memory or the stack is refused while the file
is parsed, before anything is built: anchors and aliases (an "alias bomb" of a few hundred bytes
expands to gigabytes), and nesting deeper than ``MAX_DEPTH``. So is a lone surrogate
(``"\\ud800"``), which is no text at all: nothing downstream (a database, Telegram) could store it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

Path_ = tuple[str | int, ...]

_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|(0|[1-9][0-9_]*)(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NULL = {"", "~", "null", "Null", "NULL"}
_RESOLVABLE = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
_STANDARD_TAG = "tag:yaml.org,2002:"
_PYTHON_TAG = "tag:yaml.org,2002:python"
#: How deep lists and mappings may nest: a rule test file needs 5 levels; Python's stack ends
#: somewhere past a few hundred.
MAX_DEPTH = 64
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


@dataclass(frozen=True)
class Position:
    """1-based line and column in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class YamlError(ValueError):
    """A YAML file that cannot be read; ``str()`` starts with ``file:line:column``."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(f"{position}: {message}")
        self.position = position
        self.message = message


@dataclass
class Document:
    """A loaded YAML document: plain data and the position of every value (by path)."""

    data: Any
    positions: dict[Path_, Position]
    file: str
    key_positions: dict[Path_, Position] = field(default_factory=dict)  # where each key is written

    def key_position(self, path: Sequence[str | int]) -> Position:
        """Where the key of the value at ``path`` is written (for "unknown key" errors)."""
        return self.key_positions.get(tuple(path)) or self.position(path)

    def position(self, path: Sequence[str | int]) -> Position:
        """The position of the value at ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, Position(self.file, 1, 1))


class _Mark(Protocol):
    """Where PyYAML is in a file (0-based): its pure-Python and its C marks alike."""

    line: int
    column: int


def _mark(file: str, mark: _Mark | None) -> Position:
    if mark is None:
        return Position(file, 1, 1)
    return Position(file, mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors, aliases and deep nesting as it composes, so that
    neither an alias bomb nor a thousand ``[`` is ever built (the composer recurses per level)."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0  # lists and mappings open around the node being composed
        self.first_anchor: tuple[str, _Mark | None] | None = None

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise self._alias_error(event, index)
        anchor = getattr(event, "anchor", None)
        if anchor is not None and self.first_anchor is None:
            self.first_anchor = anchor, event.start_mark
        if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        if self.depth >= MAX_DEPTH:
            raise YamlError(
                _mark(self.file, event.start_mark),
                f"nested more than {MAX_DEPTH} levels deep: a rule or setting never needs that",
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self.depth -= 1

    def _alias_error(self, alias: yaml.AliasEvent, key: object) -> YamlError:
        """Said as a merge (``<<: *base``) when it is one, else as an alias."""
        if isinstance(key, yaml.ScalarNode) and key.tag.endswith(":merge"):
            return YamlError(_mark(self.file, key.start_mark), _NO_MERGE)
        return YamlError(
            _mark(self.file, alias.start_mark),
            f"'*{alias.anchor}' repeats a value marked '&{alias.anchor}': {_NO_ALIASES}",
        )

    def anchor_error(self) -> YamlError | None:
        """An anchor no alias used: refused as well, so that none is left to be used later."""
        if self.first_anchor is None:
            return None
        name, mark = self.first_anchor
        return YamlError(
            _mark(self.file, mark), f"'&{name}' marks a value to repeat: {_NO_ALIASES}"
        )


_NO_ALIASES = "anchors (&name) and aliases (*name) are not supported: write the value out"
_NO_MERGE = "'<<' (merging keys from an anchor) is not supported: write the keys out"


def _compose(text: str, file: str) -> yaml.Node | None:
    loader = _Loader(text, file)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    problem = loader.anchor_error()
    if problem is not None:
        raise problem
    return node


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.style is not None:  # quoted or block scalar: always a string
        return text
    if node.tag not in _RESOLVABLE:  # e.g. an implicit timestamp: keep the text
        return text
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):
        return int(text.replace("_", ""))
    if _FLOAT.fullmatch(text):
        return float(text.replace("_", ""))
    return text


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Path_, Position] = {}
        self.key_positions: dict[Path_, Position] = {}

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.positions[path] = _mark(self.file, node.start_mark)
        if not node.tag.startswith(_STANDARD_TAG) or node.tag.startswith(_PYTHON_TAG):
            raise YamlError(_mark(self.file, node.start_mark), f"tag {node.tag!r} is not allowed")
        if isinstance(node, yaml.ScalarNode):
            return _scalar(self.unicode(node))
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlError(
                        _mark(self.file, key_node.start_mark), "keys must be plain text"
                    )
                if key_node.tag.endswith(":merge"):
                    raise YamlError(_mark(self.file, key_node.start_mark), _NO_MERGE)
                key = _scalar(self.unicode(key_node))
                key = key if isinstance(key, str) else str(key_node.value)
                if key in result:
                    raise YamlError(
                        _mark(self.file, key_node.start_mark),
                        f"duplicate key {key!r} (first at line "
                        f"{self.positions[(*path, key)].line})",
                    )
                self.key_positions[(*path, key)] = _mark(self.file, key_node.start_mark)
                result[key] = self.build(value_node, (*path, key))
            return result
        raise YamlError(_mark(self.file, node.start_mark), "unsupported YAML node")

    def unicode(self, node: yaml.ScalarNode) -> yaml.ScalarNode:
        """The node, its text made Unicode: ``"\\ud83d\\ude00"`` (a pair of escapes, as JSON
        writes them) is one character, and a ``\\ud800`` alone is half of one: an error."""
        if node.value.isascii():
            return node
        units = node.value.encode("utf-16-le", "surrogatepass")  # pairs joined on decoding
        try:
            node.value = units.decode("utf-16-le")
        except UnicodeDecodeError as exc:
            half = int.from_bytes(units[exc.start : exc.start + 2], "little")
            raise YamlError(
                _mark(self.file, node.start_mark),
                f"\\u{half:04x} is half of a character (a lone surrogate): write the character "
                "itself",
            ) from None
        return node


#: PyYAML's words for common slips -> what to do about them, and whether the slip is best shown
#: where the broken construct starts (its context mark) rather than where PyYAML gave up.
_HINTS = (
    ("could not find expected ':'", "a key needs a colon and a space after it (key: value)", 1),
    ("'\\t' that cannot start any token", "indent with spaces; YAML does not allow tabs", 0),
    ("that cannot start any token", "a value cannot start with this character: quote it", 0),
    ("found unexpected end of stream", "a quote or bracket is opened and never closed", 1),
    ("expected <block end>", "the indentation of this line does not match the lines above", 0),
    (
        "mapping values are not allowed here",
        "a ': ' where none can be: check this line's indentation, or quote a value holding ': '",
        0,
    ),
    ("expected ',' or ']'", "a [list] is not closed with ]", 1),
    ("expected ',' or '}'", "a {mapping} is not closed with }", 1),
)


def _explained(exc: yaml.MarkedYAMLError, file: str) -> YamlError:
    """A syntax error, placed where the slip is and said in plain words."""
    words = exc.problem or exc.context or "bad syntax"
    found = next(((advice, start) for pattern, advice, start in _HINTS if pattern in words), None)
    at_start = found is not None and found[1] and exc.context_mark is not None
    mark = (exc.context_mark if at_start else exc.problem_mark) or exc.context_mark
    message = f"{found[0]} (YAML: {words})" if found else f"invalid YAML: {words}"
    return YamlError(_mark(file, mark) if mark else Position(file, 1, 1), message)


def load(text: str, file: str) -> Document:
    """Parse one YAML document; YamlError (with position) on bad syntax or a duplicate key.

    Refused, each where it is written: anchors and aliases, nesting deeper than ``MAX_DEPTH``,
    tags outside YAML's standard set (``!!python/...``), and text that is not Unicode.
    """
    try:
        node = _compose(text, file)
    except yaml.MarkedYAMLError as exc:
        raise _explained(exc, file) from None
    except yaml.YAMLError as exc:
        raise YamlError(Position(file, 1, 1), f"invalid YAML: {exc}") from None
    if node is None:
        return Document(None, {(): Position(file, 1, 1)}, file)
    builder = _Builder(file)
    data = builder.build(node, ())
    return Document(data, builder.positions, file, builder.key_positions)


_WORDS = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key (check its spelling)",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": "write text here",
    "tuple_type": "write a list, e.g. [005930, 000660]",
    "list_type": "write a list",
    "dict_type": "write keys and values (key: value), one per line",
    "model_type": "write keys and values (key: value), one per line",
    "model_attributes_type": "write keys and values (key: value), one per line",
}


def wording(item: Any, words: dict[str, str] | None = None) -> str:
    """A pydantic error in plain words (``words`` first: a caller's own, by error type)."""
    kind, ctx = item["type"], item.get("ctx") or {}
    if words and kind in words:
        return words[kind]
    if kind in _WORDS:
        return _WORDS[kind]
    if kind == "greater_than":
        return f"must be more than {ctx['gt']}"
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']} or more"
    message: str = item["msg"]
    return message.removeprefix("Value error, ").replace("Input should be", "must be")


def validation_messages(
    error: ValidationError, doc: Document, prefix: Sequence[str | int] = (), lead: str = ""
) -> list[str]:
    """Turn a pydantic ValidationError into ``file:line:column: {lead}where: what`` lines.

    ``prefix`` is the path in ``doc`` of the data that was validated; ``lead`` says which part of
    the file that is (e.g. ``"case 2: "``), when ``where`` alone would not.
    """
    lines = []
    for item in error.errors(include_url=False):
        path = document_path(doc, (*prefix, *item["loc"]))
        where = ".".join(str(p) for p in path[len(prefix) :]) or "(top)"
        unknown = item["type"] == "extra_forbidden"
        position = doc.key_position(path) if unknown else doc.position(path)
        lines.append(f"{position}: {lead}{where}: {wording(item)}")
    return lines


def document_path(doc: Document, loc: Sequence[str | int]) -> Path_:
    """Map a pydantic location onto the document, dropping the tags pydantic adds for unions."""
    path: Path_ = ()
    for i, part in enumerate(loc):
        if (*path, part) in doc.positions or i == len(loc) - 1:
            path = (*path, part)
    return path
