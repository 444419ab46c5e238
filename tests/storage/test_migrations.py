"""Numbered migrations: recorded, backed up before, atomic, and no silent downgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from invoke_sqlite_storage import Migration, SqliteBackend
from invoke_sqlite_storage.migrations import MIGRATIONS
from invoke_sqlite_storage.migrator import MigrationError, UnknownMigrationError

from tests.storage.conftest import make_batch

# These tests stack synthetic migrations on top of migration 1 alone, so later real migrations do not shift them.
QUEUE_ONLY = MIGRATIONS[:1]


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM migrations ORDER BY version")]


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_fresh_database_is_migrated_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "invoke.db"
    backend = SqliteBackend(path)
    await backend.start()
    try:
        assert _versions(path) == [m.version for m in MIGRATIONS]
        async with backend.db.read() as conn:
            async with conn.execute("PRAGMA journal_mode") as cur:
                assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
            async with conn.execute("PRAGMA foreign_keys") as cur:
                assert (await cur.fetchone())[0] == 1  # type: ignore[index]
            async with conn.execute("PRAGMA busy_timeout") as cur:
                assert (await cur.fetchone())[0] > 0  # type: ignore[index]
    finally:
        await backend.stop()
    assert not (tmp_path / "backups").exists()  # nothing to back up in a new database


async def _seeded(path: Path) -> list[int]:
    backend = SqliteBackend(path, migrations=QUEUE_ONLY)
    await backend.start()
    batch, items = make_batch(n=3)
    ids = (await backend.session_queue.enqueue(batch, items, prepend=False)).item_ids
    await backend.stop()
    return ids


async def test_pending_migration_runs_after_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "invoke.db"
    ids = await _seeded(path)
    extra = Migration(version=2, description="add a notes table", statements=("CREATE TABLE notes (x TEXT)",))
    backend = SqliteBackend(path, migrations=(*QUEUE_ONLY, extra))
    await backend.start()
    await backend.stop()
    assert _versions(path) == [1, 2] and "notes" in _tables(path)
    (backup,) = (tmp_path / "backups").iterdir()
    assert "v1-before-v2" in backup.name
    assert _versions(backup) == [1] and "notes" not in _tables(backup)
    with sqlite3.connect(backup) as conn:
        assert [r[0] for r in conn.execute("SELECT item_id FROM queue_items ORDER BY item_id")] == ids


async def test_failing_migration_leaves_schema_and_data_untouched(tmp_path: Path) -> None:
    path = tmp_path / "invoke.db"
    ids = await _seeded(path)

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM queue_items")
        raise RuntimeError("half way through")

    bad = Migration(
        version=2,
        description="a broken one",
        statements=("CREATE TABLE half (x TEXT)", "ALTER TABLE queue_items ADD COLUMN extra TEXT"),
        apply=boom,
    )
    backend = SqliteBackend(path, migrations=(*QUEUE_ONLY, bad))
    with pytest.raises(MigrationError, match=r"migration 2 \(a broken one\).*half way through.*version 1"):
        await backend.start()
    assert _versions(path) == [1]
    assert "half" not in _tables(path)
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(queue_items)")]
        assert "extra" not in columns
        assert [r[0] for r in conn.execute("SELECT item_id FROM queue_items ORDER BY item_id")] == ids
    # The current version still opens the untouched database.
    ok = SqliteBackend(path)
    await ok.start()
    assert (await ok.session_queue.counts("default")).pending == 3
    await ok.stop()


async def test_database_from_a_newer_version_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "invoke.db"
    await _seeded(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO migrations VALUES (99, 'from the future', '2030-01-01')")
    backend = SqliteBackend(path)
    with pytest.raises(UnknownMigrationError, match=r"99 \(from the future\).*newer version"):
        await backend.start()
    assert _versions(path) == [1, 99]
