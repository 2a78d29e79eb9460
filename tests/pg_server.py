"""A throwaway PostgreSQL server on loopback, for the store tests that run on PostgreSQL too.

It needs the server programs (Debian's ``postgresql`` package; `.ci/run` installs it) and the
``psycopg`` driver (the ``postgres`` extra). The cluster lives in a temporary directory, trusts
local connections, listens on 127.0.0.1 only and is stopped at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_program(name: str) -> Path | None:
    """``initdb`` or ``pg_ctl``: on PATH, or where Debian puts them (the newest version)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3])
    )
    return versions[-1] if versions else None


def missing() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    if server_program("initdb") is None or server_program("pg_ctl") is None:
        return "the PostgreSQL server is not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server in a new temporary directory; yields the SQLAlchemy URL of its database."""
    initdb, pg_ctl = server_program("initdb"), server_program("pg_ctl")
    assert initdb is not None and pg_ctl is not None, missing()
    # Not under pytest's tmp_path: as root, the server runs as the postgres user, who cannot
    # enter root's private directories.
    with tempfile.TemporaryDirectory(prefix="pgmbot-postgres-") as name:
        directory = Path(name)
        as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(directory, user="postgres")
            as_owner = ["runuser", "-u", "postgres", "--"]
        data, port = directory / "data", _free_port()

        def run(*command: str | Path) -> None:
            done = subprocess.run([*as_owner, *map(str, command)], capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")

        run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        options = f"-h 127.0.0.1 -p {port} -k {directory} -F -c fsync=off"
        run(pg_ctl, "-D", data, "-o", options, "-l", directory / "server.log", "-w", "start")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
