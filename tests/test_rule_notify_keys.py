"""The rule keys of notification control, on every rule type: ``notify: silent`` (default
loud) and ``to`` (chat ids, or names of the config's ``chats``), errors at file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.engine.spec import RulesError, load_rules
from bot.notify.routing import Routing, rule_routes, silent_rules

CHATS = {"desk": -1001234, "me": 42}
HEAD = "rules:\n  - id: r\n    type: {type}\n    field: NTBY_TR_PBMN\n"
BODIES = {
    "threshold": HEAD.format(type="threshold") + "    crosses_above: 100억\n",
    "change": HEAD.format(type="change") + "    window: 5m\n    rise: 20억\n",
    "sign_flip": HEAD.format(type="sign_flip"),
    "expr": 'rules:\n  - id: r\n    type: expr\n    when: "NTBY_TR_PBMN >= 100억"\n',
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, chats: dict[str, int] | None = CHATS) -> list[str]:
    with pytest.raises(RulesError) as info:
        load_rules(path, chats=chats)
    return info.value.problems


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_notify_and_to_are_common_to_the_rule_types(tmp_path: Path, kind: str) -> None:
    body = BODIES[kind]
    path = write(tmp_path, body + "    notify: silent\n    to: [desk, 42]\n")
    (rule,) = load_rules(path, chats=CHATS).rules
    assert rule.notify == "silent" and rule.to == ("desk", 42)
    assert "silent" in rule.summary() and "to desk,42" in rule.summary()
    assert rule_routes([rule], CHATS) == {"r": frozenset({-1001234, 42})}
    assert silent_rules([rule]) == {"r"}
    (loud,) = load_rules(write(tmp_path, body)).rules
    assert loud.notify == "loud" and loud.to is None and rule_routes([loud], CHATS) == {}
    one = load_rules(write(tmp_path, body + "    to: me\n"), chats=CHATS).rules[0]
    assert one.to == ("me",)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            "    to: [desk, nobody]\n",
            "6:16: rule 'r': to.1: 'nobody' is no chat of the config's chats (desk, me)",
        ),
        ("    to: []\n", "6:9: rule 'r': to: list at least one chat"),
        ("    to: [1.5]\n", "6:10: rule 'r': to.0: give a chat id"),
        ("    notify: quiet\n", "6:13: rule 'r': notify:"),
    ],
)
def test_bad_keys_are_errors_at_their_place(tmp_path: Path, keys: str, expected: str) -> None:
    body = BODIES["threshold"] + keys
    (problem,) = problems(write(tmp_path, body))
    assert problem.startswith(f"{tmp_path / 'r.yaml'}:{expected}"), problem


def test_without_the_config_names_are_not_checked(tmp_path: Path) -> None:
    body = BODIES["threshold"] + "    to: [somewhere]\n"
    (rule,) = load_rules(write(tmp_path, body)).rules
    assert rule_routes([rule], CHATS) == {"r": frozenset()}  # left out, and logged


def test_the_config_names_chats(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("chats:\n  desk: -1001234\n  me: 42\n", encoding="utf-8")
    assert load_settings(config, env={}).chats == CHATS


def test_routing_follows_a_reload() -> None:
    class Rule:
        def __init__(self, id: str, to: tuple[int | str, ...] | None, notify: str) -> None:
            self.id, self.to, self.notify = id, to, notify

    current = [(Rule("a", ("desk",), "loud"),)]
    routing = Routing(lambda: current[0], CHATS)
    assert routing.routes() == {"a": frozenset({-1001234})} and routing.silent() == set()
    assert routing.describe("a") == "desk" and routing.describe("b") is None
    current[0] = (Rule("a", None, "silent"),)
    assert routing.routes() == {} and routing.silent() == {"a"}


def test_delivery_options_keep_the_rules_state_across_a_reload(tmp_path: Path) -> None:
    from bot.engine.evaluate import definition_key

    body = BODIES["threshold"]
    (plain,) = load_rules(write(tmp_path, body)).rules
    (routed,) = load_rules(write(tmp_path, body + "    notify: silent\n    to: [42]\n")).rules
    assert definition_key(plain) == definition_key(routed)
    assert "notify" not in definition_key(plain)  # the key older checkpoints were saved under
