"""Fixtures shared by the store, service and sender tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
