"""The expression language of `type: expr` (docs/RULES-SPEC.md, "Expression rules")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.durations import format_duration
from bot.engine.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    NAMESPACE,
    Compare,
    ExprError,
    Expression,
    Leaf,
    Num,
    amount_text,
    parse_expression,
)
from bot.engine.rule_types import FIELD_ALIASES
from bot.ticks import NUMERIC_FIELDS

NET = Leaf("value", "NTBY_TR_PBMN")
BID = Leaf("value", "WHOL_NTBY_QTY")
SELL = Leaf("value", "SELN_CNQN")
BUY = Leaf("value", "SHNU_CNQN")
PREV_NET = Leaf("prev", "NTBY_TR_PBMN")


def names(expression: Expression, prefix: str = "L") -> Callable[[Leaf], str]:
    """The compiler's part in miniature: each leaf is a variable of its own."""
    index = {leaf: f"{prefix}{i}" for i, leaf in enumerate(expression.leaves)}
    return index.__getitem__


def compiled(expression: Expression, values: Mapping[Leaf, int | None], prefix: str = "L") -> bool:
    """The generated code, run in NAMESPACE with the leaves bound (to names ``prefix<n>``)."""
    code = compile(expression.python(names(expression, prefix)), "<when>", "eval")
    scope = {f"{prefix}{i}": values[leaf] for i, leaf in enumerate(expression.leaves)}
    result = eval(code, dict(NAMESPACE), scope)  # our own generated code, in the test
    assert isinstance(result, bool)
    return result


def truth(text: str, values: Mapping[Leaf, int | None]) -> bool:
    """Both evaluations of ``text``, which must agree."""
    expression = parse_expression(text)
    direct = expression.evaluate(values)
    assert compiled(expression, values) == direct
    return direct


def error(text: str) -> ExprError:
    with pytest.raises(ExprError) as caught:
        parse_expression(text)
    return caught.value


# --- numbers ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("literal", "number"),
    [
        ("100억", 10**10),
        ("1.5조", 15 * 10**11),
        ("1조5000억", 15 * 10**11),
        ("1억5000만", 150_000_000),
        ("3천만", 30_000_000),
        ("3천5백만", 35_000_000),
        ("1억1만", 100_010_000),
        ("10_000_000_000", 10**10),
        ("0.5", Fraction(1, 2)),
        ("2.5억", 250_000_000),
        ("0", 0),
        ("1조2천3백4십5억6천7백8십9만1234", 1_2345_6789_1234),
    ],
)
def test_numbers_are_read_as_a_trader_writes_them(literal: str, number: int | Fraction) -> None:
    tree = parse_expression(f"NTBY_TR_PBMN == {literal}").tree
    assert isinstance(tree, Compare) and isinstance(tree.right, Num)
    assert tree.right.value == number and type(tree.right.value) is type(number)
    scale = Fraction(number).denominator
    exact = int(number * scale)
    assert truth(f"NTBY_TR_PBMN == {literal} * {scale}", {NET: exact})
    assert not truth(f"NTBY_TR_PBMN == {literal} * {scale}", {NET: exact + 1})


@pytest.mark.parametrize(
    ("when", "offset", "words"),
    [
        ("NTBY_TR_PBMN > 1e5", 15, "exponents"),
        ("NTBY_TR_PBMN > 1E5", 15, "exponents"),
        ("NTBY_TR_PBMN > 100 억", 19, "no space"),
        ("NTBY_TR_PBMN > 100억원", 15, "원"),
        ("WHOL_NTBY_QTY > 100주", 16, "주"),
        ("NTBY_TR_PBMN > 1__0", 15, "not a number"),
        ("NTBY_TR_PBMN > 1.2.3", 15, "not a number"),
        ("NTBY_TR_PBMN > .5", 15, "0.5"),
        ("NTBY_TR_PBMN > 5만1억", 15, "big to small"),
        ("NTBY_TR_PBMN > 1억만", 17, "a number before each unit"),
        ("NTBY_TR_PBMN > 3천백", 17, "a number before each unit"),
        ("NTBY_TR_PBMN > 2 ** 3", 17, "exponents"),
        ("NTBY_TR_PBMN > 5m", 15, "duration"),
        ("NTBY_TR_PBMN > 1" + "0" * 40, 15, "digits"),
    ],
)
def test_numbers_written_wrong_are_refused_where_they_are(
    when: str, offset: int, words: str
) -> None:
    problem = error(when)
    assert problem.offset == offset
    assert words in str(problem)


