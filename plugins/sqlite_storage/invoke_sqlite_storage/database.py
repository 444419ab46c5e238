"""The open database: one writer connection and a few reader connections, each in its own thread (aiosqlite).

WAL lets the readers work while the writer writes, so a long list query never holds up a claim
or a status change, and no query ever runs on the event loop. Writes are serialized through one
connection and run as ``BEGIN IMMEDIATE`` transactions, so several processes on one file also
take the write lock in turn (the busy timeout makes them wait instead of failing).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

__all__ = ["Database"]

T = TypeVar("T")

# Pages (4 KiB) freed per step of reclaim_space: about 32 MiB, a few tens of milliseconds of writing.
_RECLAIM_STEP_PAGES = 8192

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)


async def _connect(path: Path, *, read_only: bool) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
        if read_only:
            await conn.execute("PRAGMA query_only=ON")
    except BaseException:
        # A file that turned out not to be a database: its connection (and thread) must not outlive the error.
        await conn.close()
        raise
    return conn


class Database:
    """Connections to one SQLite file."""

    def __init__(self, path: Path, *, readers: int = 2) -> None:
        self.path = path
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._free: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._writes: set[asyncio.Task[object]] = set()

    async def open(self) -> None:
        self._writer = await _connect(self.path, read_only=False)
        for _ in range(self._reader_count):
            conn = await _connect(self.path, read_only=True)
            self._readers.append(conn)
            self._free.put_nowait(conn)

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        for conn in [*self._readers, *([self._writer] if self._writer else [])]:
            await conn.close()
        self._readers.clear()
        # Closed readers must not be handed out after a later open(): start with an empty pool.
        self._free = asyncio.Queue()
        self._writer = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A reader connection for the duration of the block (waits if all are busy)."""
        conn = await self._free.get()
        try:
            yield conn
        finally:
            self._free.put_nowait(conn)

    async def write(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction: committed if it returns, rolled back if it raises.

        The transaction runs as its own task, shielded: a caller that is cancelled (a client that
        hung up) does not leave it half done; it still commits or rolls back.
        """
        task: asyncio.Task[T] = asyncio.get_running_loop().create_task(self._transaction(work))
        self._writes.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._writes.discard)  # type: ignore[arg-type]
        return await asyncio.shield(task)

    async def reclaim_space(self) -> int:
        """Give the pages freed by deletes back to the file system; return how many pages were released.

        The file uses incremental auto-vacuum (set up by the migrator), so freed pages sit on a free list until
        ``PRAGMA incremental_vacuum`` moves them off the end of the file. It runs in steps of
        ``_RECLAIM_STEP_PAGES``, each its own short write, so claims and appends are held up for a moment at a
        time, never for the whole file; then a checkpoint copies the shorter file out of the WAL and empties it.
        """
        conn = self._writer
        if conn is None:
            raise RuntimeError("the database is not open")
        released = 0
        while True:
            async with self._write_lock:
                async with conn.execute("PRAGMA freelist_count") as cur:
                    row = await cur.fetchone()
                free = int(row[0]) if row else 0
                if free == 0:
                    break
                step = min(free, _RECLAIM_STEP_PAGES)
                # The pragma frees one page per step of the statement, and execute() steps it once (it has no
                # result columns, so there is nothing to fetch): a script runs it to the end.
                await conn.executescript(f"PRAGMA incremental_vacuum({step});")
                async with conn.execute("PRAGMA freelist_count") as cur:
                    row = await cur.fetchone()
                left = int(row[0]) if row else 0
                if left >= free:
                    break  # not in incremental mode (a file this backend did not create): nothing more to do
                released += free - left
        if released:
            async with self._write_lock:
                async with conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
                    await cur.fetchall()
        return released

    async def _transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        conn = self._writer
        if conn is None:
            raise RuntimeError("the database is not open")
        async with self._write_lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                result = await work(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            return result
