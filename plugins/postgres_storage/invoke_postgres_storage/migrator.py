"""Numbered schema migrations, recorded in ``schema_migrations``, each in its own transaction.

PostgreSQL's DDL is transactional, so a migration that fails is rolled back whole. The whole migrate runs under
a session-level advisory lock: when several nodes start at once on one database, one applies the pending
migrations while the others wait, then find nothing left to do. A database recording a migration this code does
not know (written by a newer version) is refused before anything is changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from invoke_sdk.storage_base import StorageError

from invoke_postgres_storage.database import Connection, describe_error

__all__ = ["MIGRATE_LOCK", "Migration", "MigrationError", "UnknownMigrationError", "applied_migrations", "migrate"]

logger = logging.getLogger("invoke_postgres_storage")

MIGRATE_LOCK = 0x1D0CE_5C4E_3A00
"""The advisory lock key every node takes around migrating (any constant bigint; this one spells nothing)."""


@dataclass(frozen=True)
class Migration:
    """One step of the schema: SQL statements run in order, in one transaction."""

    version: int
    description: str
    statements: tuple[str, ...] = ()


class MigrationError(StorageError):
    """A migration failed; the database was left as it was before it."""


class UnknownMigrationError(StorageError):
    """The database was migrated by a newer version than this one."""


async def applied_migrations(conn: Connection) -> dict[int, str]:
    """Version -> description of every migration recorded in the database (creating the table if need be)."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, description text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    cur = await conn.execute("SELECT version, description FROM schema_migrations ORDER BY version")
    return {int(v): str(d) for v, d in await cur.fetchall()}  # type: ignore[call-overload]


async def migrate(conn: Connection, migrations: Sequence[Migration], shown: str) -> list[int]:
    """Bring the database of ``conn`` (autocommit) up to the newest of ``migrations``; return the versions applied.

    ``shown`` names the database in messages (its URL with the password masked).
    """
    ordered = sorted(migrations, key=lambda m: m.version)
    known = {m.version for m in ordered}
    if len(known) != len(ordered):
        raise StorageError("two migrations share a version number; this is a bug in the backend")
    # Held until unlocked or the connection ends: a node killed while migrating releases it with its connection.
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
    try:
        applied = await applied_migrations(conn)
        unknown = {v: d for v, d in applied.items() if v not in known}
        if unknown:
            listed = ", ".join(f"{v} ({d})" for v, d in sorted(unknown.items()))
            raise UnknownMigrationError(
                f"the database at {shown} has schema migration {listed}, which this version of "
                f"invoke-postgres-storage does not know (it knows 1 to {max(known, default=0)}): it was written by a "
                "newer version. Upgrade invoke-postgres-storage on this node, or point it at another database; "
                "refusing to start rather than risk the data"
            )
        done: list[int] = []
        for migration in (m for m in ordered if m.version not in applied):
            try:
                async with conn.transaction():
                    for statement in migration.statements:
                        await conn.execute(statement)  # no parameters: the driver leaves the text as it is
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                        (migration.version, migration.description),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"schema migration {migration.version} ({migration.description}) of the database at {shown} "
                    f"failed: {type(exc).__name__}: {describe_error(exc, '')}. The database was left at version "
                    f"{max([*applied, *done], default=0)}, unchanged by this migration"
                ) from exc
            done.append(migration.version)
            logger.info("Applied schema migration %d (%s) to the database at %s",
                        migration.version, migration.description, shown)
        return done
    finally:
        if not conn.closed:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