def test_a_minus_is_an_operator_not_part_of_a_number() -> None:
    assert truth("NTBY_TR_PBMN-3억 > 0", {NET: 300_000_001})
    assert not truth("NTBY_TR_PBMN-3억 > 0", {NET: 300_000_000})
    assert truth("NTBY_TR_PBMN > -3억", {NET: -299_999_999})
    assert truth("-NTBY_TR_PBMN == 3억", {NET: -300_000_000})
    assert truth("NTBY_TR_PBMN - -3억 == 0", {NET: -300_000_000})


# --- meaning ----------------------------------------------------------------------------------
@pytest.mark.parametrize("a", [False, True])
@pytest.mark.parametrize("b", [False, True])
@pytest.mark.parametrize("c", [False, True])
def test_not_binds_tighter_than_and_and_and_than_or(a: bool, b: bool, c: bool) -> None:
    values = {SELL: int(a), BUY: int(b), BID: int(c)}
    assert truth("not SELN_CNQN > 0 and SHNU_CNQN > 0 or WHOL_NTBY_QTY > 0", values) is (
        ((not a) and b) or c
    )
    assert truth("SELN_CNQN > 0 or SHNU_CNQN > 0 and WHOL_NTBY_QTY > 0", values) is (
        a or (b and c)
    )
    assert truth("not (SELN_CNQN > 0 or SHNU_CNQN > 0) and not WHOL_NTBY_QTY > 0", values) is (
        (not (a or b)) and not c
    )
    assert truth("not not SELN_CNQN > 0", values) is a


@pytest.mark.parametrize(
    ("when", "with_prev"),
    [
        ("prev(NTBY_TR_PBMN) > 0 or NTBY_TR_PBMN > 0", True),
        ("NTBY_TR_PBMN > 0 or prev(NTBY_TR_PBMN) > 0", True),
        ("not prev(NTBY_TR_PBMN) > 0", False),
        ("not (prev(NTBY_TR_PBMN) > 0 and NTBY_TR_PBMN > 0)", False),
        ("NTBY_TR_PBMN > 0 or not NTBY_TR_PBMN - prev(NTBY_TR_PBMN) > 0", True),
        ("not prev(NTBY_TR_PBMN) < 0 and prev(NTBY_TR_PBMN) != 0", True),
    ],
)
def test_prev_on_the_first_tick_makes_the_whole_when_false(when: str, with_prev: bool) -> None:
    assert not truth(when, {NET: 5, PREV_NET: None})
    assert truth(when, {NET: 5, PREV_NET: 1}) is with_prev
    assert parse_expression(when).prevs == frozenset({"NTBY_TR_PBMN"})


@pytest.mark.parametrize(
    ("when", "with_divisor"),
    [
        ("SHNU_CNQN / SELN_CNQN > 1 or WHOL_NTBY_QTY > 0", True),
        ("WHOL_NTBY_QTY > 0 or SHNU_CNQN / SELN_CNQN > 1", True),
        ("not SHNU_CNQN / SELN_CNQN > 1", False),
        ("not (SHNU_CNQN / SELN_CNQN + 1 > 1) or WHOL_NTBY_QTY > 0", True),
        ("WHOL_NTBY_QTY > 0 or min(SHNU_CNQN, 1 / SELN_CNQN) > 1", True),
        ("WHOL_NTBY_QTY > 0 or SHNU_CNQN / (SELN_CNQN / 2) > 1", True),
        ("not WHOL_NTBY_QTY / (SELN_CNQN - 3) > 0", False),
        ("WHOL_NTBY_QTY > 0 or SHNU_CNQN / 0 > 1", False),
        ("WHOL_NTBY_QTY > 0 or SHNU_CNQN / -(0) > 1", False),
    ],
)
def test_a_zero_divisor_anywhere_makes_the_whole_when_false(when: str, with_divisor: bool) -> None:
    zero = 3 if "- 3" in when else 0
    assert not truth(when, {SELL: zero, BUY: 7, BID: 1})
    assert truth(when, {SELL: 2 * zero + 1, BUY: 7, BID: 1}) is with_divisor


