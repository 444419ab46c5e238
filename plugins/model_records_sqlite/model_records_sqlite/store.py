"""The SQLite model record store (aiosqlite, WAL): whole configs as JSON plus indexed search columns."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiosqlite
from invoke_sdk.model_records import ConfigValidator, DuplicateModelError, UnknownModelKeyError
from invoke_sdk.models import BaseModelType, ModelConfigBase, ModelFormat, ModelType

from model_records_sqlite.schema import migrate

__all__ = ["SqliteModelRecordStore"]


class SqliteModelRecordStore:
    """Implements ``invoke_sdk.model_records.ModelRecordStore`` on one SQLite file."""

    def __init__(self, path: Path, validate: ConfigValidator) -> None:
        self.path = path
        self._validate = validate
        self._db: aiosqlite.Connection | None = None
        # One writer at a time: read-modify-write updates must not interleave.
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the model record store is not open")
        return self._db

    @staticmethod
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

    async def _conflict(self, config: ModelConfigBase) -> DuplicateModelError:
        async with self.db.execute(
            "SELECT key, path FROM model_records WHERE key = ? OR path = ?", (config.key, config.path)
        ) as cur:
            row = await cur.fetchone()
        if row is not None and row[0] == config.key:
            return DuplicateModelError(
                f"this model is already installed as key {row[0]!r} at {row[1]!r} (same content)", existing=row[0]
            )
        existing = row[0] if row is not None else ""
        return DuplicateModelError(f"another model ({existing!r}) is already recorded at {config.path!r}", existing)

    async def add(self, config: ModelConfigBase) -> ModelConfigBase:
        async with self._write_lock:
            try:
                await self.db.execute(
                    "INSERT INTO model_records (key, hash, name, base, type, format, path, config)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    self._row(config),
                )
            except sqlite3.IntegrityError:
                raise await self._conflict(config) from None
        return config

    async def _load(self, key: str) -> ModelConfigBase | None:
        async with self.db.execute("SELECT config FROM model_records WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None else self._validate(json.loads(row[0]))

    async def get(self, key: str) -> ModelConfigBase:
        config = await self._load(key)
        if config is None:
            raise UnknownModelKeyError(key)
        return config

    async def exists(self, key: str) -> bool:
        async with self.db.execute("SELECT 1 FROM model_records WHERE key = ?", (key,)) as cur:
            return await cur.fetchone() is not None

    async def update(self, key: str, changes: Mapping[str, Any]) -> ModelConfigBase:
        if "key" in changes and changes["key"] != key:
            raise ValueError("a model's key cannot be changed: it derives from the model's content")
        async with self._write_lock:
            current = await self._load(key)
            if current is None:
                raise UnknownModelKeyError(key)
            merged = {**current.model_dump(mode="json"), **changes}
            updated = self._validate(merged)  # may switch class when type/format change
            row = self._row(updated)
            try:
                await self.db.execute(
                    "UPDATE model_records SET hash = ?, name = ?, base = ?, type = ?, format = ?, path = ?,"
                    " config = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE key = ?",
                    (*row[1:], key),
                )
            except sqlite3.IntegrityError:
                raise await self._conflict(updated) from None
        return updated

    async def delete(self, key: str) -> None:
        async with self._write_lock:
            cur = await self.db.execute("DELETE FROM model_records WHERE key = ?", (key,))
            if cur.rowcount == 0:
                raise UnknownModelKeyError(key)

    async def _select(self, where: str, params: tuple[Any, ...]) -> list[ModelConfigBase]:
        sql = "SELECT config FROM model_records" + (f" WHERE {where}" if where else "") + " ORDER BY name, key"
        async with self.db.execute(sql, params) as cur:
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
