"""A damaged database stops `invoke-host serve` with one line that says what is wrong and what to do.

Damage comes in three shapes here, each made on a real file: not SQLite at all, a zero-length file (which
SQLite alone would quietly treat as a new, empty database), and a real database with damaged pages.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from invoke_sqlite_storage import Migration, SqliteBackend
from invoke_sqlite_storage.migrations import MIGRATIONS
from invoke_sqlite_storage.migrator import CorruptDatabaseError, migrate

from tests.storage.conftest import make_batch

CLI = Path(sys.executable).parent / "invoke-host"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_HOST_")}
    return subprocess.run(
        [str(CLI), "serve", "--root", str(root), "--port", str(_free_port()), "--log-level", "warning"],
        env=env, capture_output=True, text=True, timeout=180,
    )


def _paths(root: Path) -> tuple[Path, Path]:
    db = root / "databases" / "invoke.db"
    return db, db.parent / "backups"


def _way_out(db: Path, backups: Path, backup: Path | None = None) -> str:
    beside = f"(with {db.name}-wal and {db.name}-shm if they are there)"
    if backup is None:
        return f"there is no backup in {backups}; move it {beside} away to start fresh with an empty database"
    return f"restore it from the backup at {backup}, or move it {beside} away to start fresh"


async def _database_at_version_1(db: Path, items: int = 3) -> None:
    backend = SqliteBackend(db, migrations=MIGRATIONS[:1])
    await backend.start()
    batch, new_items = make_batch(n=items)
    await backend.session_queue.enqueue(batch, new_items, prepend=False)
    await backend.stop()


def _damage_pages_of(db: Path, table: str) -> None:
    """Overwrite the pages that hold ``table`` (found with the dbstat-free way: its root page) with garbage."""
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root_page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    with db.open("r+b") as f:
        f.seek((root_page - 1) * page_size)
        f.write(b"\xa5" * page_size)


def test_a_file_that_is_not_sqlite_is_one_line_and_a_failed_exit(tmp_path: Path) -> None:
    db, backups = _paths(tmp_path)
    db.parent.mkdir(parents=True)
    db.write_bytes(b"these are not the bytes of a database\n" * 200)
    done = _serve(tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"Error: the database {db} is damaged or is not a SQLite database (file is not a database): "
        f"{_way_out(db, backups)}\n"
    )
    assert db.read_bytes().startswith(b"these are not")  # left exactly as it was


async def test_a_zero_length_database_is_damage_and_the_message_names_the_newest_backup(tmp_path: Path) -> None:
    db, backups = _paths(tmp_path)
    await _database_at_version_1(db)
    upgraded = SqliteBackend(db)  # migrating to the newest version writes a backup first
    await upgraded.start()
    await upgraded.stop()
    (backup,) = backups.iterdir()
    db.write_bytes(b"")

    done = _serve(tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: the database {db} is empty (0 bytes): it was truncated, or something other than this server "
        f"created it: {_way_out(db, backups, backup)}\n"
    )
    assert db.stat().st_size == 0  # not quietly re-initialised


async def test_damaged_pages_are_reported_at_open_in_one_line(tmp_path: Path) -> None:
    db, backups = _paths(tmp_path)
    backend = SqliteBackend(db)
    await backend.start()
    await backend.stop()
    _damage_pages_of(db, "migrations")

    done = _serve(tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line == (
        f"Error: the database {db} is damaged or is not a SQLite database (database disk image is malformed): "
        f"{_way_out(db, backups)}"
    )


async def test_damage_found_while_migrating_is_the_same_clean_error(tmp_path: Path) -> None:
    # Version 1 with its queue table damaged: the backup before migration 2 reads every page and trips on it.
    db, backups = _paths(tmp_path)
    await _database_at_version_1(db, items=200)
    _damage_pages_of(db, "queue_items")
    with pytest.raises(CorruptDatabaseError) as raised:
        migrate(db, MIGRATIONS, backups)
    message = str(raised.value)
    assert message.startswith(f"the database {db} is damaged or is not a SQLite database (the integrity check found: ")
    assert message.endswith(f"): {_way_out(db, backups)}") and "\n" not in message
    assert not backups.exists()  # checked before anything is copied: no backup of the damage


def test_a_new_database_that_cannot_be_built_leaves_no_file_behind(tmp_path: Path) -> None:
    db, backups = _paths(tmp_path)
    db.parent.mkdir(parents=True)

    def fail(conn: sqlite3.Connection) -> None:
        raise RuntimeError("the disk filled up, say")

    broken = (*MIGRATIONS[:1], Migration(version=2, description="fails", apply=fail))
    with pytest.raises(Exception, match="the disk filled up"):
        migrate(db, broken, backups)
    assert sorted(p.name for p in db.parent.iterdir()) == []  # no empty invoke.db for the next start to trust
    assert migrate(db, MIGRATIONS, backups) == [m.version for m in MIGRATIONS]
    assert sorted(p.name for p in db.parent.iterdir()) == ["invoke.db"]
