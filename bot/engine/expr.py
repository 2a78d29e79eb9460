"""The expression language of ``type: expr`` rules: parsing, checking, and code generation.

``parse_expression("NTBY_TR_PBMN >= 100억 and delta(NTBY_TR_PBMN, 5m) > 10억")`` reads the text
with a small recursive-descent parser of its own (never ``eval`` of user text), keeps only what the
grammar of docs/RULES-SPEC.md allows, and returns an ``Expression``: the columns it reads, the
values it needs besides the tick (``prev``, ``delta`` windows, ``day_max``/``day_min``), and
``python(leaf)``, the source of one Python expression the compiler writes into a step function.

Semantics: arithmetic is exact (ints, and fractions where ``/`` or ``0.5`` needs them); when a
leaf needed is missing (``prev`` on the first tick of a day) or a divisor is zero anywhere, the
whole expression is false, whatever ``or``/``not`` stand around that part. ``evaluate`` is the same
thing as a tree walk, for tests and tooling.

Bounds: at most ``MAX_LENGTH`` characters and ``MAX_DEPTH`` levels of nesting (parentheses,
calls, unary ``-``, ``not``), so neither parsing nor the generated code can exhaust the stack.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, NamedTuple

from bot.amounts import NotAnAmount, parse_korean
from bot.durations import format_duration, parse_duration
from bot.engine.rule_types import FIELD_ALIASES, parse_field
from bot.ticks import NUMERIC_FIELDS

MAX_LENGTH = 1000
MAX_DEPTH = 32
_MAX_DIGITS = 30  # parse_korean computes with 60 digits: longer literals would be rounded

LeafKind = Literal["value", "prev", "delta", "day_max", "day_min"]
#: The only leaves whose value may be None (``prev`` on a day's first tick); python() checks them.
MISSING_KINDS: frozenset[str] = frozenset({"prev"})
#: Names the code of ``Expression.python`` uses: the compiler puts them in its namespace.
NAMESPACE: dict[str, object] = {"Fraction": Fraction, "abs": abs, "min": min, "max": max}

FUNCTIONS = ("prev", "delta", "day_max", "day_min", "abs", "min", "max")
_COLUMN_FUNCTIONS = ("prev", "delta", "day_max", "day_min")  # their first argument is a column
_KIND_OF: dict[str, LeafKind] = {"prev": "prev", "day_max": "day_max", "day_min": "day_min"}
_ARITY = {"prev": 1, "delta": 2, "day_max": 1, "day_min": 1, "abs": 1, "min": 2, "max": 2}
_KEYWORDS = ("and", "or", "not")
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")


class ExprError(ValueError):
    """A `when` that is not a valid expression; ``offset`` is the 0-based character offset of the
    offending part in the text, when there is one."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class Leaf(NamedTuple):
    """A value the expression reads: a column of the tick (``value``), of the previous tick
    (``prev``), its change over ``window`` seconds (``delta``) or the day's extreme."""

    kind: LeafKind
    column: str
    window: int = 0  # seconds, for delta; 0 otherwise


# --- the tree -------------------------------------------------------------------------------
Number = int | Fraction


@dataclass(frozen=True)
class Num:
    value: Number  # an int when whole
    offset: int


@dataclass(frozen=True)
class Ref:
    leaf: Leaf
    offset: int


@dataclass(frozen=True)
class Neg:
    operand: Arith
    offset: int


@dataclass(frozen=True)
class Chain:
    """``first op x op y ...`` with operators of one level: all of ``+ -`` or all of ``* /``
    (a flat list, so a long sum is no deep tree)."""

    first: Arith
    rest: tuple[tuple[str, Arith], ...]
    offset: int


@dataclass(frozen=True)
class Call:
    name: str  # abs, min, max
    args: tuple[Arith, ...]
    offset: int


@dataclass(frozen=True)
class Compare:
    op: str
    left: Arith
    right: Arith
    offset: int


@dataclass(frozen=True)
class Not:
    operand: Bool
    offset: int


@dataclass(frozen=True)
class Junction:
    op: str  # and, or
    items: tuple[Bool, ...]
    offset: int


Arith = Num | Ref | Neg | Chain | Call
Bool = Compare | Not | Junction
Node = Arith | Bool


# --- reading the text -----------------------------------------------------------------------
class _Token(NamedTuple):
    kind: str  # "literal" (starts with a digit), "name", "op", "end"
    text: str
    offset: int


