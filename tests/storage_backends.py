"""Backends for tests that run against every storage backend: SQLite (a file under tmp_path) and PostgreSQL (a fresh
database on the session's test server, see tests/postgres_server.py). The PostgreSQL server is only started when
a PostgreSQL case runs, so ``-k sqlite`` needs no server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from invoke_postgres_storage import PostgresBackend
from invoke_sqlite_storage import SqliteBackend

__all__ = [
    "BACKENDS", "AnyBackend", "BackendMaker", "backend", "backend_maker", "backend_maker_for", "sqlite_backend_at"
]

BACKENDS = ("sqlite", "postgres")
"""The ids the storage tests are parametrised with."""

AnyBackend = SqliteBackend | PostgresBackend


@dataclass
class BackendMaker:
    """Makes unstarted backends of one kind on one database; each ``new()`` is another node on it."""

    kind: str
    path: Path | None = None
    url: str | None = None

    def new(self, **kwargs: Any) -> Any:
        if self.kind == "sqlite":
            assert self.path is not None
            return SqliteBackend(self.path, **kwargs)
        assert self.url is not None
        return PostgresBackend(self.url, **kwargs)

    @asynccontextmanager
    async def started(self, **kwargs: Any) -> AsyncIterator[Any]:
        backend = self.new(**kwargs)
        await backend.start()
        try:
            yield backend
        finally:
            await backend.stop()

    def execute(self, *statements: tuple[str, Sequence[Any]] | str) -> None:
        """Run statements (``?`` placeholders) in one transaction on a connection of its own: another process
        writing the same database."""
        steps = [(s, ()) if isinstance(s, str) else s for s in statements]
        if self.kind == "sqlite":
            import sqlite3

            with closing(sqlite3.connect(self.path)) as conn, conn:
                for sql, params in steps:
                    conn.execute(sql, tuple(params))
            return
        with psycopg.connect(self.url or "") as conn:
            for sql, params in steps:
                conn.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[call-overload]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row of ``sql`` (``?`` placeholders), read on a connection of its own:
        what the store left behind, not what it reports."""
        if self.kind == "sqlite":
            import sqlite3

            with closing(sqlite3.connect(self.path)) as conn:
                return conn.execute(sql, tuple(params)).fetchone()[0]
        with psycopg.connect(self.url or "", autocommit=True) as conn:
            row = conn.execute(sql.replace("?", "%s"), tuple(params)).fetchone()  # type: ignore[call-overload]
            return row[0] if row else None


@pytest.fixture(params=BACKENDS)
def backend_maker(request: pytest.FixtureRequest) -> BackendMaker:
    """Where the test's backends live: parametrised, so the test runs once per backend."""
    return backend_maker_for(request)


@pytest.fixture
async def backend(backend_maker: BackendMaker) -> AsyncIterator[Any]:
    """A started backend of each kind (see ``backend_maker``)."""
    async with backend_maker.started() as b:
        yield b


def backend_maker_for(request: pytest.FixtureRequest) -> BackendMaker:
    """The maker for the parametrised backend (``request.param``): a file under tmp_path, or a fresh database."""
    if request.param == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        return BackendMaker("sqlite", path=tmp_path / "db" / "invoke.db")
    return BackendMaker("postgres", url=request.getfixturevalue("postgres_url"))


@asynccontextmanager
async def sqlite_backend_at(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    backend = SqliteBackend(tmp_path / "db" / "invoke.db")
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()
