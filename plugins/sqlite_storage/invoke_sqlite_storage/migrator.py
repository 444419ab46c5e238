"""Numbered schema migrations, recorded in the ``migrations`` table, each in its own transaction.

Runs synchronously on a plain ``sqlite3`` connection; the backend calls it in a worker thread.
SQLite's DDL is transactional, so a migration that raises is rolled back whole: schema and
data stay exactly as they were before it.

A new database is built under a temporary name (``.<name>.new``) and moved into place once its
schema is complete, and a backup is written as ``.<backup name>.part`` and renamed when whole. So a
process killed at any point leaves either no database or a complete one, and no half backup that
looks like a real one; the leftovers are removed at the next start. It also means an empty database
file is never one of ours: a zero-length file is reported as damaged (SQLite itself would quietly
treat it as a new, empty database and the history would be gone without a word).

Every database is kept in incremental auto-vacuum mode, so that deleting rows (a prune) can give the space back
to the file system (``PRAGMA incremental_vacuum``, see ``Database.reclaim_space``). A new database gets it before
its first table; an older one is switched once, by a VACUUM after its migrations (SQLite cannot change the mode
of a database that has tables without rebuilding the file, and VACUUM cannot run inside a transaction).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from invoke_sdk.storage import StorageError

__all__ = [
    "CorruptDatabaseError",
    "Migration",
    "MigrationError",
    "UnknownMigrationError",
    "applied_migrations",
    "corrupt_database_error",
    "ensure_incremental_vacuum",
    "is_corruption",
    "migrate",
    "remove_leftovers",
]

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


class CorruptDatabaseError(StorageError):
    """The database file is damaged, empty, or not SQLite at all; the message names it and the way out."""


_SIDECARS = ("-wal", "-shm", "-journal")


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is damaged or not a database (not: locked, read-only, a constraint)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError | sqlite3.IntegrityError):
        return False
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text


def _backups(path: Path, backup_dir: Path) -> list[Path]:
    """Backups of ``path`` in ``backup_dir``, newest first (the names sort by time)."""
    if not backup_dir.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(path.stem)}-v\d+-before-v\d+-\d{{8}}T\d+Z{re.escape(path.suffix)}$")
    return sorted((p for p in backup_dir.iterdir() if pattern.match(p.name)), key=lambda p: p.name, reverse=True)


def corrupt_database_error(path: Path, backup_dir: Path, what: str) -> CorruptDatabaseError:
    """The one-line error for a damaged database ``path``: ``what`` is wrong, and the way out."""
    found = _backups(path, backup_dir)
    sidecars = f" (with {path.name}-wal and {path.name}-shm if they are there)"
    if found:
        way_out = f"restore it from the backup at {found[0]}, or move it{sidecars} away to start fresh"
    else:
        way_out = f"there is no backup in {backup_dir}; move it{sidecars} away to start fresh with an empty database"
    return CorruptDatabaseError(f"the database {path} {what}: {way_out}")


def _damaged(path: Path, backup_dir: Path, detail: BaseException | str) -> CorruptDatabaseError:
    return corrupt_database_error(path, backup_dir, f"is damaged or is not a SQLite database ({detail})")


def remove_leftovers(path: Path, backup_dir: Path) -> list[Path]:
    """Remove what an interrupted run left: a database half built under its temporary name, half-written backups.

    Only names this module writes: ``.<db name>.new`` (and its ``-wal``/``-shm``/``-journal``) beside ``path``,
    and ``.<backup name>.part`` in ``backup_dir``. Returns what was removed.
    """
    new = _new_path(path)
    candidates = [new, *(new.with_name(new.name + s) for s in _SIDECARS)]
    if backup_dir.is_dir():
        pattern = re.compile(rf"^\.{re.escape(path.stem)}-v\d+-before-v\d+-\d{{8}}T\d+Z{re.escape(path.suffix)}\.part$")
        candidates += [p for p in backup_dir.iterdir() if pattern.match(p.name)]
    removed = []
    for candidate in candidates:
        try:
            candidate.unlink()
        except FileNotFoundError:
            continue
        removed.append(candidate)
    for leftover in removed:
        logger.info("Removed %s, left by a start or migration that was interrupted", leftover)
    return removed


def _new_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.new")


def configure(conn: sqlite3.Connection) -> None:
    """The settings every connection to the database uses."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")


_INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental


