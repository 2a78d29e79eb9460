"""`pgmbot rules check` and `pgmbot rules test`: rule files validated, and rules unit-tested.

A rule test file (see rules/tests/ and docs/RULES.md) gives rules (inline ``rules:`` or
``rule_files:`` relative to the test file), then ``tests:``, each with input ticks and the alerts
expected. Ticks are a list (``ticks:``) or a compact ``series:`` of values one ``interval`` apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Callable, Mapping
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
from bot.alerts import Alert, Kind
from bot.codes import StockCode, stock_code
from bot.config import ConfigError, rule_sessions
from bot.durations import parse_duration
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
from bot.market.sessions import MinuteRange
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
Seconds = Annotated[int, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedAlert(_Model):
    rule: str
    time: Clock
    ticker: StockCode | None = None  # default: the case's ticker
    value: Annotated[int | float, BeforeValidator(parse_amount)] | None = None
    message: str | None = None
    kind: Kind = "fired"  # or "resolved": the end of what an alert said

    def matches(self, alert: Alert, ticker: str) -> bool:
        return (
            alert.rule == self.rule
            and alert.kind == self.kind
            and alert.tick.hhmmss == self.time
            and alert.ticker == (self.ticker or ticker)
            and (self.value is None or alert.value == self.value)
            and (self.message is None or alert.message == self.message)
        )

    def describe(self, ticker: str) -> str:
        text = f"{self.rule} {self.ticker or ticker} {_show(self.time)}"
        text += " resolved" if self.kind == "resolved" else ""
        text += f" value={_number(self.value)}" if self.value is not None else ""
        return text + (f" message={self.message!r}" if self.message is not None else "")


class Case(_Model):
    name: str
    ticker: StockCode = "005930"
    date: dt.date = DEFAULT_DAY
    start: Clock = "090000"  # series: time of the first tick
    interval: Seconds = 1  # series: seconds between ticks
    # field -> values: a list, "1 2 3", or one number (a column that holds still)
    series: dict[str, list[Any] | str | int | float] | None = None
    ticks: list[dict[str, Any]] | None = None  # each: time, optional ticker, field values
    expect: list[ExpectedAlert] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.series is None) == (self.ticks is None):
            raise ValueError("a test case needs exactly one of series, ticks")
        return self

    def input_ticks(self, problems: list[CaseProblem]) -> list[Tick]:
        """The ticks this case feeds the engine; every input that cannot be used is added to
        ``problems`` (the ticks are then of no use)."""
        if self.series is not None:
            rows = self._series_rows(self.series, problems)
            places: list[tuple[str | int, ...]] = [("series",)] * len(rows)
        else:
            rows = self.ticks or []
            places = [("ticks", i) for i in range(len(rows))]
        ticks: list[Tick] = []
        last: dict[str, Tick] = {}
        for row, at in zip(rows, places, strict=True):
            try:
                tick = self._tick(row, at)
            except CaseProblem as exc:
                if all((str(exc), exc.path) != (str(p), p.path) for p in problems):
                    problems.append(exc)  # a series' short column repeats its last value
                continue
            before = last.get(tick.ticker)
            if before is not None and tick.seconds < before.seconds:
                problems.append(
                    CaseProblem(
                        f"time goes back: {_show(tick.hhmmss)} after {_show(before.hhmmss)} "
                        "(list a stock's ticks in time order)",
                        (*at, "time"),
                    )
                )
                continue
            last[tick.ticker] = tick
            ticks.append(tick)
        return ticks

    def _series_rows(
        self, series: dict[str, list[Any] | str | int | float], problems: list[CaseProblem]
    ) -> list[dict[str, Any]]:
        if not series:
            problems.append(
                CaseProblem(
                    "a series needs a column and its values (NTBY_TR_PBMN: 0 1억)", ("series",)
                )
            )
            return []
        columns = {}
        for name, values in series.items():
            try:
                field = _parsed(parse_field, name, ("series", name))
            except CaseProblem as exc:
                problems.append(exc)
                continue
            columns[field] = (
                values.split()
                if isinstance(values, str)
                else values
                if isinstance(values, list)
                else [values]
            )
            if not columns[field]:
                problems.append(CaseProblem(f"{name}: no values", ("series", name)))
        if len(columns) < len(series) or not all(columns.values()):
            return []
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
            ticker = _parsed(stock_code, row.pop("ticker"), (*at, "ticker"))
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
    tests: list[Any]  # each validated as a Case of its own: every case's mistakes are named


@dataclasses.dataclass
class Outcome:
    """What a rule test file (or several) came to."""

    passed: int = 0
    failed: int = 0
    not_run: int = 0  # cases with a mistake, or whose rules have one
    problems: list[str] = dataclasses.field(
        default_factory=list
    )  # file:line:column: what is wrong


def _show(hhmmss: str) -> str:
    return f"{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}"


def _number(value: float) -> str:
    """Raw, with separators: the same on the expected and the fired side of a diff."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def run_case(ruleset: RuleSet, case: Case, ticks: list[Tick]) -> tuple[list[str], list[str]]:
    """Run one case on a fresh engine: (missing expected alerts, unexpected alerts)."""
    engine = Engine(ruleset)
    fired = [alert for tick in ticks for alert in engine.on_tick(tick)]
    missing = []
    left = list(fired)
    for expected in case.expect:
        match = next((a for a in left if expected.matches(a, case.ticker)), None)
        if match is None:
            missing.append(expected.describe(case.ticker))
        else:
            left.remove(match)
    unexpected = [
        f"{a.rule} {a.ticker} {_show(a.tick.hhmmss)}"
        + (" resolved" if a.kind == "resolved" else "")
        + f" value={_number(a.value)} message={a.message!r}"
        for a in left
    ]
    return missing, unexpected


