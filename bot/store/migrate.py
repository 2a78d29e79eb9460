"""Alembic, configured in code: ``upgrade(url)`` at start-up and ``pgmbot db upgrade``.

The migration scripts live in the repository's top-level ``alembic/`` directory. An installed
wheel carries a copy under ``<prefix>/share/pgmbot/alembic``; ``PGMBOT_ALEMBIC_DIR`` overrides
both.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import sysconfig
from pathlib import Path

from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.pool import NullPool

from bot.store.db import make_engine, safe_url

log = logging.getLogger(__name__)

ENV_DIR = "PGMBOT_ALEMBIC_DIR"


def script_location() -> Path:
    """The directory holding ``env.py`` and ``versions/``. Raises FileNotFoundError if none."""
    candidates = [
        Path(__file__).resolve().parents[2] / "alembic",  # a checkout or an editable install
        Path(sysconfig.get_path("data")) / "share" / "pgmbot" / "alembic",  # a wheel's data
        Path(sys.prefix) / "share" / "pgmbot" / "alembic",
    ]
    if os.environ.get(ENV_DIR):
        candidates.insert(0, Path(os.environ[ENV_DIR]))
    for candidate in candidates:
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"the Alembic migrations are missing (looked in {tried})")


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url``; the URL travels as an attribute, never through a file."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def head_revision() -> str | None:
    """The newest revision of the migration scripts."""
    return _head(str(script_location()))


@functools.cache
def _head(location: str) -> str | None:  # the scripts do not change while we run
    config = Config()
    config.set_main_option("script_location", location)
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(url: str) -> str | None:
    """The revision the database is at (None: not under Alembic yet, e.g. a new file)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (a new SQLite file and its directory
    are created). Running it again does nothing."""
    migrate(url)


def migrate(url: str) -> tuple[str | None, str | None]:
    """``upgrade(url)``, returning the revisions before and after."""
    before = current_revision(url)
    alembic_upgrade(alembic_config(url), "head")
    after = current_revision(url)
    if before != after:
        log.info("database upgraded url=%s from=%s to=%s", safe_url(url), before, after)
    return before, after


def table_names(url: str) -> list[str]:
    engine = make_engine(url, poolclass=NullPool)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def upgrade_command(args: argparse.Namespace) -> int:
    """`pgmbot db upgrade [--config FILE]`: migrate ``storage.url``; exit 1 on failure."""
    from bot.config import ConfigError, load_settings

    path: Path | None = args.config
    if path is None and Path("config.yaml").is_file():
        path = Path("config.yaml")
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        exc.report("the config has errors")
        return 2
    url = settings.storage.url
    try:
        before, after = migrate(url)
    except Exception as exc:  # a CLI answer, not a traceback: say what and where
        print(f"pgmbot: cannot upgrade {safe_url(url)}: {exc}", file=sys.stderr)
        return 1
    if before == after:
        print(f"{safe_url(url)}: already at {after}")
    else:
        print(f"{safe_url(url)}: upgraded {before or 'empty'} -> {after}")
    return 0