def ensure_incremental_vacuum(conn: sqlite3.Connection, path: Path) -> bool:
    """Put the database in incremental auto-vacuum mode; return whether it had to be switched.

    The switch is a VACUUM, which rewrites the file (even a new one: WAL mode, set first, has written its
    header). On a database that already holds data that takes about as long as copying the file, and as much
    free disk space as the file takes; it happens once.
    """
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    if mode == _INCREMENTAL:
        return False
    started = time.monotonic()
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("VACUUM")
    (tables,) = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    if tables:
        logger.info("Switched %s to incremental auto-vacuum, so that pruning gives space back (one VACUUM, %.1f s)",
                    path, time.monotonic() - started)
    return True


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
    part = dest_path.with_name(f".{dest_path.name}.part")
    dest = sqlite3.connect(part)
    try:
        # The online backup API copies a consistent snapshot, WAL content included.
        conn.backup(dest)
    except BaseException:
        dest.close()
        part.unlink(missing_ok=True)
        raise
    dest.close()
    os.replace(part, dest_path)
    return dest_path


def migrate(path: Path, migrations: Sequence[Migration], backup_dir: Path) -> list[int]:
    """Bring the database at ``path`` up to the newest of ``migrations``; return the versions applied.

    Refuses (:class:`UnknownMigrationError`) a database that records a migration not in
    ``migrations``, and (:class:`CorruptDatabaseError`) one that is empty, damaged or not SQLite.
    Before the first pending migration of a database that already has a schema, copies it into
    ``backup_dir``. A database that does not exist yet is built whole under a temporary name first.
    """
    ordered = sorted(migrations, key=lambda m: m.version)
    known = {m.version: m for m in ordered}
    if len(known) != len(ordered):
        raise StorageError("two migrations share a version number; this is a bug in the backend")
    remove_leftovers(path, backup_dir)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return _create(path, ordered, backup_dir)
    if size == 0:
        raise corrupt_database_error(
            path, backup_dir, "is empty (0 bytes): it was truncated, or something other than this server created it"
        )
    conn = _connect(path, backup_dir)
    try:
        try:
            applied = applied_migrations(conn)
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise _damaged(path, backup_dir, exc) from exc
            raise StorageError(f"the database {path} cannot be read: {exc}") from exc
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
            ensure_incremental_vacuum(conn, path)
            return []
        current = max(applied, default=0)
        if applied:
            try:
                # Migrating (and backing up) a damaged file would only spread the damage into the backup; the
                # whole-file check costs about 0.5 s per 200 MB, paid only when a migration is due.
                (first,) = conn.execute("PRAGMA quick_check(1)").fetchone()
                if first != "ok":
                    where = " ".join(str(first).replace("*** in database main ***", "").split())
                    raise _damaged(path, backup_dir, f"the integrity check found: {where}")
                dest = _backup(conn, path, backup_dir, current, pending[-1].version)
            except sqlite3.DatabaseError as exc:
                if is_corruption(exc):
                    raise _damaged(path, backup_dir, exc) from exc
                raise
            logger.info("Backed up %s to %s before migrating from version %d", path, dest, current)
        done = _apply(conn, path, backup_dir, pending, current)
        ensure_incremental_vacuum(conn, path)
        return done
    finally:
        conn.close()


def _connect(path: Path, backup_dir: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    try:
        configure(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_corruption(exc):
            raise _damaged(path, backup_dir, exc) from exc
        raise StorageError(f"the database {path} cannot be opened: {exc}") from exc
    return conn


def _create(path: Path, ordered: Sequence[Migration], backup_dir: Path) -> list[int]:
    """Build a new database under its temporary name with every migration, then move it to ``path``."""
    new = _new_path(path)
    conn = _connect(new, backup_dir)
    try:
        ensure_incremental_vacuum(conn, new)  # before the first table, so it costs nothing
        applied_migrations(conn)
        done = _apply(conn, path, backup_dir, list(ordered), 0)
    except BaseException:
        conn.close()
        for leftover in (new, *(new.with_name(new.name + s) for s in _SIDECARS)):
            leftover.unlink(missing_ok=True)
        raise
    # Closing the last connection checkpoints the WAL into the file and removes it, so one file moves.
    conn.close()
    os.replace(new, path)
    logger.info("Created the database %s", path)
    return done


def _apply(
    conn: sqlite3.Connection, path: Path, backup_dir: Path, pending: Sequence[Migration], current: int
) -> list[int]:
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
            # SQLite rolls back by itself on some errors (a damaged page, say); ROLLBACK would then fail.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, KeyboardInterrupt):
                raise
            if is_corruption(exc):
                raise _damaged(path, backup_dir, exc) from exc
            raise MigrationError(
                f"schema migration {migration.version} ({migration.description}) of {path} failed: "
                f"{type(exc).__name__}: {exc}. The database was left at version "
                f"{max([current, *done], default=0)}, unchanged by this migration"
            ) from exc
        done.append(migration.version)
        logger.info("Applied schema migration %d (%s) to %s", migration.version, migration.description, path)
    return done
