"""Alembic migrations make exactly the models' schema; `pgmbot db upgrade` applies them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.command import downgrade
from alembic.command import upgrade as upgrade_to
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.cli import main
from bot.store import Store, upgrade
from bot.store.db import make_engine
from bot.store.migrate import alembic_config, current_revision, head_revision, script_location
from bot.store.models import Base
from bot.store.repo import StoreError
from bot.ticks import NUMERIC_FIELDS

REPO = Path(__file__).resolve().parents[1]


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrations_make_exactly_the_models(tmp_path: Path) -> None:
    url = url_of(tmp_path / "fresh.db")
    upgrade(url)
    assert schema_diff(url) == []


def test_migrations_make_exactly_the_models_on_postgresql(postgres_url: str) -> None:
    assert current_revision(postgres_url) == head_revision()  # the fixture's upgrade()
    assert schema_diff(postgres_url) == []


def test_a_model_change_without_migration_shows(tmp_path: Path) -> None:
    """The comparison can fail: drop a column the models have, and it reports it."""
    path = tmp_path / "drift.db"
    upgrade(url_of(path))
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE blocked_chats DROP COLUMN error")
    diff = schema_diff(url_of(path))
    assert any("error" in repr(d) for d in diff)


def test_upgrade_creates_the_directory_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.db"
    url = url_of(path)
    upgrade(url)
    assert path.is_file()
    assert current_revision(url) == head_revision()
    store = Store(url, allowed_chat_ids=[1])
    store.add_watches(1, ["005930"])
    store.close()
    upgrade(url)  # again: nothing changes, nothing is lost
    assert current_revision(url) == head_revision()
    store = Store(url, allowed_chat_ids=[1])
    assert store.watches(1) == ["005930"]
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_downgrade_to_base_and_up_again(backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        url = url_of(request.getfixturevalue("tmp_path") / "down.db")
        upgrade(url)
    else:
        url = request.getfixturevalue("postgres_url")  # migrated
    downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(url)
    assert schema_diff(url) == []


def test_a_database_of_the_first_release_upgrades_with_its_alerts(tmp_path: Path) -> None:
    url = url_of(tmp_path / "old.db")
    upgrade_to(alembic_config(url), "0001")
    with sqlite3.connect(tmp_path / "old.db") as db:
        columns = [name.lower() for name in NUMERIC_FIELDS]
        db.execute(
            "INSERT INTO alerts (rule, ticker, day, hhmmss, seconds, seq, value, message, "
            f"created_at, {', '.join(columns)}) VALUES ('r', '005930', '2026-11-20', '090000',"
            f" 32400, 0, 7, 'kept', '2026-11-20 00:00:01', {', '.join('1' * len(columns))})"
        )
    with pytest.raises(StoreError, match="pgmbot db upgrade"):
        Store(url, allowed_chat_ids=[1])
    upgrade(url)
    assert current_revision(url) == head_revision() != "0001"
    assert schema_diff(url) == []
    store = Store(url, allowed_chat_ids=[1])
    assert [a.message for a in store.recent_alerts(limit=10)] == ["kept"]
    store.close()


def test_store_refuses_a_database_it_cannot_run_on() -> None:
    with pytest.raises(StoreError, match="SQLite or PostgreSQL, not mysql"):
        Store("mysql://pgmbot@127.0.0.1/pgmbot")


def test_store_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="pgmbot db upgrade"):
        Store(url_of(tmp_path / "empty.db"))


def test_migrations_are_found_from_the_package() -> None:
    location = script_location()
    assert location == REPO / "alembic"
    assert (location / "versions").is_dir()


def config_for(tmp_path: Path, db: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  url: sqlite:///{db}\n", encoding="utf-8")
    return config


def test_db_upgrade_command_on_a_fresh_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "data" / "pgmbot.db"
    config = config_for(tmp_path, db)
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert f"upgraded empty -> {head_revision()}" in capsys.readouterr().out
    assert schema_diff(url_of(db)) == []
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert f"already at {head_revision()}" in capsys.readouterr().out


def test_db_upgrade_command_on_postgresql(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    downgrade(alembic_config(postgres_url), "base")  # an empty database
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  url: {postgres_url}\n", encoding="utf-8")
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert f"upgraded empty -> {head_revision()}" in capsys.readouterr().out
    assert schema_diff(postgres_url) == []
    Store(postgres_url).close()  # opens: the schema is the one this code needs


def test_db_upgrade_reads_config_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_for(tmp_path, tmp_path / "here.db")
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "here.db").is_file()


def test_db_upgrade_reports_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  urll: x\n", encoding="utf-8")
    assert main(["db", "upgrade", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "config.yaml:2" in err and "urll" in err


def test_db_upgrade_reports_a_database_it_cannot_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    config = config_for(tmp_path, blocker / "pgmbot.db")  # a path under a regular file
    assert main(["db", "upgrade", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pgmbot: cannot upgrade sqlite:///") and "Traceback" not in err


def test_db_upgrade_as_a_process(tmp_path: Path) -> None:
    """The real entry point, in a fresh interpreter started outside the repository."""
    db = tmp_path / "proc.db"
    config = config_for(tmp_path, db)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert schema_diff(url_of(db)) == []


def _alert_sql(rule: str) -> str:
    columns = [name.lower() for name in NUMERIC_FIELDS]
    return (
        "INSERT INTO alerts (rule, ticker, day, hhmmss, seconds, seq, value, message, "
        f"created_at, {', '.join(columns)}) VALUES ('{rule}', '005930', '2026-11-20', '090000',"
        f" 32400, 0, 7, 'kept', '2026-11-20 00:00:01', {', '.join('1' * len(columns))})"
    )


def _execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = [conn.exec_driver_sql(s) for s in statements]
            last = result[-1]
            return [tuple(row) for row in last] if last.returns_rows else []
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0004_keeps_alerts_and_deliveries_and_its_downgrade_drops_resolved_events(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """SQLite copies the alerts table for 0004; with foreign keys on, the copy must not take
    the deliveries along by cascade. Existing alerts become fired ones."""
    if backend == "sqlite":
        url = url_of(request.getfixturevalue("tmp_path") / "d.db")
    else:
        url = request.getfixturevalue("postgres_url")
        downgrade(alembic_config(url), "base")
    upgrade_to(alembic_config(url), "0003")
    _execute(
        url,
        _alert_sql("r"),
        "INSERT INTO deliveries (alert_id, chat_id, state, attempts, next_attempt_at) "
        "SELECT id, 5, 'sent', 0, created_at FROM alerts",
    )
    upgrade(url)
    assert schema_diff(url) == []
    assert _execute(url, "SELECT rule, kind, resolves_id FROM alerts") == [("r", "fired", None)]
    assert _execute(url, "SELECT chat_id, state, message_id FROM deliveries") == [
        (5, "sent", None)
    ]
    _execute(
        url,
        _alert_sql("r")
        .replace("(rule,", "(kind, resolves_id, rule,")
        .replace("VALUES (", "VALUES ('resolved', (SELECT min(id) FROM alerts), "),
        "INSERT INTO deliveries (alert_id, chat_id, state, attempts, next_attempt_at) "
        "SELECT id, 5, 'pending', 0, created_at FROM alerts WHERE kind = 'resolved'",
    )
    downgrade(alembic_config(url), "0003")
    assert _execute(url, "SELECT rule, message FROM alerts") == [("r", "kept")]
    assert _execute(url, "SELECT chat_id, state FROM deliveries") == [(5, "sent")]
    upgrade(url)
    assert schema_diff(url) == []
