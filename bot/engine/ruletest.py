"""`pgmbot rules check` and `pgmbot rules test`: rule files validated, and rules unit-tested.

A rule test file (see rules/tests/ and docs/RULES.md) gives rules (inline ``rules:`` or
``rule_files:`` relative to the test file), then ``tests:``, each with input ticks and the alerts
expected. Ticks are a list (``ticks:``) or a compact ``series:`` of values one ``interval`` apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from bot import yamlpos
from bot.alerts import Alert
from bot.config import normalize_ticker
from bot.engine.durations import parse_duration
from bot.engine.evaluate import Engine
from bot.engine.rule_types import RuleSet, parse_amount, parse_field, unit_problem
from bot.engine.spec import (
    RulesError,
    build_ruleset,
    document_rules,
    load_rules,
    overlooked_files,
    read_yaml,
)
from bot.ticks import FIELD_INDEX, NUMERIC_FIELDS, Tick, hhmmss_seconds

DEFAULT_DAY = dt.date(2026, 1, 2)
T = TypeVar("T")


def _clock(value: object) -> str:
    """``"09:00:05"``, ``"9:0:5"`` or ``"090005"`` -> ``"090005"``."""
    text = str(value).strip()
    parts = text.split(":")
    if len(parts) == 3 and all(part.isdigit() and len(part) <= 2 for part in parts):
        text = "".join(part.zfill(2) for part in parts)
    try:
        hhmmss_seconds(text)
    except ValueError:
        raise ValueError(f'{value!r} is not a time of day (write "09:00:05")') from None
    return text


class CaseProblem(ValueError):
    """A case's input that cannot be used; ``path`` leads to it from the case."""

    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