def test_division_is_exact() -> None:
    for seller in (1, 3, 7, 10**12 + 1, -9):
        assert truth("SELN_CNQN / 3 * 3 == SELN_CNQN", {SELL: seller})
        assert truth("SHNU_CNQN / SELN_CNQN * SELN_CNQN == SHNU_CNQN", {SELL: seller, BUY: 10})
    assert truth("SELN_CNQN * 0.1 + SELN_CNQN * 0.2 == SELN_CNQN * 0.3", {SELL: 1})
    assert truth("SELN_CNQN / 3 > 0.3333333333", {SELL: 1})
    assert not truth("SELN_CNQN / 3 >= 0.3333333334", {SELL: 1})
    assert truth("SHNU_CNQN / SELN_CNQN > 1.5", {SELL: -2, BUY: -4})
    assert not truth("SHNU_CNQN / SELN_CNQN > 1.5", {SELL: -2, BUY: 4})
    assert truth("SHNU_CNQN / SELN_CNQN < SHNU_CNQN / (SELN_CNQN - 1)", {SELL: 3, BUY: 1})
    assert truth("abs(SHNU_CNQN / SELN_CNQN) == 2", {SELL: -2, BUY: 4})
    assert truth("max(SHNU_CNQN / 3, SELN_CNQN / 4) == 1 / 3", {SELL: 1, BUY: 1})


def test_pure_integer_expressions_stay_plain_integer_code() -> None:
    expression = parse_expression(
        "NTBY_TR_PBMN >= 100억 and WHOL_NTBY_QTY > 0 and delta(NTBY_TR_PBMN, 5m) > 10억"
    )
    code = {NET: "v9", BID: "v12", Leaf("delta", "NTBY_TR_PBMN", 300): "d0"}
    assert expression.python(code.__getitem__) == (
        "(v9 >= 10000000000 and v12 > 0 and d0 > 1000000000)"
    )
    ratio = parse_expression("SHNU_TR_PBMN / SELN_TR_PBMN > 1.5 and prev(SHNU_CNQN) < 0")
    assert "Fraction" not in ratio.python(names(ratio))  # cross multiplied
    assert "is not None" in ratio.python(names(ratio))


def test_leaf_code_that_is_not_a_name_is_parenthesized() -> None:
    expression = parse_expression("-NTBY_TR_PBMN * 2 > 0")
    assert expression.python(lambda leaf: "a + b") == "(-(a + b) * 2 > 0)"


def test_what_an_expression_needs_is_listed_in_reading_order() -> None:
    expression = parse_expression(
        "delta(net_buy_value, 5m) > 10억 and SELN_CNQN < day_max(SELN_CNQN) "
        "and prev(WHOL_NTBY_QTY) < 0 and delta(NTBY_TR_PBMN, 300) > 0 "
        "and day_min(SHNU_CNQN) > delta(SELN_CNQN, 1h30m)"
    )
    assert expression.columns == (
        "NTBY_TR_PBMN", "SELN_CNQN", "WHOL_NTBY_QTY", "SHNU_CNQN",
    )  # fmt: skip
    assert expression.prevs == frozenset({"WHOL_NTBY_QTY"})
    assert expression.deltas == (("NTBY_TR_PBMN", 300), ("SELN_CNQN", 5400))
    assert expression.extremes == (("max", "SELN_CNQN"), ("min", "SHNU_CNQN"))