def _spec_of(doc: yamlpos.Document, problems: list[str]) -> RuleTestFile | None:
    """The file's parts, or None (with the problems) when it does not have them."""
    if not isinstance(doc.data, dict):
        problems.append(
            f"{doc.position(())}: a rule test file holds 'rules' (or 'rule_files') and 'tests'"
        )
        return None
    try:
        return RuleTestFile.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(yamlpos.validation_messages(exc, doc))
        return None


def _ruleset_of(
    spec: RuleTestFile,
    doc: yamlpos.Document,
    path: Path,
    problems: list[str],
    text: str,
    sessions: Mapping[str, MinuteRange] | None,
) -> RuleSet | None:
    """The rules the cases run on, or None (with the problems) when they have mistakes."""
    found: list[str] = []
    ruleset: RuleSet | None = None
    try:
        if spec.rules is not None:
            if spec.rule_files is not None:
                found.append(
                    f"{doc.key_position(('rule_files',))}: give 'rules' or 'rule_files', not both"
                )
            ruleset = build_ruleset(document_rules(doc, found, sessions, text), [path])
        elif spec.rule_files:
            files = (path.parent / name for name in spec.rule_files)
            ruleset = load_rules(*files, sessions=sessions)
        else:
            found.append(f"{doc.position(())}: give the rules: 'rules' or 'rule_files'")
    except RulesError as exc:
        found.extend(exc.problems)
    problems.extend(found)
    return None if found else ruleset


def _ready_case(
    doc: yamlpos.Document, index: int, raw: Any, ruleset: RuleSet | None, problems: list[str]
) -> tuple[Case, list[Tick]] | None:
    """Case ``index`` and its ticks, or None (with the problems) when it has mistakes."""
    name = raw.get("name") if isinstance(raw, dict) else None
    lead = f"{name if isinstance(name, str) else f'case {index + 1}'}: "
    try:
        case = Case.model_validate(raw)
    except ValidationError as exc:
        problems.extend(yamlpos.validation_messages(exc, doc, ("tests", index), lead))
        return None
    inputs: list[CaseProblem] = []
    ticks = case.input_ticks(inputs)
    found = [f"{doc.position(('tests', index, *p.path))}: {lead}{p}" for p in inputs]
    if ruleset is not None:
        found.extend(
            f"{doc.position(('tests', index, 'expect', j, 'rule'))}: {lead}no rule "
            f"{expected.rule!r} here (the rules: {', '.join(ruleset.ids)})"
            for j, expected in enumerate(case.expect)
            if expected.rule not in ruleset.ids
        )
    problems.extend(found)
    return None if found else (case, ticks)