_SPACE = re.compile(r"\s+")
_LITERAL = re.compile(r"[0-9][0-9A-Za-z_.\uac00-\ud7a3]*")  # a number or duration, units and all
_NAME = re.compile(r"[^\W\d]\w*")
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "(", ")", ",")
_REFUSED = {
    "**": "there are no exponents: write 100000 or 10만",
    "//": "'//' is not allowed: '/' is exact division",
    "%": "'%' is not allowed",
    "&&": "write 'and'",
    "||": "write 'or'",
    "&": "write 'and'",
    "|": "write 'or'",
    "!": "write 'not'",
    "=": "write '==' to compare",
    "[": "subscripts are not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
}
_UNIT_CHARS = frozenset("조억만천백십")


def _tokens(text: str, problems: list[ExprError]) -> Iterator[_Token]:
    """The tokens of ``text``. Text that is no token ends them with a ``bad`` token, its error
    put in ``problems``: a mistake the parser finds before it is the one to report."""
    position, previous = 0, ""
    while True:
        space = _SPACE.match(text, position)
        if space:
            position = space.end()
        if position >= len(text):
            break
        try:
            token = _token_at(text, position, previous)
        except ExprError as problem:
            problems.append(problem)
            while True:
                yield _Token("bad", text[position], position)
        previous = token.kind if token.kind != "op" else token.text
        position += len(token.text)
        yield token
    while True:
        yield _Token("end", "", position)


def _token_at(text: str, position: int, previous: str) -> _Token:
    for pattern, kind in ((_LITERAL, "literal"), (_NAME, "name")):
        found = pattern.match(text, position)
        if found:
            return _Token(kind, found.group(), position)
    two = text[position : position + 2]
    if two in _OPERATORS:
        return _Token("op", two, position)
    for refused, why in _REFUSED.items():
        if text.startswith(refused, position):
            raise ExprError(why, position)
    if text[position] in _OPERATORS:
        return _Token("op", text[position], position)
    char = text[position]
    if char == ".":
        if previous in ("name", "literal", ")"):
            raise ExprError("attribute access is not allowed", position)
        raise ExprError("a number starts with a digit: write 0.5, not .5", position)
    raise ExprError(f"unexpected character {char!r}", position)


def _column_list() -> str:
    return ", ".join(NUMERIC_FIELDS)