def test_the_default_field_is_the_first_column_even_inside_a_function() -> None:
    assert parse_expression("delta(NTBY_TR_PBMN, 5m) > 10억").columns[0] == "NTBY_TR_PBMN"
    assert parse_expression("abs(prev(SELN_CNQN)) > WHOL_NTBY_QTY").columns[0] == "SELN_CNQN"
    assert parse_expression("1 < max(2, buy_volume)").columns[0] == "SHNU_CNQN"


# --- mistakes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "offset", "words"),
    [
        ("NTBY > 0", 0, "unknown name 'NTBY' (columns: SELN_CNQN"),
        ("SELN_CNQN > 0 and NTBY_TR_PBM > 0", 18, "did you mean NTBY_TR_PBMN"),
        ("0 < SELN_CNQN < 5", 14, "comparisons cannot be chained"),
        ("SELN_CNQN == SHNU_CNQN == 0", 23, "cannot be chained"),
        ("SELN_CNQN.real > 0", 9, "attribute access is not allowed"),
        ("prev(SELN_CNQN).x > 0", 15, "attribute access is not allowed"),
        ("SELN_CNQN > 'a'", 12, "strings are not allowed"),
        ('SELN_CNQN > "a"', 12, "strings are not allowed"),
        ("5", 0, "`when` must be a comparison, or comparisons joined by and/or/not"),
        ("SELN_CNQN + 1", 0, "must be a comparison"),
        ("  SELN_CNQN + 1", 2, "must be a comparison"),
        ("SELN_CNQN > 0 and 5", 18, "must be a comparison"),
        ("not SELN_CNQN", 4, "must be a comparison"),
        ("(SELN_CNQN)", 0, "must be a comparison"),
        ("foo(SELN_CNQN) > 0", 0, "unknown function 'foo'"),
        ("SELN_CNQN > 0 or __import__(SELN_CNQN) > 0", 17, "unknown function"),
        ("SELN_CNQN(1) > 0", 0, "is a column, not a function"),
        ("(SELN_CNQN > 0) + 1 > 0", 1, "comparison cannot be part of arithmetic"),
        ("SELN_CNQN + (SHNU_CNQN > 0) > 0", 13, "comparison cannot be part of arithmetic"),
        ("abs(SELN_CNQN > 0) > 0", 4, "comparison cannot be part of arithmetic"),
        ("(SELN_CNQN > 0) > 0", 1, "comparison cannot be part of arithmetic"),
        ("1 > 0", None, "`when` names no column"),
        ("min(SELN_CNQN) > 0", 0, "min takes 2 arguments, not 1"),
        ("max(1, 2, SELN_CNQN) > 0", 0, "max takes 2 arguments, not 3"),
        ("abs() > SELN_CNQN", 0, "abs takes 1 argument, not 0"),
        ("prev(SELN_CNQN, 5m) > 0", 0, "prev takes 1 argument"),
        ("prev() > 0", 5, "prev takes a column"),
        ("prev(SELN_CNQN + 1) > 0", 15, "prev takes a column"),
        ("prev(XYZ) > 0", 5, "unknown name 'XYZ'"),
        ("delta(SELN_CNQN) > 0", 15, "delta needs a window"),
        ("delta(SELN_CNQN, 5m, 1) > 0", 0, "delta takes 2 arguments, not 3"),
        ("delta(SELN_CNQN, 0) > 0", 17, "longer than 0"),
        ("delta(SELN_CNQN, SHNU_CNQN) > 0", 17, "duration written out"),
        ("delta(SELN_CNQN, 5x) > 0", 17, "not a duration"),
        ("prev > 0", 0, "prev is a function"),
        ("SELN_CNQN = 5", 10, "write '=='"),
        ("SELN_CNQN > 0 AND SHNU_CNQN > 0", 14, "lower case"),
        ("SELN_CNQN > 0 && SHNU_CNQN > 0", 14, "write 'and'"),
        ("SELN_CNQN > 0 ; 1", 14, "unexpected character"),
        ("SELN_CNQN[0] > 0", 9, "subscripts"),
        ("+SELN_CNQN > 0", 0, "unary '+'"),
        ("SELN_CNQN // 2 > 0", 10, "'//'"),
        ("SELN_CNQN % 2 > 0", 10, "'%'"),
        ("SELN_CNQN > 0 if 1 else 0", 14, "unexpected 'if'"),
        ("(SELN_CNQN > 0", 14, "not closed"),
        ("SELN_CNQN > 0)", 13, "unexpected ')'"),
        ("SELN_CNQN >", 11, "ends too early"),
        ("SELN_CNQN > 0 and", 17, "ends too early"),
        ("순매수 > 0", 0, "unknown name '순매수'"),
        ("lambda: 1", 0, "unknown name 'lambda'"),
        ("", None, "empty"),
        ("   ", None, "empty"),
    ],
)
def test_each_mistake_is_named_at_its_place(when: str, offset: int | None, words: str) -> None:
    problem = error(when)
    assert problem.offset == offset, str(problem)
    assert words in str(problem)
    assert isinstance(problem, ValueError)


