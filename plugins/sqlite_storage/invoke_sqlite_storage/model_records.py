"""The model record store on SQLite (table and indexes from migration 3).

Each record is the whole config as JSON plus the columns searches filter on. Stored JSON is turned
back into the right config class by the validator the host hands over (the frozen registry's union),
so configs that plugins contribute round-trip without this module knowing them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

import aiosqlite
from invoke_sdk.models import BaseModelType, ModelConfigBase, ModelFormat, ModelType
from invoke_sdk.models.records import ConfigValidator, DuplicateModelError, UnknownModelKeyError
from invoke_sdk.storage import StorageError

from invoke_sqlite_storage.database import Database

__all__ = ["SqliteModelRecordStore"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def _row(config: ModelConfigBase) -> tuple[Any, ...]:
    data = config.model_dump(mode="json")
    return (
        config.key,
        config.hash,
        config.name,
        data["base"],
        data["type"],
        data["format"],
        config.path,
        json.dumps(data, sort_keys=True),
    )


async def _conflict(conn: aiosqlite.Connection, config: ModelConfigBase) -> DuplicateModelError:
    async with conn.execute(
        "SELECT key, path FROM model_records WHERE key = ? OR path = ? ORDER BY key = ? DESC LIMIT 1",
        (config.key, config.path, config.key),
    ) as cur:
        row = await cur.fetchone()
    if row is not None and row[0] == config.key:
        return DuplicateModelError(
            f"this model is already installed as key {row[0]!r} at {row[1]!r} (same content)", existing=row[0]
        )
    existing = str(row[0]) if row is not None else ""
    return DuplicateModelError(f"another model ({existing!r}) is already recorded at {config.path!r}", existing)


class SqliteModelRecordStore:
    """Implements :class:`invoke_sdk.models.records.ModelRecordStore` on the ``model_records`` table."""

    def __init__(self, db: Database, validate: ConfigValidator | None) -> None:
        self._db = db
        self._validate_fn = validate

    def _validate(self, data: Mapping[str, Any]) -> ModelConfigBase:
        if self._validate_fn is None:
            raise StorageError(
                "the storage backend was created without a model config validator (StorageOptions."
                "validate_model_config), so it cannot read model records"
            )
        return self._validate_fn(data)

    async def add(self, config: ModelConfigBase) -> ModelConfigBase:
        async def work(conn: aiosqlite.Connection) -> None:
            try:
                await conn.execute(
                    "INSERT INTO model_records (key, hash, name, base, type, format, path, config)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    _row(config),
                )
            except sqlite3.IntegrityError:
                raise await _conflict(conn, config) from None

        await self._db.write(work)
        return config

    async def get(self, key: str) -> ModelConfigBase:
        async with self._db.read() as conn, conn.execute(
            "SELECT config FROM model_records WHERE key = ?", (key,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise UnknownModelKeyError(key)
        return self._validate(json.loads(row[0]))

    async def exists(self, key: str) -> bool:
        async with self._db.read() as conn, conn.execute("SELECT 1 FROM model_records WHERE key = ?", (key,)) as cur:
            return await cur.fetchone() is not None

    async def update(self, key: str, changes: Mapping[str, Any]) -> ModelConfigBase:
        if "key" in changes and changes["key"] != key:
            raise ValueError("a model's key cannot be changed: it derives from the model's content")

        # Read, merge, validate and write in one write transaction: two updates never interleave.
        async def work(conn: aiosqlite.Connection) -> ModelConfigBase:
            async with conn.execute("SELECT config FROM model_records WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise UnknownModelKeyError(key)
            merged = {**json.loads(row[0]), **changes}
            updated = self._validate(merged)  # may switch class when type/format change
            try:
                await conn.execute(
                    "UPDATE model_records SET hash = ?, name = ?, base = ?, type = ?, format = ?, path = ?,"
                    f" config = ?, updated_at = {NOW} WHERE key = ?",
                    (*_row(updated)[1:], key),
                )
            except sqlite3.IntegrityError:
                raise await _conflict(conn, updated) from None
            return updated

        return await self._db.write(work)

    async def delete(self, key: str) -> None:
        async def work(conn: aiosqlite.Connection) -> int:
            cur = await conn.execute("DELETE FROM model_records WHERE key = ?", (key,))
            return cur.rowcount

        if await self._db.write(work) == 0:
            raise UnknownModelKeyError(key)

    async def _select(self, where: str, params: tuple[Any, ...]) -> list[ModelConfigBase]:
        sql = "SELECT config FROM model_records" + (f" WHERE {where}" if where else "") + " ORDER BY name, key"
        async with self._db.read() as conn, conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [self._validate(json.loads(r[0])) for r in rows]

    async def search(
        self,
        *,
        name: str | None = None,
        base: BaseModelType | None = None,
        type: ModelType | None = None,  # noqa: A002 - the field's name
        format: ModelFormat | None = None,  # noqa: A002 - the field's name
    ) -> list[ModelConfigBase]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("name", name), ("base", base), ("type", type), ("format", format)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(str(getattr(value, "value", value)))
        return await self._select(" AND ".join(clauses), tuple(params))

    async def search_by_path(self, path: str) -> list[ModelConfigBase]:
        return await self._select("path = ?", (path,))

    async def search_by_hash(self, hash: str) -> list[ModelConfigBase]:  # noqa: A002 - the field's name
        return await self._select("hash = ?", (hash,))