class _Parser:
    """Recursive descent over the grammar, with the depth bounded before Python's stack is."""

    def __init__(self, text: str) -> None:
        self.problems: list[ExprError] = []
        self.stream = _tokens(text, self.problems)
        self.token = next(self.stream)
        self.depth = 0
        self.columns: list[str] = []  # in reading order, repeats included

    def advance(self) -> _Token:
        token = self.token
        self.token = next(self.stream)
        return token

    def at(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def at_word(self, word: str) -> bool:
        return self.token.kind == "name" and self.token.text == word

    def expect(self, op: str, why: str) -> _Token:
        if not self.at(op):
            raise ExprError(why, self.token.offset)
        return self.advance()

    def enter(self, offset: int) -> None:
        """One level deeper, at the token at ``offset`` (a parenthesis, call, ``-`` or ``not``)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"the expression is nested deeper than {MAX_DEPTH}", offset)

    def parse(self) -> Bool:
        """The whole text as a condition; the first mistake in reading order if it is none."""
        try:
            return self.whole()
        except ExprError as problem:
            first = self.problems[0] if self.problems else None
            if first is None or (problem.offset or 0) < (first.offset or 0):
                raise
            raise first from None

    # Boolean levels: or > and > not > comparison. Each level returns arithmetic or a condition
    # (parentheses hold either); the level that needs one kind checks it.
    def whole(self) -> Bool:
        if self.token.kind == "end":
            raise ExprError("`when` is empty", None)
        start = self.token.offset
        tree = self.boolean()
        if self.token.kind != "end":
            raise _unexpected(self.token)
        return self.condition(tree, start)

    def condition(self, node: Node, offset: int) -> Bool:
        if not isinstance(node, Compare | Not | Junction):
            raise ExprError(
                "`when` must be a comparison, or comparisons joined by and/or/not", offset
            )
        return node

    def number(self, node: Node) -> Arith:
        if isinstance(node, Compare | Not | Junction):
            raise ExprError("a comparison cannot be part of arithmetic", node.offset)
        return node

    def boolean(self) -> Node:
        return self.junction("or", self.conjunction)

    def conjunction(self) -> Node:
        return self.junction("and", self.negation)

    def junction(self, word: str, item: Callable[[], Node]) -> Node:
        start = self.token.offset
        first = item()
        if not self.at_word(word):
            return first
        items = [self.condition(first, start)]
        while self.at_word(word):
            self.advance()
            offset = self.token.offset
            items.append(self.condition(item(), offset))
        return Junction(word, tuple(items), start)

    def negation(self) -> Node:
        if not self.at_word("not"):
            return self.comparison()
        offset = self.advance().offset
        self.enter(offset)
        inner = self.token.offset
        operand = self.condition(self.negation(), inner)
        self.depth -= 1
        return Not(operand, offset)

    def comparison(self) -> Node:
        start = self.token.offset
        left = self.sum()
        if not self.at(*_COMPARISONS):
            return left
        op = self.advance().text
        right = self.sum()
        if self.at(*_COMPARISONS):
            raise ExprError(
                "comparisons cannot be chained: write a < b and b < c", self.token.offset
            )
        return Compare(op, self.number(left), self.number(right), start)

    # Arithmetic levels: + - > * / > unary - > atoms.
    def sum(self) -> Node:
        return self.chain(("+", "-"), self.product)

    def product(self) -> Node:
        return self.chain(("*", "/"), self.unary)

    def chain(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        start = self.token.offset
        first = operand()
        if not self.at(*ops):
            return first
        head = self.number(first)
        rest: list[tuple[str, Arith]] = []
        while self.at(*ops):
            op = self.advance().text
            rest.append((op, self.number(operand())))
        return Chain(head, tuple(rest), start)

    def unary(self) -> Node:
        if self.at("+"):
            raise ExprError("unary '+' is not allowed: write the number alone", self.token.offset)
        if not self.at("-"):
            return self.atom()
        offset = self.advance().offset
        self.enter(offset)
        operand = self.number(self.unary())
        self.depth -= 1
        return Neg(operand, offset)

    def atom(self) -> Node:
        token = self.token
        if token.kind == "literal":
            self.advance()
            return Num(_number(token), token.offset)
        if token.kind == "name" and token.text not in _KEYWORDS:
            return self.name()
        if self.at("("):
            self.enter(self.advance().offset)
            inner = self.boolean()
            self.expect(")", "a '(' is not closed here")
            self.depth -= 1
            return inner
        if token.kind == "end":
            raise ExprError("the expression ends too early", token.offset)
        raise _unexpected(token)

    def name(self) -> Node:
        token = self.advance()
        word = token.text
        if self.at("("):
            return self.call(token)
        if word in FUNCTIONS:
            example = "delta(COLUMN, 5m)" if word == "delta" else f"{word}(...)"
            raise ExprError(f"{word} is a function: write {example}", token.offset)
        column = self.column(token)
        return Ref(Leaf("value", column), token.offset)

    def column(self, token: _Token) -> str:
        if token.kind != "name" or token.text in _KEYWORDS:
            raise ExprError(f"expected a column, found {token.text!r}", token.offset)
        try:
            column = parse_field(token.text)
        except ValueError:
            raise ExprError(_unknown_name(token.text), token.offset) from None
        self.columns.append(column)
        return column

    def call(self, token: _Token) -> Node:
        name = token.text
        if name not in FUNCTIONS:
            if _is_column(name):
                raise ExprError(f"{name!r} is a column, not a function", token.offset)
            raise ExprError(
                f"unknown function {name!r} (functions: {', '.join(FUNCTIONS)})", token.offset
            )
        self.advance()  # (
        self.enter(token.offset)
        if name in _COLUMN_FUNCTIONS:
            node: Node = self.column_call(token)
        else:
            if self.at(")"):
                raise ExprError(_arity(name, 0), token.offset)
            args = [self.argument()]
            while self.at(","):
                self.advance()
                args.append(self.argument())
            if len(args) != _ARITY[name]:
                raise ExprError(_arity(name, len(args)), token.offset)
            node = Call(name, tuple(args), token.offset)
        self.expect(")", f"{name}(...) is not closed here: {_usage(name)}")
        self.depth -= 1
        return node

    def argument(self) -> Arith:
        return self.number(self.comparison())

    def column_call(self, token: _Token) -> Ref:
        name = token.text
        if self.token.kind != "name" or self.token.text in FUNCTIONS:
            raise ExprError(f"{name} takes a column: {_usage(name)}", self.token.offset)
        column = self.column(self.advance())
        if name != "delta":
            if self.at(","):
                raise ExprError(_arity(name, 2), token.offset)
            if not self.at(")"):
                raise ExprError(f"{name} takes a column: {_usage(name)}", self.token.offset)
            return Ref(Leaf(_KIND_OF[name], column), token.offset)
        self.expect(",", f"delta needs a window: {_usage(name)}")
        window = self.token
        if window.kind != "literal":
            raise ExprError(
                f"delta's window is a duration written out: {_usage(name)}", window.offset
            )
        self.advance()
        if self.at(","):
            raise ExprError(_arity(name, 3), token.offset)
        return Ref(Leaf("delta", column, _window(window)), token.offset)


def _unexpected(token: _Token) -> ExprError:
    words = _UNIT_CHARS | {"원", "주"}
    if token.kind == "name" and (set(token.text) <= words or token.text.lower() in _KEYWORDS):
        return ExprError(_unknown_name(token.text), token.offset)
    return ExprError(f"unexpected {token.text!r}", token.offset)


def _usage(name: str) -> str:
    return {
        "prev": "prev(NTBY_TR_PBMN)",
        "delta": "delta(NTBY_TR_PBMN, 5m)",
        "day_max": "day_max(NTBY_TR_PBMN)",
        "day_min": "day_min(NTBY_TR_PBMN)",
        "abs": "abs(x)",
        "min": "min(x, y)",
        "max": "max(x, y)",
    }[name]


def _arity(name: str, given: int) -> str:
    wanted = _ARITY[name]
    plural = "argument" if wanted == 1 else "arguments"
    return f"{name} takes {wanted} {plural}, not {given}: {_usage(name)}"


def _is_column(word: str) -> bool:
    try:
        parse_field(word)
    except ValueError:
        return False
    return True


def _unknown_name(word: str) -> str:
    if word.lower() in _KEYWORDS:
        return f"write {word.lower()!r} in lower case"
    if set(word) <= _UNIT_CHARS:
        return f"a unit follows its number with no space between: 100{word}"
    if word[:1] in ("원", "주"):
        return "write amounts without 원 or 주: 100억"
    close = difflib.get_close_matches(word.upper(), NUMERIC_FIELDS, n=1)
    close = close or difflib.get_close_matches(word.lower(), FIELD_ALIASES, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown name {word!r} (columns: {_column_list()}){hint}"


_DURATION_LIKE = re.compile(r"[0-9]+(?:[dhms]|시간|[일분초])(?:[0-9]+(?:[dhms]|시간|[일분초]))*")


_BARE_UNIT = re.compile(r"(?<![0-9천백십])[조억만]|(?<![0-9])[천백십]")


def _number(token: _Token) -> Number:
    """A literal as a number: ``100억``, ``1.5조``, ``1조5000억``, ``3천만``, ``10_000``, ``0.5``
    (parse_korean reads it; what it would accept beyond the grammar is refused first)."""
    text = token.text
    if any(unit in text for unit in ("원", "주")):
        raise ExprError("write amounts without 원 or 주: 100억", token.offset)
    if re.fullmatch(r"[0-9_.]*[0-9][eE][0-9_]*", text):
        raise ExprError("there are no exponents: write 100000 or 10만", token.offset)
    if _DURATION_LIKE.fullmatch(text):
        raise ExprError(
            f"{text!r} is a duration: durations only go in delta(COLUMN, {text})", token.offset
        )
    bare = _BARE_UNIT.search(text)
    if bare:  # parse_korean reads 억 alone as 1억: in a number that is a slip (1억만)
        raise ExprError(
            f"write a number before each unit ({text[: bare.start()]}1{bare.group()})",
            token.offset + bare.start(),
        )
    if sum(char.isdigit() for char in text) > _MAX_DIGITS:
        raise ExprError(f"a number has at most {_MAX_DIGITS} digits", token.offset)
    try:
        exact, _unit = parse_korean(text)
    except NotAnAmount:
        raise ExprError(
            f"{text!r} is not a number (write 100억, 1.5조, 1억5000만, 10_000_000_000 or 0.5)",
            token.offset,
        ) from None
    except ValueError as problem:
        raise ExprError(str(problem), token.offset) from None
    value = Fraction(exact)
    return value.numerator if value.denominator == 1 else value


def _window(token: _Token) -> int:
    try:
        seconds = parse_duration(token.text)
    except ValueError as problem:
        raise ExprError(str(problem), token.offset) from None
    if seconds <= 0:
        raise ExprError("delta's window must be longer than 0 seconds", token.offset)
    return seconds


# --- the checked expression -----------------------------------------------------------------
def parse_expression(text: str) -> Expression:
    """Parse and check a `when`; ExprError (with the offset of the wrong part) otherwise."""
    if not isinstance(text, str):
        raise ExprError("`when` must be text (put the expression in quotes)")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"`when` is longer than {MAX_LENGTH} characters")
    parser = _Parser(text)
    tree = parser.parse()
    if not parser.columns:
        raise ExprError("`when` names no column")
    leaves = tuple(dict.fromkeys(_leaves(tree)))
    return Expression(
        text=text,
        columns=tuple(dict.fromkeys(parser.columns)),
        prevs=frozenset(leaf.column for leaf in leaves if leaf.kind == "prev"),
        deltas=tuple((leaf.column, leaf.window) for leaf in leaves if leaf.kind == "delta"),
        extremes=tuple(
            (leaf.kind.removeprefix("day_"), leaf.column)
            for leaf in leaves
            if leaf.kind in ("day_max", "day_min")
        ),
        leaves=leaves,
        tree=tree,
    )


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Neg | Not):
        return (node.operand,)
    if isinstance(node, Chain):
        return (node.first, *(operand for _, operand in node.rest))
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, Junction):
        return node.items
    return ()


def _leaves(tree: Node) -> Iterator[Leaf]:
    """Every leaf in reading order (an explicit stack: no recursion)."""
    stack: list[Node] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref):
            yield node.leaf
        stack.extend(reversed(_children(node)))


@dataclass(frozen=True)
class Expression:
    """A checked `when`. Build it with ``parse_expression``."""

    text: str
    #: KIS names in reading order of first appearance; the first is the rule's default field.
    columns: tuple[str, ...]
    prevs: frozenset[str]  # columns read with prev()
    deltas: tuple[tuple[str, int], ...]  # distinct (column, window seconds) of delta()
    extremes: tuple[tuple[str, str], ...]  # distinct ("max" | "min", column) of day_max/day_min
    leaves: tuple[Leaf, ...]  # every distinct leaf, in reading order
    tree: Bool = field(repr=False)

    def python(self, leaf: Callable[[Leaf], str]) -> str:
        """The source of one Python expression that is True or False, like ``evaluate``.

        ``leaf`` gives each leaf's code (``"v9"``, ``"prev3"``): cheap, without side effects, as
        it may be read more than once; only ``MISSING_KINDS`` leaves may be None. The code uses
        the names in ``NAMESPACE``.
        """
        return _Python(self.leaves, leaf).source(self.tree)

    def evaluate(self, leaves: Mapping[Leaf, int | None]) -> bool:
        """The truth value for these leaf values (None: missing), by walking the tree."""
        if any(leaves[leaf] is None for leaf in self.leaves):
            return False
        try:
            return _truth(self.tree, leaves)
        except ZeroDivisionError:
            return False

    def readable(self) -> str:
        """One normalized line: ``NTBY_TR_PBMN >= 100억 and WHOL_NTBY_QTY > 0``."""
        return _readable(self.tree).text

    def __str__(self) -> str:
        return self.readable()


# --- direct evaluation ----------------------------------------------------------------------
def _truth(node: Bool, leaves: Mapping[Leaf, int | None]) -> bool:
    """Every part is evaluated (no short cut), so a zero divisor anywhere is seen."""
    if isinstance(node, Compare):
        return _compare(node.op, _value(node.left, leaves), _value(node.right, leaves))
    if isinstance(node, Not):
        return not _truth(node.operand, leaves)
    truths = [_truth(item, leaves) for item in node.items]
    return all(truths) if node.op == "and" else any(truths)


def _compare(op: str, left: Number, right: Number) -> bool:
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    return (left == right) if op == "==" else (left != right)


def _value(node: Arith, leaves: Mapping[Leaf, int | None]) -> Number:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        value = leaves[node.leaf]
        assert value is not None  # evaluate() returned False before
        return value
    if isinstance(node, Neg):
        return -_value(node.operand, leaves)
    if isinstance(node, Call):
        args = [_value(arg, leaves) for arg in node.args]
        if node.name == "abs":
            return -args[0] if args[0] < 0 else args[0]
        first, second = args
        if node.name == "min":
            return first if first <= second else second
        return first if first >= second else second
    total = _value(node.first, leaves)
    for op, operand in node.rest:
        other = _value(operand, leaves)
        if op == "+":
            total = total + other
        elif op == "-":
            total = total - other
        elif op == "*":
            total = total * other
        else:
            total = _whole(Fraction(total, other))  # raises ZeroDivisionError on 0
    return total


def _whole(value: Fraction) -> Number:
    return value.numerator if value.denominator == 1 else value


# --- readable text --------------------------------------------------------------------------
class _Src(NamedTuple):
    """Code or text with the precedence of its outermost operator (higher binds tighter)."""

    text: str
    prec: int


_OR, _AND, _NOT, _CMP, _ADD, _MUL, _UNARY, _ATOM = range(1, 9)


def _wrap(src: _Src, at_least: int) -> str:
    return src.text if src.prec >= at_least else f"({src.text})"


def _binary(left: _Src, op: str, right: _Src, prec: int) -> _Src:
    """Left-associative: the right operand needs parentheses at the same level."""
    return _Src(f"{_wrap(left, prec)} {op} {_wrap(right, prec + 1)}", prec)


def _readable(node: Node) -> _Src:
    if isinstance(node, Num):
        return _Src(amount_text(node.value), _ATOM)
    if isinstance(node, Ref):
        return _Src(_leaf_text(node.leaf), _ATOM)
    if isinstance(node, Neg):
        return _Src("-" + _wrap(_readable(node.operand), _UNARY + 1), _UNARY)
    if isinstance(node, Call):
        return _Src(f"{node.name}({', '.join(_readable(a).text for a in node.args)})", _ATOM)
    if isinstance(node, Chain):
        prec = _ADD if node.rest[0][0] in "+-" else _MUL
        text = _readable(node.first)
        for op, operand in node.rest:
            text = _binary(text, op, _readable(operand), prec)
        return text
    if isinstance(node, Compare):
        return _binary(_readable(node.left), node.op, _readable(node.right), _CMP)
    if isinstance(node, Not):
        return _Src("not " + _wrap(_readable(node.operand), _NOT), _NOT)
    prec = _AND if node.op == "and" else _OR
    return _Src(f" {node.op} ".join(_wrap(_readable(i), prec) for i in node.items), prec)


def _leaf_text(leaf: Leaf) -> str:
    if leaf.kind == "value":
        return leaf.column
    if leaf.kind == "delta":
        return f"delta({leaf.column}, {format_duration(leaf.window)})"
    return f"{leaf.kind}({leaf.column})"


_UNITS = (("조", 10**12), ("억", 10**8), ("만", 10**4))


def amount_text(value: Number, decimals: bool = True) -> str:
    """A literal as the house writes it, exactly: ``100억``, ``1.5조``, ``123억4567만8900``,
    ``5000``, ``0.5``."""
    if isinstance(value, Fraction):
        return _decimal(value)
    if value < 0:
        return "-" + amount_text(-value)
    for unit, size in _UNITS:
        if value >= size:
            whole, rest = divmod(value, size)
            if rest == 0 or (decimals and rest * 100 % size == 0):  # 1.5조, 1.25억: 2 decimals
                return f"{_decimal(Fraction(value, size))}{unit}"
            return f"{whole}{unit}{amount_text(rest, decimals=False)}"
    return str(value)


def _decimal(value: Fraction) -> str:
    """A fraction with a finite decimal expansion (every literal has one) as a decimal."""
    whole, rest = divmod(value.numerator, value.denominator)
    digits: list[str] = []
    while rest and len(digits) < _MAX_DIGITS:
        digit, rest = divmod(rest * 10, value.denominator)
        digits.append(str(digit))
    return f"{whole}.{''.join(digits)}" if digits else str(whole)


# --- generated code -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Int:
    """Integer-valued code."""

    src: _Src


@dataclass(frozen=True)
class _Ratio:
    """The value ``num / den`` as two integer-valued codes (``den`` is never 0: guarded)."""

    num: _Src
    den: _Src
    positive: bool  # is den known to be > 0 (a constant, or an abs)?


@dataclass(frozen=True)
class _Frac:
    """Code whose value is a Fraction or an int."""

    src: _Src


_Form = _Int | _Ratio | _Frac
_ATOMIC = re.compile(r"\w+(?:\[\w+\])?")


def _mul(left: _Src | None, right: _Src | None) -> _Src | None:
    """A product where None stands for 1."""
    if left is None or left.text == "1":
        return right
    if right is None or right.text == "1":
        return left
    return _binary(left, "*", right, _MUL)


def _times(left: _Src, right: _Src | None) -> _Src:
    return _mul(left, right) or left  # None only for 1 * 1


def _neg(src: _Src) -> _Src:
    return _Src("-" + _wrap(src, _UNARY + 1), _UNARY)


def _call(name: str, *args: _Src) -> _Src:
    return _Src(f"{name}({', '.join(arg.text for arg in args)})", _ATOM)


def _as_frac(form: _Form) -> _Src:
    if isinstance(form, _Ratio):
        return _call("Fraction", form.num, form.den)
    return form.src


def _constant(value: Number) -> _Form:
    if isinstance(value, int):
        return _Int(_Src(str(value), _ATOM))
    numerator = _Src(str(value.numerator), _ATOM)
    return _Ratio(numerator, _Src(str(value.denominator), _ATOM), True)


_SHORT = 40  # the longest denominator code written twice by a sum of ratios


def _parts(form: _Int | _Ratio) -> tuple[_Src, _Src | None, bool]:
    """Numerator, denominator (None: 1) and whether the denominator is known positive."""
    if isinstance(form, _Ratio):
        return form.num, form.den, form.positive
    return form.src, None, True


def _product(left: _Src | None, right: _Src | None) -> _Src:
    """The product of two denominators, not both None; two constants are multiplied here."""
    if left is not None and right is not None and left.text.isdigit() and right.text.isdigit():
        return _Src(str(int(left.text) * int(right.text)), _ATOM)
    product = _mul(left, right)
    assert product is not None
    return product


def _constant_value(node: Arith) -> Number | None:
    """The value of a literal, or of a negated one (``-2``); None for anything else."""
    sign = 1
    while isinstance(node, Neg):
        node, sign = node.operand, -sign
    return sign * node.value if isinstance(node, Num) else None


class _Python:
    """Builds the code of one expression: the missing-leaf checks, the zero-divisor checks in
    the order they can be evaluated (inner divisions first), then the condition itself.

    Integer arithmetic stays integer. A division (or ``0.5``) makes a ratio ``num / den`` of
    integer codes, compared by cross multiplication (times the sign of a denominator not known
    to be positive). Only where that would write long code many times (a sum of ratios with
    long denominators) or needs a comparison (min/max of a ratio) is a Fraction made.
    """

    def __init__(self, leaves: tuple[Leaf, ...], leaf: Callable[[Leaf], str]) -> None:
        self.codes = {one: self.atomic(leaf(one)) for one in leaves}
        self.guards = [f"{self.codes[one].text} is not None"
                       for one in leaves if one.kind in MISSING_KINDS]  # fmt: skip
        self.divisors: list[str] = []

    @staticmethod
    def atomic(code: str) -> _Src:
        return _Src(code, _ATOM if _ATOMIC.fullmatch(code) else _OR)

    def source(self, tree: Bool) -> str:
        body = self.condition(tree)
        checks = [*self.guards, *dict.fromkeys(self.divisors)]
        if not checks:
            return f"({body.text})"
        return f"({' and '.join(checks)} and {_wrap(body, _AND)})"

    def condition(self, node: Bool) -> _Src:
        if isinstance(node, Compare):
            return self.compare(node.op, self.form(node.left), self.form(node.right))
        if isinstance(node, Not):
            return _Src("not " + _wrap(self.condition(node.operand), _NOT), _NOT)
        prec = _AND if node.op == "and" else _OR
        items = [_wrap(self.condition(item), prec) for item in node.items]
        return _Src(f" {node.op} ".join(items), prec)

    def compare(self, op: str, left: _Form, right: _Form) -> _Src:
        if isinstance(left, _Int) and isinstance(right, _Int):
            return _binary(left.src, op, right.src, _CMP)
        if isinstance(left, _Frac) or isinstance(right, _Frac):
            return _binary(_as_frac(left), op, _as_frac(right), _CMP)
        num1, den1 = (left.num, left.den) if isinstance(left, _Ratio) else (left.src, None)
        num2, den2 = (right.num, right.den) if isinstance(right, _Ratio) else (right.src, None)
        cross1, cross2 = _times(num1, den2), _times(num2, den1)
        signs = [side.den for side in (left, right)
                 if isinstance(side, _Ratio) and not side.positive]  # fmt: skip
        if op in ("==", "!=") or not signs:
            return _binary(cross1, op, cross2, _CMP)
        # a/b < c/d  <=>  (a*d - c*b) * b * d < 0, b*d != 0, for any signs of b and d
        difference: _Src = _binary(cross1, "-", cross2, _ADD)
        for sign in signs:
            difference = _times(difference, sign)
        return _binary(difference, op, _Src("0", _ATOM), _CMP)

    def form(self, node: Arith) -> _Form:
        if isinstance(node, Num):
            return _constant(node.value)
        if isinstance(node, Ref):
            return _Int(self.codes[node.leaf])
        if isinstance(node, Neg):
            inner = self.form(node.operand)
            if isinstance(inner, _Ratio):
                return _Ratio(_neg(inner.num), inner.den, inner.positive)
            return _Int(_neg(inner.src)) if isinstance(inner, _Int) else _Frac(_neg(inner.src))
        if isinstance(node, Call):
            return self.call(node.name, [self.form(arg) for arg in node.args])
        total = self.form(node.first)
        for op, operand in node.rest:
            if op == "/":
                total = self.divide(total, operand)
            else:
                total = self.arithmetic(total, op, self.form(operand))
        return total

    def call(self, name: str, args: list[_Form]) -> _Form:
        if name == "abs":
            (arg,) = args
            if isinstance(arg, _Ratio):
                den = arg.den if arg.positive else _call("abs", arg.den)
                return _Ratio(_call("abs", arg.num), den, True)
            return (
                _Int(_call("abs", arg.src))
                if isinstance(arg, _Int)
                else _Frac(_call("abs", arg.src))
            )
        if all(isinstance(arg, _Int) for arg in args):
            return _Int(_call(name, *(_as_frac(arg) for arg in args)))
        return _Frac(_call(name, *(_as_frac(arg) for arg in args)))

    def arithmetic(self, left: _Form, op: str, right: _Form) -> _Form:
        prec = _ADD if op in "+-" else _MUL
        if isinstance(left, _Int) and isinstance(right, _Int):
            return _Int(_binary(left.src, op, right.src, prec))
        if isinstance(left, _Frac) or isinstance(right, _Frac):
            return _Frac(_binary(_as_frac(left), op, _as_frac(right), prec))
        (num1, den1, positive1), (num2, den2, positive2) = _parts(left), _parts(right)
        positive = positive1 and positive2
        if op == "*":
            return _Ratio(_times(num1, num2), _product(den1, den2), positive)
        if den1 is not None and den2 is not None and den1.text == den2.text:
            return _Ratio(_binary(num1, op, num2, _ADD), den1, positive)
        if all(den is None or len(den.text) <= _SHORT for den in (den1, den2)):
            # a/b + c/d = (a*d + c*b) / (b*d): b and d are written twice, so only short ones
            cross = _binary(_times(num1, den2), op, _times(num2, den1), _ADD)
            return _Ratio(cross, _product(den1, den2), positive)
        return _Frac(_binary(_as_frac(left), op, _as_frac(right), prec))

    def divide(self, left: _Form, divisor_node: Arith) -> _Form:
        constant = _constant_value(divisor_node)
        if constant is not None:  # no check needed: multiply by the inverse
            if constant == 0:
                self.divisors.append("False")
                return left
            return self.arithmetic(left, "*", _constant(_whole(1 / Fraction(constant))))
        divisor = self.form(divisor_node)
        zero_test = divisor.num if isinstance(divisor, _Ratio) else divisor.src
        self.divisors.append(_binary(zero_test, "!=", _Src("0", _ATOM), _CMP).text)
        if isinstance(left, _Frac) or isinstance(divisor, _Frac):
            return _Frac(_call("Fraction", _as_frac(left), _as_frac(divisor)))
        num1, den1 = (left.num, left.den) if isinstance(left, _Ratio) else (left.src, None)
        if isinstance(divisor, _Ratio):  # (a/b) / (c/d) = (a*d) / (b*c)
            return _Ratio(_times(num1, divisor.den), _times(divisor.num, den1), False)
        return _Ratio(num1, _times(divisor.src, den1), False)