def test_input_is_bounded_in_length_and_depth() -> None:
    assert "longer than 1000" in str(error("(" * 10_000))
    assert "longer than 1000" in str(error("SELN_CNQN > " + "1 + " * 300 + "1"))
    deep = "(" * (MAX_DEPTH + 1) + "SELN_CNQN > 0" + ")" * (MAX_DEPTH + 1)
    assert error(deep).offset == MAX_DEPTH
    for prefix in ("not ", "-", "abs("):
        assert "nested deeper" in str(error(prefix * 200 + "SELN_CNQN > 0"))
    assert error("(" * 999).offset is not None


def test_the_deepest_allowed_expression_compiles() -> None:
    """Nested divisions at the depth limit: the generated code stays within Python's limits."""
    inner = "SELN_CNQN"
    for _ in range(MAX_DEPTH - 1):
        inner = f"abs(SHNU_CNQN / {inner} + 1)"
    expression = parse_expression(f"{inner} > 0")
    assert len(expression.text) <= MAX_LENGTH
    values = {SELL: 2, BUY: 3}
    assert compiled(expression, values) == expression.evaluate(values) is True
    sums = parse_expression("SELN_CNQN > " + "+".join(["SELN_CNQN / 2"] * 70))
    assert compiled(sums, {SELL: 1}) == sums.evaluate({SELL: 1}) is False


# --- readable ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "shown"),
    [
        (
            "NTBY_TR_PBMN>=10000000000 and WHOL_NTBY_QTY>0",
            "NTBY_TR_PBMN >= 100억 and WHOL_NTBY_QTY > 0",
        ),
        ("net_buy_value > 1조5000억", "NTBY_TR_PBMN > 1.5조"),
        ("net_buy_value > 12_345_678_900", "NTBY_TR_PBMN > 123억4567만8900"),
        ("SELN_CNQN > 3천만 * 0.5", "SELN_CNQN > 3000만 * 0.5"),
        (
            "((SELN_CNQN > 0 or SHNU_CNQN > 0)) and SELN_CNQN > 1",
            "(SELN_CNQN > 0 or SHNU_CNQN > 0) and SELN_CNQN > 1",
        ),
        ("not (SELN_CNQN>0 and SHNU_CNQN>0)", "not (SELN_CNQN > 0 and SHNU_CNQN > 0)"),
        ("not SELN_CNQN>0 and SHNU_CNQN>0", "not SELN_CNQN > 0 and SHNU_CNQN > 0"),
        (
            "SELN_CNQN - (SHNU_CNQN - 1) > (SELN_CNQN - SHNU_CNQN) - 1",
            "SELN_CNQN - (SHNU_CNQN - 1) > SELN_CNQN - SHNU_CNQN - 1",
        ),
        ("-(-SELN_CNQN) > -(1 + 1)", "-(-SELN_CNQN) > -(1 + 1)"),
        ("delta( SELN_CNQN ,90 ) > 0", "delta(SELN_CNQN, 1m30s) > 0"),
        (
            "SELN_CNQN/(2*SHNU_CNQN) > prev(SELN_CNQN)*-1",
            "SELN_CNQN / (2 * SHNU_CNQN) > prev(SELN_CNQN) * -1",
        ),
    ],
)
def test_rules_check_shows_one_normalized_line(when: str, shown: str) -> None:
    expression = parse_expression(when)
    assert str(expression) == expression.readable() == shown


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (10**10, "100억"),
        (15 * 10**11, "1.5조"),
        (1_2345 * 10**8, "1조2345억"),
        (125 * 10**6, "1.25억"),
        (12_345, "1만2345"),
        (9_999, "9999"),
        (10**12 + 5, "1조5"),
        (Fraction(1, 2), "0.5"),
        (Fraction(12_345, 100), "123.45"),
    ],
)
def test_amounts_are_written_exactly_as_the_house_writes_them(number: int, text: str) -> None:
    assert amount_text(number) == text


