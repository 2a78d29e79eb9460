"""The position-keeping YAML loader: values, traps, duplicate keys, positions."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.yamlpos import MAX_DEPTH, Position, YamlError, load

#: The "billion laughs" of YAML: nine lines, 9**9 (387 million) strings once expanded.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]\n"
    for before, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_plain_scalars_mean_what_a_trader_means() -> None:
    doc = load("a: NO\nb: 12:30\nc: 005930\nd: 10_000\ne: -1.5\nf: true\ng: ~\nh: yes\n", "f")
    assert doc.data == {
        "a": "NO",
        "b": "12:30",
        "c": "005930",
        "d": 10000,
        "e": -1.5,
        "f": True,
        "g": None,
        "h": "yes",
    }


def test_quoted_scalars_are_strings() -> None:
    assert load("a: '1'\nb: \"true\"\n", "f").data == {"a": "1", "b": "true"}


def test_positions_are_one_based_line_and_column() -> None:
    doc = load("rules:\n  - id: x\n    type: threshold\n", "r.yaml")
    assert doc.position(("rules", 0, "type")) == Position("r.yaml", 3, 11)
    assert doc.position(("rules", 0, "missing")) == Position("r.yaml", 2, 5)
    assert str(doc.position(("rules",))) == "r.yaml:2:3"


def test_duplicate_keys_are_errors_with_position() -> None:
    with pytest.raises(YamlError) as info:
        load("a: 1\nb:\n  c: 1\n  c: 2\n", "d.yaml")
    assert str(info.value) == "d.yaml:4:3: duplicate key 'c' (first at line 3)"


@pytest.mark.parametrize(
    ("text", "where", "advice"),
    [
        ("a: 1\nb c\nd: 2\n", "2:1", "a key needs a colon and a space after it"),
        ('a: 1\nb: "open\nc: 2\n', "2:4", "a quote or bracket is opened and never closed"),
        ("a:\n  b: 1\n c: 2\n", "3:2", "the indentation of this line does not match"),
        ("a:\n\t- 1\n", "2:1", "indent with spaces; YAML does not allow tabs"),
        ("a: @b\n", "1:4", "a value cannot start with this character: quote it"),
        ("a: 1\n   b: 2\n", "2:5", "a ': ' where none can be: check this line's indentation"),
        ("a: [1, 2\nb: 3\n", "1:4", "a [list] is not closed with ]"),
        ("a: {b: 1\n", "1:4", "a {mapping} is not closed with }"),
        ("a: x: y\n", "1:5", "a ': ' where none can be: check this line's indentation, or"),
    ],
)
def test_syntax_errors_say_what_to_do_where_the_slip_is(
    text: str, where: str, advice: str
) -> None:
    with pytest.raises(YamlError) as info:
        load(text, "s.yaml")
    assert str(info.value).startswith(f"s.yaml:{where}: {advice}"), str(info.value)
    assert "(YAML: " in str(info.value)  # PyYAML's own words, for whoever knows them


def test_merge_keys_are_refused_rather_than_half_understood() -> None:
    with pytest.raises(YamlError) as info:
        load("base: &b {type: threshold}\nrules:\n  - <<: *b\n    id: e\n", "m.yaml")
    assert str(info.value).startswith("m.yaml:3:5: '<<' (merging keys from an anchor) is not")


def test_an_alias_bomb_is_refused_at_its_first_alias_before_anything_is_built() -> None:
    assert len(ALIAS_BOMB.encode()) < 450
    tracemalloc.start()
    try:
        with pytest.raises(YamlError) as info:
            load(ALIAS_BOMB, "bomb.yaml")
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        "bomb.yaml:2:8: '*a' repeats a value marked '&a': anchors (&name) and aliases (*name) "
        "are not supported: write the value out"
    )
    assert peak < 1_000_000  # expanded, it would need gigabytes


def test_an_anchor_is_refused_even_when_nothing_repeats_it() -> None:
    with pytest.raises(YamlError) as info:
        load("a: 1\nb: &base\n  c: 2\n", "a.yaml")
    assert str(info.value).startswith("a.yaml:2:4: '&base' marks a value to repeat: anchors")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "1:67"),  # a RecursionError, before
        ("a: " + "{b: " * 5000 + "}" * 5000 + "\n", f"1:{4 + 4 * (MAX_DEPTH - 1)}"),
        ("a:\n" + "".join(" " * i + "- \n" for i in range(1, 5000)), "65:65"),
    ],
)
def test_nesting_deeper_than_the_limit_is_refused_where_it_gets_too_deep(
    text: str, where: str
) -> None:
    with pytest.raises(YamlError) as info:
        load(text, "deep.yaml")
    assert str(info.value) == (
        f"deep.yaml:{where}: nested more than 64 levels deep: a rule or setting never needs that"
    )


def test_nesting_up_to_the_limit_loads() -> None:
    depth = MAX_DEPTH - 1  # lists inside the top-level mapping
    assert load("a: " + "[" * depth + "]" * depth + "\n", "f").data is not None


def test_a_lone_surrogate_is_refused_and_a_pair_of_escapes_is_one_character() -> None:
    with pytest.raises(YamlError) as info:
        load('a: ok\nmessage: "{ticker} \\ud800"\n', "s.yaml")
    assert str(info.value) == (
        "s.yaml:2:10: \\ud800 is half of a character (a lone surrogate): write the character "
        "itself"
    )
    with pytest.raises(YamlError, match=r"^s.yaml:1:1: \\udc00 is half"):
        load('"\\udc00": 1\n', "s.yaml")  # in a key as well
    assert load('a: "\\ud83d\\ude00 가"\n', "s").data == {"a": "\U0001f600 가"}


def test_python_tags_are_refused() -> None:
    with pytest.raises(YamlError):
        load("a: !!python/object/apply:os.system ['true']\n", "p.yaml")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integers_round_trip(number: int) -> None:
    assert load(f"n: {number}\n", "i").data == {"n": number}


@given(st.from_regex(r"0[0-9]{5}", fullmatch=True))
def test_zero_led_codes_stay_strings(code: str) -> None:
    assert load(f"t: {code}\n", "t").data == {"t": code}
