"""Config loading: defaults, environment secrets, refusals, and error locations."""

from __future__ import annotations

import importlib.util
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.codes import stock_code
from bot.config import (
    PAPER_REFUSAL,
    ConfigError,
    config_warnings,
    load_settings,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_point_at_kis_real_servers_and_demo_mode() -> None:
    settings = load_settings(None, env={})
    assert settings.kis.rest_url == "https://openapi.koreainvestment.com:9443"
    assert settings.kis.ws_url == "ws://ops.koreainvestment.com:21000"
    assert settings.kis.tr_id == "H0UNPGM0"
    assert settings.kis.max_subscriptions == 41
    assert settings.kis.silence_timeout == 120
    assert not settings.live
    assert settings.telegram.token is None


def test_example_config_is_valid_with_its_environment() -> None:
    env = {
        "PGMBOT_KIS_APPKEY": "k" * 36,
        "PGMBOT_KIS_APPSECRET": "s" * 180,
        "PGMBOT_TELEGRAM_TOKEN": "1:abc",
    }
    settings = load_settings(ROOT / "config.example.yaml", env=env)
    assert settings.live
    assert settings.kis.accounts[0].appkey.get_secret_value() == "k" * 36
    assert settings.watch == ["005930", "000660"]


def test_environment_secrets_fill_an_account_and_the_token(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram:\n  allowed_chat_ids: [1]\n")
    env = {
        "PGMBOT_KIS_APPKEY": "key",
        "PGMBOT_KIS_APPSECRET": "secret",
        "PGMBOT_TELEGRAM_TOKEN": "t",
    }
    settings = load_settings(path, env=env)
    assert [a.appkey.get_secret_value() for a in settings.kis.accounts] == ["key"]
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "t"


def test_secrets_never_show_in_repr_or_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kis:\n  accounts:\n    - appkey: SUPERSECRETKEY\n      appsecret: SUPERSECRETSECRET\n"
        "      bogus: 1\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "SUPERSECRET" not in str(info.value)
    ok = write(tmp_path, "kis:\n  accounts:\n    - appkey: SUPERSECRETKEY\n      appsecret: X\n")
    settings = load_settings(ok, env={})
    assert "SUPERSECRET" not in repr(settings)
    assert "SUPERSECRET" not in str(settings.model_dump())


@pytest.mark.parametrize(
    "text",
    [
        "kis:\n  paper: true\n",
        "kis:\n  ws_url: ws://ops.koreainvestment.com:31000\n",
        "kis:\n  rest_url: https://openapivts.koreainvestment.com:29443\n",
    ],
)
def test_paper_trading_is_refused_with_the_reason(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert PAPER_REFUSAL in str(info.value)
    assert str(info.value).startswith(f"{tmp_path / 'config.yaml'}:2:")


def test_every_problem_is_reported_with_its_location(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kis:\n  tr_id: H0XXPGM0\n  max_subscriptions: 50\ntelegram:\n  alowed_chat_ids: [1]\n"
        "watch: [5930, abc]\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    problems = info.value.problems
    assert len(problems) == 4
    assert problems[0].startswith(f"{path}:2:10: kis.tr_id:")
    assert problems[1].startswith(f"{path}:3:22: kis.max_subscriptions:")
    assert problems[2] == f"{path}:5:3: telegram.alowed_chat_ids: unknown key (check its spelling)"
    assert problems[3].startswith(f"{path}:6:15: watch.1:")


def test_missing_environment_variable_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram:\n  token: ${NOPE_TOKEN}\n")
    with pytest.raises(ConfigError, match="NOPE_TOKEN is not set"):
        load_settings(path, env={})


def test_yaml_traps_do_not_change_values(tmp_path: Path) -> None:
    path = write(tmp_path, "watch: [005930, 000660, 0126Z0]\nlog_level: INFO\n")
    assert load_settings(path, env={}).watch == ["005930", "000660", "0126Z0"]


def test_admins_are_allowed_chats(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram:\n  allowed_chat_ids: [1]\n  admin_chat_ids: [2]\n")
    assert load_settings(path, env={}).telegram.allowed_chat_ids == [1, 2]


CODES = [(5930, "005930"), ("0126z0", "0126Z0"), ("000660", "000660")]


@pytest.mark.parametrize(("raw", "code"), CODES)
def test_ticker_normalization(raw: object, code: str) -> None:
    assert stock_code(raw) == code


@pytest.mark.parametrize("raw", ["5930", "0059300", True, 1_000_000, "00593!", None])
def test_bad_tickers_are_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="6-character"):
        stock_code(raw)


def test_config_check_command(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    shipped = Path(__file__).resolve().parents[1] / "rules"
    good = write(tmp_path, f"watch: ['005930']\nrules: {{path: {shipped}}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "config", "check", str(good)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "OK (demo feed" in done.stdout and f"rules from {shipped}" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("kis:\n  paper: true\nwatch: [x]\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "config", "check", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.count(str(bad)) == 2
    nowhere = write(tmp_path, "rules: {path: nowhere}\n")  # what `run` would refuse
    done = subprocess.run(
        [sys.executable, "-m", "bot", "config", "check", str(nowhere)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert f"{tmp_path / 'nowhere'}: no such rules file or directory" in done.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (
            "mysql://pgm:pw@db/pgmbot",
            "or PostgreSQL (postgresql+psycopg://USER@HOST/DB), not mysql",
        ),
        ("postgres://db/pgmbot", "not postgres (write postgresql://)"),
        ("pgmbot.db", "not a database URL; for a SQLite file write sqlite:///pgmbot.db"),
        ("sqlite://", "an in-memory SQLite database is lost when pgmbot stops"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///file:x?mode=memory&uri=true", "in-memory"),
        ("postgresql+asyncpg://db/pgmbot", "asyncpg is an asyncio driver"),
        ("postgresql+nosuch://db/pgmbot", "postgresql has no driver named 'nosuch'"),
    ],
)
def test_database_urls_that_run_cannot_open_are_refused_at_their_place(
    tmp_path: Path, url: str, says: str
) -> None:
    path = write(tmp_path, f"log_level: INFO\nstorage:\n  url: '{url}'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:3:8: storage.url: ")
    assert says in problem


def test_a_postgresql_driver_not_installed_names_the_extra(tmp_path: Path) -> None:
    driver = next((d for d in ("pg8000", "psycopg2") if not importlib.util.find_spec(d)), None)
    if driver is None:
        pytest.skip("both pg8000 and psycopg2 are installed here")
    path = write(tmp_path, f"storage:\n  url: postgresql+{driver}://pgm:SECRETPW@db/pgmbot\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [problem] = info.value.problems
    assert f"the postgresql driver {driver} is not installed" in problem
    assert "pgmbot[postgres]" in problem and "postgresql+psycopg://" in problem
    assert "SECRETPW" not in problem


def test_a_broken_url_with_a_password_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "storage:\n  url: pgm:SECRETPW@db/pgmbot\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "SECRETPW" not in str(info.value)
    assert "sqlite:///FILE" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///pgmbot.db",
        "sqlite:////var/lib/pgmbot/pgmbot.db",
        "postgresql+psycopg://pgm@db/pgmbot",
    ],
)
def test_database_urls_run_can_open_pass(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f"storage:\n  url: '{url}'\n")
    assert load_settings(path, env={}).storage.url == url


LIVE = "kis:\n  accounts:\n    - {appkey: k, appsecret: s}\n"


@pytest.mark.parametrize(
    ("text", "warned"),
    [
        (LIVE, ["live mode with nothing to watch: `watch` is empty and no chat can add stocks "
                "(no telegram.token)"]),
        (LIVE + "telegram: {token: t}\n", ["(telegram.allowed_chat_ids is empty)",
                                           "telegram.token is set but telegram.allowed_chat_ids"]),
        ("telegram: {token: t}\n", ["telegram.token is set but telegram.allowed_chat_ids"]),
        ("watch: [005930]\ntelegram: {token: t, allowed_chat_ids: [1]}\n",
         ["`watch` is subscribed for the admin chats, and telegram.admin_chat_ids is empty"]),
        (LIVE + "watch: [005930]\n", []),  # console alerts for the watch list
        (LIVE + "telegram: {token: t, allowed_chat_ids: [1]}\n", []),  # chats add stocks
        (LIVE + "watch: [005930]\ntelegram: {token: t, admin_chat_ids: [1]}\n", []),
        ("", []),  # the demo
    ],
)  # fmt: skip
def test_a_bot_that_would_do_nothing_visible_is_warned_of(
    tmp_path: Path, text: str, warned: list[str]
) -> None:
    warnings = config_warnings(load_settings(write(tmp_path, text), env={}))
    assert len(warnings) == len(warned), warnings
    for warning, start in zip(warnings, warned, strict=True):
        assert start in warning


def test_config_check_prints_warnings_and_passes(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[1] / "rules"
    path = write(tmp_path, f"telegram: {{token: t}}\nrules: {{path: {shipped}}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "config", "check", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "OK (demo feed" in done.stdout
    assert done.stderr.startswith(f"{path}: warning: telegram.token is set but")


def test_a_missing_environment_variable_is_reported_where_it_is_used(tmp_path: Path) -> None:
    text = "log_level: INFO\nkis:\n  accounts:\n    - appkey: ${MY_KEY}\n      appsecret: x\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.problems == [
        f"{path}:4:15: kis.accounts.0.appkey: environment variable MY_KEY is not set"
    ]


def test_the_readme_going_live_steps_work_as_written(tmp_path: Path) -> None:
    """README: copy config.example.yaml, export PGMBOT_*, run `config check`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    exported = re.search(r"export (PGMBOT_\S+=\.\.\..*)", readme)
    assert exported is not None
    env = {part.split("=")[0]: "x" * 40 for part in exported.group(1).split()}
    assert set(env) == {"PGMBOT_KIS_APPKEY", "PGMBOT_KIS_APPSECRET", "PGMBOT_TELEGRAM_TOKEN"}
    env["PGMBOT_TELEGRAM_TOKEN"] = "1:abc"
    settings = load_settings(ROOT / "config.example.yaml", env=env)
    assert settings.live and settings.telegram.token is not None


@pytest.mark.parametrize("key", ["rest_url: http://127.0.0.1:1", "ws_url: ws://127.0.0.1:1"])
def test_endpoints_without_an_account_say_what_is_missing(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, f"kis:\n  {key}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [problem] = info.value.problems
    name = key.split(":")[0]
    assert problem.startswith(f"{path}:2:{len(name) + 5}: kis.{name}: set but no KIS account")
    assert "PGMBOT_KIS_APPKEY" in problem
    env = {"PGMBOT_KIS_APPKEY": "k", "PGMBOT_KIS_APPSECRET": "s"}
    assert load_settings(path, env=env).live  # an account from the environment will do


def test_market_settings_default_and_override(tmp_path: Path) -> None:
    assert load_settings(None, env={}).market.sessions == {
        "pre": "08:00-08:59",
        "regular": "09:00-15:30",
        "after": "15:31-20:00",
    }
    text = (
        "market:\n  master_url: http://127.0.0.1:9/common/master/\n"
        "  sessions:\n    regular: '9:00-18:00'\n    after: '18:01-20:00'\n"
        "  closed_days: [2026-12-03]\n  open_days: ['2026-12-05']\n"
    )
    market = load_settings(write(tmp_path, text), env={}).market
    assert market.master_url == "http://127.0.0.1:9/common/master"
    assert market.sessions["regular"] == "09:00-18:00"
    assert market.session_ranges["pre"].first == 8 * 60
    assert [str(d) for d in (*market.closed_days, *market.open_days)] == [
        "2026-12-03",
        "2026-12-05",
    ]


@pytest.mark.parametrize(
    ("sessions", "says"),
    [
        ("regular: '09:00-16:30'", "overlap"),
        ("regular: '9-15'", "is not a range of times"),
        ("Late: '20:01-21:00'", "lower-case words"),
    ],
)
def test_bad_sessions_are_refused_at_their_place(tmp_path: Path, sessions: str, says: str) -> None:
    path = write(tmp_path, f"market:\n  sessions:\n    {sessions}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:") and "market.sessions" in problem
    assert says in problem
