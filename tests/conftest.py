"""Fixtures shared by the store, service and sender tests: fresh, migrated databases.

``url`` is a SQLite file; ``postgres_url`` a database on a throwaway PostgreSQL server on loopback
(tests/pg_server.py); ``each_backend_url`` is one, then the other.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from botapi import FakeBotApi
from pg_server import missing, postgres_server

from bot.store.migrate import upgrade


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it (migrating every time would be slower)."""
    path = tmp_path_factory.mktemp("template") / "pgmbot.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def url(template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database of this test."""
    shutil.copy(template, tmp_path / "pgmbot.db")
    return f"sqlite:///{tmp_path / 'pgmbot.db'}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server with a migrated template database; yields the server's URL.

    Skipped where the server cannot run, except in CI, whose script installs it: there a missing
    server fails the run rather than quietly testing SQLite alone.
    """
    why = missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL tests cannot run in CI: {why}")
        pytest.skip(why)
    with postgres_server() as server:
        _execute(server, "CREATE DATABASE pgmbot_template")
        upgrade(_database(server, "pgmbot_template"))
        yield server


_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of this test (a copy of the template)."""
    name = f"pgmbot_test_{next(_numbers)}"
    _execute(postgres, f"CREATE DATABASE {name} TEMPLATE pgmbot_template")
    yield _database(postgres, name)
    _execute(postgres, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["url", "postgres_url"], ids=["sqlite", "postgresql"])
def each_backend_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database of this test: the test runs once on each backend."""
    return str(request.getfixturevalue(request.param))


def _database(server: str, name: str) -> str:
    return server.rsplit("/", 1)[0] + f"/{name}"


def _execute(server: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(server.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    """The loopback Telegram Bot API (tests/botapi.py), long polls cut at 0.2 s."""
    async with FakeBotApi(max_poll=0.2) as server:
        yield server