def run_test_file(
    path: Path,
    out: TextIO | None = None,
    sessions: Mapping[str, MinuteRange] | None = None,
) -> Outcome:
    """Run one rule test file, printing each case. Every mistake in the file is in the outcome's
    problems, and every case without one still runs (on rules without one). ``sessions``: what
    ``hours`` names mean (a config's ``market.sessions``; default: the defaults)."""
    out = out or sys.stdout
    outcome = Outcome()
    try:
        doc, text = read_yaml(path)
    except RulesError as exc:
        outcome.problems.extend(exc.problems)
        return outcome
    spec = _spec_of(doc, outcome.problems)
    if spec is None:
        return outcome
    ruleset = _ruleset_of(spec, doc, path, outcome.problems, text, sessions)
    for index, raw in enumerate(spec.tests):
        ready = _ready_case(doc, index, raw, ruleset, outcome.problems)
        if ready is None or ruleset is None:
            outcome.not_run += 1
            continue
        case, ticks = ready
        where = doc.position(("tests", index))
        missing, unexpected = run_case(ruleset, case, ticks)
        if missing or unexpected:
            outcome.failed += 1
            out.write(f"FAIL {where}: {case.name}\n")
            out.writelines(f"  - expected, not fired: {line}\n" for line in missing)
            out.writelines(f"  + fired, not expected: {line}\n" for line in unexpected)
        else:
            outcome.passed += 1
            out.write(f"ok   {where}: {case.name}\n")
    return outcome


def test_command(args: argparse.Namespace) -> int:
    """`pgmbot rules test FILE...`: exit 0 when every case of every file passes, 1 when one
    fails, 2 when a file has a mistake (every file, and every case without one, still runs)."""
    try:
        sessions = rule_sessions(args.config)
    except ConfigError as exc:
        exc.report("the config has errors")
        return 2
    total = Outcome()
    broken = 0
    for path in args.files:
        outcome = run_test_file(Path(path), sessions=sessions)
        if outcome.problems:
            broken += 1
            print(*outcome.problems, sep="\n", file=sys.stderr)
        total.passed += outcome.passed
        total.failed += outcome.failed
        total.not_run += outcome.not_run
    print(
        f"\n{total.passed} passed, {total.failed} failed"
        + (f", {total.not_run} not run" if total.not_run else "")
        + (f", {broken} file(s) with errors" if broken else "")
    )
    return 2 if broken else 1 if total.failed else 0


test_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def check_command(args: argparse.Namespace) -> int:
    """`pgmbot rules check [PATH...]`: a line per rule and exit 0, or every error and exit 1."""
    paths: list[Path] = args.paths
    where = " ".join(map(str, paths))
    for path in paths:
        for file in overlooked_files(path):
            print(f"note: {file} is not read: rule files end in .yaml", file=sys.stderr)
    try:
        ruleset = load_rules(*paths, sessions=rule_sessions(args.config))
    except ConfigError as exc:
        exc.report("the config has errors")
        return 1
    except RulesError as exc:
        exc.report()
        print(f"{len(exc.problems)} problem(s) in {where}", file=sys.stderr)
        return 1
    for line in ruleset.summary_lines():
        print(line)
    print(f"{len(ruleset.rules)} rules OK in {len(ruleset.files)} file(s)")
    if not ruleset.files:
        print(f"note: no rule files (*.yaml) in {where}", file=sys.stderr)
    return 0
