"""A real PostgreSQL server for the tests: started once per test session in a temporary folder, on loopback.

``postgres_server`` (session fixture) starts it with Debian's server binaries (``initdb``, ``pg_ctl``); CI runs as
root and PostgreSQL refuses to, so as root the folder is handed to the ``postgres`` system user and the binaries run
through ``runuser``. ``postgres_url`` (function fixture) creates an empty database for one test and drops it after,
so tests never see each other's rows. ``scripts/system-packages`` installs the server where it is missing.

The server is driven with its own client (``psql``) so this file depends on no Python driver.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_postgres_bin", "postgres_server", "postgres_url"]

_SEARCH = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def find_postgres_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``; a clear failure naming the install script if there is none."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for folder in _SEARCH:
        if (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: run scripts/system-packages "
                       "(apt-get install postgresql) first")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """One running server: where it listens and how to make databases on it."""

    bin_dir: Path
    data_dir: Path
    port: int
    as_user: str | None
    """The system user the server runs as when the tests run as root (``postgres``), else None."""

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.as_user, "--", *argv] if self.as_user else list(argv)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with ``psql`` as the superuser; its output, stripped (a failure raises with psql's message)."""
        psql = shutil.which("psql") or str(self.bin_dir / "psql")
        done = subprocess.run(
            [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w",
                                 "stop"), capture_output=True, timeout=60)

    def start(self) -> None:
        log = self.data_dir.parent / "postgres.log"
        options = f"-p {self.port} -k {self.data_dir.parent} -c listen_addresses=127.0.0.1 -c fsync=off " \
                  "-c max_connections=200"
        done = subprocess.run(
            self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options, "-l", str(log), "-w",
                      "start"),
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{tail}")


def start_postgres(parent: Path) -> PostgresServer:
    """Make a cluster under ``parent`` and start it (about 2 s); the caller stops it."""
    bin_dir = find_postgres_bin()
    as_user = "postgres" if os.geteuid() == 0 else None
    data_dir = parent / "data"
    data_dir.mkdir()
    if as_user:
        owner = pwd.getpwnam(as_user)
        for path in (parent, data_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(bin_dir, data_dir, _free_port(), as_user)
    done = subprocess.run(
        server._cmd(str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                    "--no-sync"),
        capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session (trust auth on 127.0.0.1; user ``postgres``)."""
    # Not pytest's tmp_path: its folders are private to root, and the server runs as another user.
    parent = Path(tempfile.mkdtemp(prefix="invoke-pg-"))
    os.chmod(parent, 0o755)
    server = start_postgres(parent)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of its own for one test, dropped afterwards."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
