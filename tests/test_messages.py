"""The catalogues: every language says every message, with the same placeholders."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from bot.market.sessions import SESSION_NAMES
from bot.messages import CATALOGUES, Catalogue, Locale
from bot.notify.commands import REGISTRY
from bot.notify.replies import problem
from bot.notify.voice import Voice
from bot.service import CommandError


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_catalogue_has_the_same_keys() -> None:
    keys = {locale: set(messages) for locale, messages in CATALOGUES.items()}
    assert keys["ko"] == keys["en"], keys["ko"] ^ keys["en"]


@pytest.mark.parametrize("key", sorted(CATALOGUES["ko"]))
def test_a_message_has_the_same_placeholders_in_every_language(key: str) -> None:
    assert _placeholders(CATALOGUES["ko"][key]) == _placeholders(CATALOGUES["en"][key])


def test_korean_is_the_default_and_an_unknown_key_is_an_error() -> None:
    assert Catalogue()("demo.tag") == "[모의 데이터]"
    assert Catalogue("en")("demo.tag") == "[simulated data]"
    with pytest.raises(KeyError):
        Catalogue()("no.such.message")


# -- every key the code uses is in the catalogue, with the values its template wants -----------

BOT = Path(__file__).resolve().parent.parent / "bot"
PREFIXES = {key.split(".")[0] for key in CATALOGUES["ko"]}
_KEY = re.compile(r"[a-z_]+(?:\.[a-z_]+)+")


def _sources() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(BOT.rglob("*.py"))
        if "messages" not in path.parts
    ]


def _is_say(call: ast.Call) -> bool:
    """``say(...)``, ``voice.say(...)``, ``notices.say(...)``, ``CommandError(...)``."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in {"say", "CommandError", "catalogue"}


def test_every_message_the_code_says_exists_with_the_values_it_needs() -> None:
    checked = 0
    for path, tree in _sources():
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_say(n)):
            first = call.args[0] if call.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue  # a key made at run time: checked below by what makes it
            key = first.value
            where = f"{path.relative_to(BOT.parent)}:{call.lineno}"
            assert key in CATALOGUES["ko"], f"{where}: {key!r} is in no catalogue"
            if any(k.arg is None for k in call.keywords):
                continue  # **values
            given = {k.arg for k in call.keywords if k.arg != "kind"}
            assert given == _placeholders(CATALOGUES["ko"][key]), f"{where}: {key!r}"
            checked += 1
    assert checked > 60  # the scan sees the code's calls


def test_every_key_like_text_in_the_code_is_in_the_catalogue() -> None:
    """Keys chosen by a condition (``"status.rules_failed" if … else "status.rules"``)."""
    speaking = {"service.py", "notices.py", "app.py", "live_rules.py", "housekeeping.py"}
    for path, tree in _sources():
        if "notify" not in path.parts and path.name not in speaking:
            continue  # the store's SQL names (alerts.id) are no messages
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value
            if _KEY.fullmatch(text) and text.split(".")[0] in PREFIXES:
                assert text in CATALOGUES["ko"], f"{path.name}:{node.lineno}: {text!r}"


def test_every_command_has_its_usage_and_summary_and_every_session_its_tag() -> None:
    assert len(REGISTRY) >= 10
    for entry in REGISTRY:
        for key in (entry.args_key, entry.summary_key):
            assert key in CATALOGUES["ko"], entry.name
    for name in SESSION_NAMES:
        assert name == "regular" or f"session.{name}" in CATALOGUES["ko"]
    assert "session.closed" in CATALOGUES["ko"]


@pytest.mark.parametrize("locale", ["ko", "en"])
def test_every_template_renders_with_its_placeholders(locale: Locale) -> None:
    say = Catalogue(locale)
    for key, template in CATALOGUES[locale].items():
        values: dict[str, object] = {name: 1.5 for name in _placeholders(template)}
        if key.startswith("time.date"):
            values = {"year": 2024, "month": 6, "day": 3, "weekday": "월"}
        assert say(key, **values) or key.endswith(".args")  # no arguments: empty


def test_a_command_error_is_said_in_the_voice_language_or_shown_as_its_own_text() -> None:
    error = CommandError("error.count_range", most=50)
    assert problem(Voice(), error) == "개수는 1부터 50까지입니다."
    assert problem(Voice(say=Catalogue("en")), error) == "The count must be between 1 and 50."
    assert str(error) == "error.count_range"  # what the logs say
    assert problem(Voice(), CommandError("이미 만든 문장")) == "이미 만든 문장"  # not a key
