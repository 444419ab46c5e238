"""The image records version (``image_changes.n``, migration 8), read per request at the cost of a memory compare.

Reading the counter is one SQL statement, but every statement opens a read transaction, which takes and drops a
lock on the WAL-index (two ``fcntl`` calls): 20-25 µs here under load, a tenth of a cached page's whole request.
Most requests follow no change at all, and SQLite itself says so in shared memory: the WAL-index header at the
start of the ``-shm`` file (https://www.sqlite.org/walformat.html, "The WAL-Index Header") holds ``iChange``, a
counter the writer raises with every transaction, and ``mxFrame``, the last valid frame of the WAL, and a commit
becomes visible to readers only by being written there (the first of its two copies is written last). So while
those 48 bytes read the same as when the counter was last read, no connection of any process has committed since,
and the counter is what it was; when they differ, the counter is read again. A spurious difference (a checkpoint,
a commit to another table) only costs that read.

The header is read *before* the counter: the counter read then sees at least the state the header describes, and a
header that is still the same later means that state is still the newest. Where the ``-shm`` file cannot be mapped
(not WAL, or shared memory kept in the heap), every call reads the counter.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
from pathlib import Path

__all__ = ["RecordsVersion"]

_HEADER = 48  # one copy of the WAL-index header (WalIndexHdr)


class RecordsVersion:
    """``image_changes.n`` of one database file, on a read-only connection of its own, from the event loop."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._shm: mmap.mmap | None = None
        self._header = b""
        self._value: int | None = None

    def read(self) -> int | None:
        """The counter now, or None when it cannot be read at this moment (nothing is cached then)."""
        try:
            if self._conn is None:
                self._open()
            header = self._shm[:_HEADER] if self._shm is not None else b""
            if header and header == self._header and self._value is not None:
                return self._value
            assert self._conn is not None
            row = self._conn.execute("SELECT n FROM image_changes WHERE id = 1").fetchone()
        except (sqlite3.Error, OSError, ValueError):
            self.close()  # opened afresh next time
            return None
        self._header, self._value = header, (int(row[0]) if row is not None else None)
        return self._value

    def _open(self) -> None:
        # Autocommit: each read is its own transaction, so it sees every commit made before it and never holds the
        # WAL back from a checkpoint. No busy timeout: the rare moment a read cannot start (a WAL being recovered)
        # answers None at once instead of holding up the loop. Not tied to one thread: a test may start a backend
        # on one loop and serve it from another; the calls never overlap.
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=0, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only=ON")
            # A first read maps the -shm file for this process; it stays (and is never truncated) while the
            # connection is open, so the mapping below cannot outlive what it maps.
            conn.execute("SELECT n FROM image_changes WHERE id = 1").fetchone()
            self._shm = _map_header(Path(f"{self._path}-shm"))
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        """Unmap the header and close the connection (the backend's stop); both reopen on the next read."""
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._header, self._value = b"", None


def _map_header(shm: Path) -> mmap.mmap | None:
    try:
        fd = os.open(shm, os.O_RDONLY)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size < 2 * _HEADER:
            return None
        return mmap.mmap(fd, _HEADER, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
