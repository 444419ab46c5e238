"""Numbered schema migrations, recorded in the ``migrations`` table, each in its own transaction.

Runs synchronously on a plain ``sqlite3`` connection; the backend calls it in a worker thread.
SQLite's DDL is transactional, so a migration that raises is rolled back whole: schema and
data stay exactly as they were before it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from invoke_sdk.storage import StorageError

__all__ = ["Migration", "MigrationError", "UnknownMigrationError", "applied_migrations", "migrate"]

logger = logging.getLogger("invoke_sqlite_storage")


@dataclass(frozen=True)
class Migration:
    """One step of the schema: SQL statements run in order, then an optional Python step, in one transaction."""

    version: int
    description: str
    statements: tuple[str, ...] = ()
    apply: Callable[[sqlite3.Connection], None] | None = None


class MigrationError(StorageError):
    """A migration failed; the database was left as it was before it."""


class UnknownMigrationError(StorageError):
    """The database was migrated by a newer version than this one."""


def configure(conn: sqlite3.Connection) -> None:
    """The settings every connection to the database uses."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")


def applied_migrations(conn: sqlite3.Connection) -> dict[int, str]:
    """Version -> description of every migration recorded in the database."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return {int(v): str(d) for v, d in conn.execute("SELECT version, description FROM migrations ORDER BY version")}


def _backup(conn: sqlite3.Connection, path: Path, backup_dir: Path, current: int, target: int) -> Path:
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest_path = backup_dir / f"{path.stem}-v{current}-before-v{target}-{stamp}{path.suffix}"
    dest = sqlite3.connect(dest_path)
    try:
        # The online backup API copies a consistent snapshot, WAL content included.
        conn.backup(dest)
    finally:
        dest.close()
    return dest_path


def migrate(path: Path, migrations: Sequence[Migration], backup_dir: Path) -> list[int]:
    """Bring the database at ``path`` up to the newest of ``migrations``; return the versions applied.

    Refuses (:class:`UnknownMigrationError`) a database that records a migration not in
    ``migrations``. Before the first pending migration of a database that already has a schema,
    copies it into ``backup_dir``.
    """
    ordered = sorted(migrations, key=lambda m: m.version)
    known = {m.version: m for m in ordered}
    if len(known) != len(ordered):
        raise StorageError("two migrations share a version number; this is a bug in the backend")
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    try:
        try:
            configure(conn)
            applied = applied_migrations(conn)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{path} is not a usable SQLite database: {exc}") from exc
        unknown = {v: d for v, d in applied.items() if v not in known}
        if unknown:
            listed = ", ".join(f"{v} ({d})" for v, d in sorted(unknown.items()))
            raise UnknownMigrationError(
                f"the database {path} has schema migration {listed}, which this version of invoke-sqlite-storage "
                f"does not know (it knows 1 to {max(known, default=0)}): it was written by a newer version. "
                "Upgrade invoke-sqlite-storage, or start with another data root; refusing to start rather than "
                "risk the data"
            )
        pending = [m for m in ordered if m.version not in applied]
        if not pending:
            return []
        current = max(applied, default=0)
        if applied:
            dest = _backup(conn, path, backup_dir, current, pending[-1].version)
            logger.info("Backed up %s to %s before migrating from version %d", path, dest, current)
        done: list[int] = []
        for migration in pending:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in migration.statements:
                    conn.execute(statement)
                if migration.apply is not None:
                    migration.apply(conn)
                conn.execute(
                    "INSERT INTO migrations (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, datetime.now(UTC).isoformat()),
                )
                conn.execute("COMMIT")
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise MigrationError(
                    f"schema migration {migration.version} ({migration.description}) of {path} failed: "
                    f"{type(exc).__name__}: {exc}. The database was left at version "
                    f"{max([current, *done], default=0)}, unchanged by this migration"
                ) from exc
            done.append(migration.version)
            logger.info("Applied schema migration %d (%s) to %s", migration.version, migration.description, path)
        return done
    finally:
        conn.close()
