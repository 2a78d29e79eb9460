"""Engines: any SQLAlchemy URL; SQLite files get WAL, a busy timeout and foreign keys on connect.

SQLite write transactions start with ``BEGIN IMMEDIATE`` (``writer(engine)``): a deferred
transaction that reads, then writes, fails at once with "database is locked" when another writer
committed in between, and the busy timeout does not help there. Reads stay deferred, so in WAL mode
they never wait for a writer.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another one before "database is locked"
_BEGIN = "sqlite_begin"  # execution option: the BEGIN mode of a SQLite transaction


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str | URL, *, busy_timeout: float = BUSY_TIMEOUT, **kwargs: Any) -> Engine:
    """An engine for ``url``; a SQLite file's directory is created, and its pragmas are set."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine, int(busy_timeout * 1000))
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{_BEGIN: "IMMEDIATE"})


def _sqlite_setup(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit: SQLAlchemy's "begin" event below issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal" and sqlite_path(engine.url) is not None:
                log.warning("sqlite journal mode is not WAL mode=%s", mode)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def write_probe(engine: Engine) -> None:
    """A write transaction that changes nothing: raises when the database cannot be written
    now (SQLite: the write lock not had within the busy timeout; PostgreSQL: unreachable, or a
    read-only server such as a replica). For /healthz, on the AsyncStore's write thread."""
    with writer(engine).begin() as connection:
        if engine.dialect.name == "postgresql":
            read_only = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
            if read_only == "on":
                raise RuntimeError("the PostgreSQL server is read-only")
        else:
            connection.exec_driver_sql("SELECT 1")


class InstanceLock:
    """One ``pgmbot run`` per SQLite file: an exclusive lock on ``FILE.lock`` for the process's
    life (the OS releases it when the process dies, even by kill -9). Two bots on one file
    would both send every alert."""

    def __init__(self, url: str | URL) -> None:
        path = sqlite_path(url)
        self.path = path.with_name(path.name + ".lock") if path is not None else None
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; RuntimeError naming the holder when another process has it."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RuntimeError(
                f"another pgmbot (pid {holder}) runs on {self.path.with_suffix('')}; "
                "two would send every alert twice"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def file_identity(url: str | URL) -> tuple[int, int] | None:
    """(device, inode) of a SQLite file, None when it is not there (or not a file database):
    a database deleted or replaced under the running bot shows as a change."""
    path = sqlite_path(url)
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