Clock = Annotated[str, BeforeValidator(_clock)]
Ticker = Annotated[str, BeforeValidator(normalize_ticker)]
Seconds = Annotated[int, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedAlert(_Model):
    rule: str
    time: Clock
    ticker: Ticker | None = None  # default: the case's ticker
    value: Annotated[int | float, BeforeValidator(parse_amount)] | None = None
    message: str | None = None

    def matches(self, alert: Alert, ticker: str) -> bool:
        return (
            alert.rule == self.rule
            and alert.tick.hhmmss == self.time
            and alert.ticker == (self.ticker or ticker)
            and (self.value is None or alert.value == self.value)
            and (self.message is None or alert.message == self.message)
        )

    def describe(self, ticker: str) -> str:
        text = f"{self.rule} {self.ticker or ticker} {_show(self.time)}"
        text += f" value={_number(self.value)}" if self.value is not None else ""
        return text + (f" message={self.message!r}" if self.message is not None else "")


class Case(_Model):
    name: str
    ticker: Ticker = "005930"
    date: dt.date = DEFAULT_DAY
    start: Clock = "090000"  # series: time of the first tick
    interval: Seconds = 1  # series: seconds between ticks
    series: dict[str, list[Any] | str] | None = None  # field -> values (list or "1 2 3")
    ticks: list[dict[str, Any]] | None = None  # each: time, optional ticker, field values
    expect: list[ExpectedAlert] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.series is None) == (self.ticks is None):
            raise ValueError("a test case needs exactly one of series, ticks")
        return self

    def input_ticks(self) -> list[Tick]:
        """The ticks this case feeds the engine. Raises CaseProblem."""
        if self.series is not None:
            rows, paths = self._series_rows(self.series), None
        else:
            rows = self.ticks or []
            paths = [("ticks", i) for i in range(len(rows))]
        ticks: list[Tick] = []
        last: dict[str, Tick] = {}
        for i, row in enumerate(rows):
            at = paths[i] if paths else ("series",)
            tick = self._tick(row, at)
            before = last.get(tick.ticker)
            if before is not None and tick.seconds < before.seconds:
                raise CaseProblem(
                    f"time goes back: {_show(tick.hhmmss)} after {_show(before.hhmmss)} "
                    "(list a stock's ticks in time order)",
                    (*at, "time"),
                )
            last[tick.ticker] = tick
            ticks.append(tick)
        return ticks

    def _series_rows(self, series: dict[str, list[Any] | str]) -> list[dict[str, Any]]:
        if not series:
            raise CaseProblem(
                "a series needs a column and its values (NTBY_TR_PBMN: 0 1억)", ("series",)
            )
        columns = {}
        for name, values in series.items():
            field = _parsed(parse_field, name, ("series", name))
            columns[field] = values.split() if isinstance(values, str) else values
            if not columns[field]:
                raise CaseProblem(f"{name}: no values", ("series", name))
        start = hhmmss_seconds(self.start)
        rows = []
        for i in range(max(len(v) for v in columns.values())):
            t = start + i * self.interval
            row: dict[str, Any] = {"time": f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"}
            for name, values in columns.items():
                row[name] = values[min(i, len(values) - 1)]  # a short series holds its last
            rows.append(row)
        return rows

    def _tick(self, row: dict[str, Any], at: tuple[str | int, ...]) -> Tick:
        """One input tick; ``at`` locates it in the case (a series' ticks share one place)."""
        row = dict(row)
        if "time" not in row:
            raise CaseProblem('a tick needs a time (time: "09:00:05")', at)
        listed = at[0] == "ticks"  # a listed tick's keys have places of their own
        hhmmss = _parsed(_clock, row.pop("time"), (*at, "time") if listed else at)
        ticker = self.ticker  # the case's, checked with it
        if "ticker" in row:
            ticker = _parsed(normalize_ticker, row.pop("ticker"), (*at, "ticker"))
        values = [0] * len(NUMERIC_FIELDS)
        for name, raw in row.items():
            where = (*at, name) if listed else ("series", name)
            field = _parsed(parse_field, name, where)
            values[FIELD_INDEX[field] - 4] = _parsed(partial(_tick_value, field), raw, where)
        return Tick(ticker, self.date, hhmmss, hhmmss_seconds(hhmmss), *values)


def _parsed(parse: Callable[[Any], T], value: Any, where: tuple[str | int, ...]) -> T:
    """``parse(value)``; its ValueError becomes a CaseProblem at ``where``."""
    try:
        return parse(value)
    except ValueError as exc:
        raise CaseProblem(str(exc), where) from None


def _tick_value(field: str, raw: object) -> int:
    """A column's value in a test tick: in the column's unit, and whole, as KIS sends it."""
    problem = unit_problem(field, raw)
    if problem:
        raise ValueError(problem)
    number = parse_amount(raw)
    if number != int(number):
        raise ValueError(f"{raw!r}: KIS sends whole numbers")
    return int(number)


class RuleTestFile(_Model):
    rule_files: list[str] | None = None
    rules: list[Any] | None = None  # validated as rules, with positions, separately
    tests: list[Case]


def _show(hhmmss: str) -> str:
    return f"{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}"


def _number(value: float) -> str:
    """Raw, with separators: the same on the expected and the fired side of a diff."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def run_case(ruleset: RuleSet, case: Case) -> tuple[list[str], list[str]]:
    """Run one case on a fresh engine: (missing expected alerts, unexpected alerts)."""
    engine = Engine(ruleset)
    fired = [alert for tick in case.input_ticks() for alert in engine.on_tick(tick)]
    missing = []
    left = list(fired)
    for expected in case.expect:
        match = next((a for a in left if expected.matches(a, case.ticker)), None)
        if match is None:
            missing.append(expected.describe(case.ticker))
        else:
            left.remove(match)
    unexpected = [
        f"{a.rule} {a.ticker} {_show(a.tick.hhmmss)} value={_number(a.value)} "
        f"message={a.message!r}"
        for a in left
    ]
    return missing, unexpected


def _ruleset_of(spec: RuleTestFile, doc: yamlpos.Document, path: Path) -> RuleSet:
    if spec.rules is not None:
        problems: list[str] = []
        located = document_rules(doc, problems)
        if problems:
            raise RulesError(problems)
        return build_ruleset(located, [path])
    files = [(path.parent / name) for name in spec.rule_files or []]
    if not files:
        raise RulesError([f"{doc.position(())}: give the rules: 'rules' or 'rule_files'"])
    merged = [rule for file in files for rule in load_rules(file).rules]
    return RuleSet(tuple(merged), tuple(files))


def _load_test_file(path: Path) -> tuple[RuleTestFile, yamlpos.Document, RuleSet]:
    doc, _text = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise RulesError(
            [f"{doc.position(())}: a rule test file holds 'rules' (or 'rule_files') and 'tests'"]
        )
    try:
        spec = RuleTestFile.model_validate(doc.data)
    except ValidationError as exc:
        raise RulesError(yamlpos.validation_messages(exc, doc)) from None
    ruleset = _ruleset_of(spec, doc, path)
    unknown = [
        f"{doc.position(('tests', i, 'expect', j, 'rule'))}: no rule {expected.rule!r} here "
        f"(the rules: {', '.join(ruleset.ids)})"
        for i, case in enumerate(spec.tests)
        for j, expected in enumerate(case.expect)
        if expected.rule not in ruleset.ids
    ]
    if unknown:
        raise RulesError(unknown)
    return spec, doc, ruleset


def run_test_file(path: Path, out: TextIO | None = None) -> tuple[int, int]:
    """Run one rule test file, printing each case; returns (passed, failed). Raises RulesError."""
    out = out or sys.stdout
    spec, doc, ruleset = _load_test_file(path)
    passed = failed = 0
    for index, case in enumerate(spec.tests):
        where = doc.position(("tests", index))
        try:
            missing, unexpected = run_case(ruleset, case)
        except CaseProblem as exc:
            spot = doc.position(("tests", index, *exc.path))
            raise RulesError([f"{spot}: {case.name}: {exc}"]) from None
        if missing or unexpected:
            failed += 1
            out.write(f"FAIL {where}: {case.name}\n")
            out.writelines(f"  - expected, not fired: {line}\n" for line in missing)
            out.writelines(f"  + fired, not expected: {line}\n" for line in unexpected)
        else:
            passed += 1
            out.write(f"ok   {where}: {case.name}\n")
    return passed, failed


def test_command(args: argparse.Namespace) -> int:
    """`pgmbot rules test FILE...`: exit 0 when every case of every file passes, 1 when one
    fails, 2 when a file cannot be run (every file is still tried)."""
    passed = failed = broken = 0
    for path in args.files:
        try:
            ok, bad = run_test_file(Path(path))
        except RulesError as exc:
            broken += 1
            print(*exc.problems, sep="\n", file=sys.stderr)
            continue
        passed, failed = passed + ok, failed + bad
    print(
        f"\n{passed} passed, {failed} failed"
        + (f", {broken} file(s) with errors" if broken else "")
    )
    return 2 if broken else 1 if failed else 0


test_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def check_command(args: argparse.Namespace) -> int:
    """`pgmbot rules check [PATH...]`: a line per rule and exit 0, or every error and exit 1."""
    paths: list[Path] = args.paths
    where = " ".join(map(str, paths))
    for path in paths:
        for file in overlooked_files(path):
            print(f"note: {file} is not read: rule files end in .yaml", file=sys.stderr)
    try:
        ruleset = load_rules(*paths)
    except RulesError as exc:
        print(*exc.problems, sep="\n", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {where}", file=sys.stderr)
        return 1
    for line in ruleset.summary_lines():
        print(line)
    print(f"{len(ruleset.rules)} rules OK in {len(ruleset.files)} file(s)")
    if not ruleset.files:
        print(f"note: no rule files (*.yaml) in {where}", file=sys.stderr)
    return 0