# --- properties ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class T:
    """A test-side tree drawn from the grammar, with its own evaluation below (the oracle).

    kind: num (value, text), leaf (leaf, text), neg, call (op: abs/min/max), bin (op: + - * /),
    cmp (op), not, and, or; the operands are in ``args``.
    """

    kind: str
    op: str = ""
    args: tuple[T, ...] = ()
    value: Fraction = Fraction(0)
    leaf: Leaf | None = None
    text: str = ""


def _korean(n: int) -> str:
    """An integer in 조/억/만 groups (independent of the module's own writer)."""
    if n == 0:
        return "0"
    text = ""
    for unit, size in (("조", 10**12), ("억", 10**8), ("만", 10**4), ("", 1)):
        group, n = divmod(n, size)
        if group:
            text += f"{group}{unit}"
    return text


WHOLES = st.integers(0, 10**13) | st.sampled_from([0, 1, 2, 3, 10**8, 10**10])
DECIMALS = st.sampled_from([0, 0, 0, 1, 2])
UNITS = st.sampled_from([("", 1), ("억", 10**8), ("조", 10**12), ("만", 10**4)])
STYLES = st.sampled_from(["plain", "underscore", "korean", "house"])


@st.composite
def literals(draw: st.DrawFn) -> T:
    whole, decimals = draw(WHOLES), draw(DECIMALS)
    if decimals:
        digits = str(whole % 10**5).rjust(decimals + 1, "0")
        unit, size = draw(UNITS)
        text = f"{digits[:-decimals]}.{digits[-decimals:]}{unit}"
        return T("num", value=Fraction(whole % 10**5, 10**decimals) * size, text=text)
    text = {
        "plain": str(whole),
        "underscore": f"{whole:_}",
        "korean": _korean(whole),
        "house": amount_text(whole),
    }[draw(STYLES)]
    return T("num", value=Fraction(whole), text=text)


COLUMNS = st.sampled_from(NUMERIC_FIELDS)
KINDS = st.sampled_from(["value", "value", "prev", "delta", "day_max", "day_min"])
WINDOWS = st.sampled_from([1, 60, 90, 300, 5400])
BOOLS = st.booleans()


@st.composite
def leaves(draw: st.DrawFn) -> T:
    column, kind = draw(COLUMNS), draw(KINDS)
    aliases = [alias for alias, name in FIELD_ALIASES.items() if name == column]
    use_alias: bool = draw(BOOLS)
    written = aliases[0] if use_alias else column
    window = draw(WINDOWS) if kind == "delta" else 0
    if kind == "value":
        text = written
    elif kind == "delta":
        text = f"delta({written}, {format_duration(window) if draw(BOOLS) else window})"
    else:
        text = f"{kind}({written})"
    return T("leaf", leaf=Leaf(kind, column, window), text=text)  # type: ignore[arg-type]


