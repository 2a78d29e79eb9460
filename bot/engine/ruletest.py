"""`pgmbot rules check` and `pgmbot rules test`: rule files validated, and rules unit-tested.

A rule test file (see rules/tests/ and docs/RULES.md) gives rules (inline ``rules:`` or
``rule_files:`` relative to the test file), then ``tests:``, each with input ticks and the alerts
expected. Ticks are a list (``ticks:``) or a compact ``series:`` of values one ``interval`` apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

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
from bot.engine.spec import (
    RulesError,
    RuleSet,
    build_ruleset,
    document_rules,
    load_rules,
    parse_amount,
    parse_field,
)
from bot.ticks import FIELD_INDEX, NUMERIC_FIELDS, Tick, hhmmss_seconds

DEFAULT_DAY = dt.date(2026, 1, 2)


def _clock(value: object) -> str:
    """``"09:00:05"`` or ``"090005"`` -> ``"090005"`` (quote times in YAML)."""
    text = str(value).replace(":", "")
    hhmmss_seconds(text)  # raises on a bad time
    return text


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
        text += f" value={self.value:g}" if self.value is not None else ""
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
        """The ticks this case feeds the engine. Raises ValueError with a readable message."""
        if self.series is not None:
            columns = {
                parse_field(name): values.split() if isinstance(values, str) else values
                for name, values in self.series.items()
            }
            length = max(len(v) for v in columns.values())
            start = hhmmss_seconds(self.start)
            rows = []
            for i in range(length):
                t = start + i * self.interval
                row: dict[str, Any] = {"time": f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"}
                for name, values in columns.items():
                    row[name] = values[min(i, len(values) - 1)]  # a short series holds its last
                rows.append(row)
        else:
            rows = self.ticks or []
        return [self._tick(row) for row in rows]

    def _tick(self, row: dict[str, Any]) -> Tick:
        row = dict(row)
        hhmmss = _clock(row.pop("time", None))
        ticker = normalize_ticker(row.pop("ticker", self.ticker))
        values = [0] * len(NUMERIC_FIELDS)
        for name, raw in row.items():
            number = parse_amount(raw)
            values[FIELD_INDEX[parse_field(name)] - 4] = int(number)
        return Tick(ticker, self.date, hhmmss, hhmmss_seconds(hhmmss), *values)


class RuleTestFile(_Model):
    rule_files: list[str] | None = None
    rules: list[Any] | None = None  # validated as rules, with positions, separately
    tests: list[Case]


def _show(hhmmss: str) -> str:
    return f"{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}"


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
        f"{a.rule} {a.ticker} {_show(a.tick.hhmmss)} value={a.value} message={a.message!r}"
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


def run_test_file(path: Path, out: TextIO | None = None) -> tuple[int, int]:
    """Run one rule test file, printing each case; returns (passed, failed). Raises RulesError."""
    out = out or sys.stdout
    try:
        doc = yamlpos.load(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise RulesError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yamlpos.YamlError as exc:
        raise RulesError([str(exc)]) from None
    try:
        spec = RuleTestFile.model_validate(doc.data)
    except ValidationError as exc:
        raise RulesError(yamlpos.validation_messages(exc, doc)) from None
    ruleset = _ruleset_of(spec, doc, path)
    passed = failed = 0
    for index, case in enumerate(spec.tests):
        try:
            missing, unexpected = run_case(ruleset, case)
        except (ValueError, KeyError) as exc:
            where = doc.position(("tests", index))
            raise RulesError([f"{where}: tests.{index}: {exc}"]) from None
        if missing or unexpected:
            failed += 1
            out.write(f"FAIL {path}: {case.name}\n")
            out.writelines(f"  - expected, not fired: {line}\n" for line in missing)
            out.writelines(f"  + fired, not expected: {line}\n" for line in unexpected)
        else:
            passed += 1
            out.write(f"ok   {path}: {case.name}\n")
    return passed, failed


def test_command(args: argparse.Namespace) -> int:
    """`pgmbot rules test FILE...`: exit 0 when every case passes."""
    passed = failed = 0
    for path in args.files:
        try:
            ok, bad = run_test_file(Path(path))
        except RulesError as exc:
            print(*exc.problems, sep="\n", file=sys.stderr)
            return 2
        passed, failed = passed + ok, failed + bad
    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


test_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def check_command(args: argparse.Namespace) -> int:
    """`pgmbot rules check [PATH]`: a line per rule and exit 0, or every error and exit 1."""
    try:
        ruleset = load_rules(args.path)
    except RulesError as exc:
        print(*exc.problems, sep="\n", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.path}", file=sys.stderr)
        return 1
    for line in ruleset.summary_lines():
        print(line)
    print(f"{len(ruleset.rules)} rules OK in {len(ruleset.files)} file(s)")
    return 0
