"""The model records schema and its numbered migrations, all SQL in one place.

Migrations are applied in order inside one transaction each, and the applied version is kept in
``model_records_schema`` (its own table, so the module can later join a shared database's migrations).
"""

from __future__ import annotations

import aiosqlite

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE model_records (
            key TEXT PRIMARY KEY NOT NULL,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            base TEXT NOT NULL,
            type TEXT NOT NULL,
            format TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            config TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        CREATE INDEX model_records_name ON model_records(name);
        CREATE INDEX model_records_base_type ON model_records(base, type);
        CREATE INDEX model_records_hash ON model_records(hash);
        """,
    ),
]
"""(version, SQL) pairs; append new versions, never edit an applied one."""


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply every migration newer than the database's version; return the version reached."""
    await db.execute("CREATE TABLE IF NOT EXISTS model_records_schema (version INTEGER NOT NULL)")
    async with db.execute("SELECT MAX(version) FROM model_records_schema") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    await db.commit()
    for version, sql in MIGRATIONS:
        if version <= current:
            continue
        try:
            await db.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, sql.split(";")):
                await db.execute(statement)
            await db.execute("INSERT INTO model_records_schema (version) VALUES (?)", (version,))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        current = version
    return current