def _arithmetic() -> st.SearchStrategy[T]:
    def extend(inner: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
        return st.one_of(
            st.builds(lambda x: T("neg", args=(x,)), inner),
            st.builds(
                lambda op, a, b: T("bin", op, (a, b)), st.sampled_from("+-*/"), inner, inner
            ),
            st.builds(lambda x: T("call", "abs", (x,)), inner),
            st.builds(
                lambda f, a, b: T("call", f, (a, b)), st.sampled_from(["min", "max"]), inner, inner
            ),
        )

    return st.recursive(literals() | leaves(), extend, max_leaves=8)


ARITHMETIC = _arithmetic()


def _conditions() -> st.SearchStrategy[T]:
    comparisons = st.builds(
        lambda op, a, b: T("cmp", op, (a, b)),
        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        ARITHMETIC,
        ARITHMETIC,
    )

    def extend(inner: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
        return st.one_of(
            st.builds(lambda x: T("not", args=(x,)), inner),
            st.builds(
                lambda op, a, b: T(op, args=(a, b)), st.sampled_from(["and", "or"]), inner, inner
            ),
        )

    return st.recursive(comparisons, extend, max_leaves=5)


CONDITIONS = _conditions()
SPACE = st.sampled_from(["", " ", "  ", "\t"])
EXTRA = st.integers(0, 9)  # 0: parentheses where none are needed
NUMBERS = st.integers(-(10**13), 10**13) | st.sampled_from([0, 0, 1, -1, 2, 10**10])
MISSING = st.integers(0, 5)  # 0: a prev is missing
_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6}


def render(tree: T, draw: st.DrawFn) -> tuple[str, int]:
    """Text for ``tree`` with parentheses where precedence needs them, some where it does not,
    and random spacing; with the precedence of its outermost operator."""

    def wrap(node: T, at_least: int) -> str:
        text, prec = render(node, draw)
        if prec < at_least or draw(EXTRA) == 0:
            return f"({draw(SPACE)}{text}{draw(SPACE)})"
        return text

    def pad(word: str) -> str:
        return f"{draw(SPACE)}{word}{draw(SPACE)}"

    if tree.kind in ("num", "leaf"):
        return tree.text, 8
    if tree.kind == "neg":
        return "-" + wrap(tree.args[0], 8), 7
    if tree.kind == "call":
        return f"{tree.op}({','.join(pad(render(a, draw)[0]) for a in tree.args)})", 8
    if tree.kind == "not":
        return "not " + wrap(tree.args[0], 3), 3
    op = tree.kind if tree.kind in ("and", "or") else tree.op
    prec = _PREC["cmp" if tree.kind == "cmp" else op]
    gap = " " if op in ("and", "or") else ""
    left, right = tree.args
    return f"{wrap(left, prec)}{gap}{pad(op)}{gap}{wrap(right, prec + 1)}", prec


class _Zero(Exception):
    pass


def oracle(tree: T, values: Mapping[Leaf, int | None]) -> bool:
    """The spec read naively: any missing leaf or zero divisor anywhere makes it false."""
    if any(value is None for value in values.values()):
        return False
    try:
        return _holds(tree, values)
    except _Zero:
        return False


def _holds(tree: T, values: Mapping[Leaf, int | None]) -> bool:
    if tree.kind == "cmp":
        a, b = (_number(side, values) for side in tree.args)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[
            tree.op
        ]
    truths = [_holds(item, values) for item in tree.args]  # all of them: a zero counts anywhere
    if tree.kind == "not":
        return not truths[0]
    return all(truths) if tree.kind == "and" else any(truths)


def _number(tree: T, values: Mapping[Leaf, int | None]) -> Fraction:
    if tree.kind == "num":
        return tree.value
    if tree.kind == "leaf":
        assert tree.leaf is not None
        return Fraction(values[tree.leaf] or 0)
    args = [_number(a, values) for a in tree.args]
    if tree.kind == "neg":
        return -args[0]
    if tree.op in ("abs", "min", "max"):
        return abs(args[0]) if tree.op == "abs" else min(args) if tree.op == "min" else max(args)
    a, b = args
    if tree.op == "+":
        return a + b
    if tree.op == "-":
        return a - b
    if tree.op == "*":
        return a * b
    if b == 0:
        raise _Zero
    return a / b


def tree_leaves(tree: T) -> list[Leaf]:
    if tree.leaf is not None:
        return [tree.leaf]
    return [leaf for part in tree.args for leaf in tree_leaves(part)]


@st.composite
def cases(draw: st.DrawFn) -> tuple[T, str, dict[Leaf, int | None]]:
    tree = draw(CONDITIONS)
    text = render(tree, draw)[0]
    values: dict[Leaf, int | None] = {}
    for leaf in tree_leaves(tree):
        missing = leaf.kind == "prev" and draw(MISSING) == 0
        values.setdefault(leaf, None if missing else draw(NUMBERS))
    return tree, text, values


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_compiled_code_direct_evaluation_and_the_spec_agree(
    case: tuple[T, str, dict[Leaf, int | None]],
) -> None:
    tree, text, values = case
    try:
        expression = parse_expression(text)
    except ExprError as problem:
        assert (
            len(text) > MAX_LENGTH
            or "nested deeper" in str(problem)
            or ("names no column" in str(problem) and not tree_leaves(tree))
        ), (text, problem)
        return
    expected = oracle(tree, values)
    assert expression.evaluate(values) is expected, text
    assert compiled(expression, values) is expected, (text, expression.python(names(expression)))
    long_names = "a_leaf_with_a_name_long_enough_to_make_sums_use_fractions_"
    assert compiled(expression, values, long_names) is expected, text
    assert expression.leaves == tuple(dict.fromkeys(tree_leaves(tree)))
    again = parse_expression(expression.readable())  # the readable line means the same
    assert again.readable() == expression.readable()
    assert again.evaluate(values) is expected


_PIECES = [
    "SELN_CNQN", "net_buy_value", "prev", "delta", "day_max", "abs", "min", "(", ")", ",",
    " ", "and", "or", "not", "<", "<=", "==", "!=", "+", "-", "*", "/", "**", ".", "'",
    "100억", "1.5조", "3천만", "5m", "0", "1e5", "억", "원", "_", "0.5", "((((", "__import__",
]  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join) | st.text(max_size=60))
def test_junk_is_refused_with_an_expr_error_and_nothing_else(text: str) -> None:
    try:
        expression = parse_expression(text)
    except ExprError as problem:
        assert problem.offset is None or 0 <= problem.offset <= len(text)
        return
    values: dict[Leaf, int | None] = dict.fromkeys(expression.leaves, 1)
    assert compiled(expression, values) == expression.evaluate(values)
    parse_expression(expression.readable())


