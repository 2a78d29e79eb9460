"""The catalogues: every language says every message, with the same placeholders."""

from __future__ import annotations

import string

import pytest

from bot.messages import CATALOGUES, Catalogue


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