def test_expressions_are_values() -> None:
    one, two = parse_expression("SELN_CNQN > 1"), parse_expression("SELN_CNQN > 1")
    assert one == two and hash(one) == hash(two)
    assert "tree" not in repr(one)


_WRAPPERS = [
    "abs({})", "min({}, SELN_CNQN / 3)", "max(SHNU_CNQN, {})", "({}) / SHNU_CNQN",
    "SHNU_CNQN / ({})", "-({})", "({} + SELN_CNQN / 7)", "({}) * 0.5", "({} - prev(SELN_CNQN))",
]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(_WRAPPERS), min_size=20, max_size=MAX_DEPTH),
    st.integers(-3, 3),
    st.integers(-3, 3),
)
def test_deep_expressions_compile_and_agree(wrappers: list[str], seller: int, buyer: int) -> None:
    """Near the depth limit, the generated code stays within what Python can compile."""
    text = "SELN_CNQN"
    for wrapper in wrappers:
        text = wrapper.format(text)
    try:
        expression = parse_expression(f"{text} > 0")
    except ExprError as problem:
        assert "nested deeper" in str(problem) or "longer than" in str(problem)
        return
    values = {SELL: seller, BUY: buyer, Leaf("prev", "SELN_CNQN"): seller - 1}
    assert compiled(expression, values) == expression.evaluate(values)
