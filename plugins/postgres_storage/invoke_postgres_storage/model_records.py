"""The model record store on PostgreSQL (table and indexes from migration 3).

Each record is the whole config as ``jsonb`` plus the columns searches filter on. Stored configs are turned back
into the right config class by the validator the host hands over (the frozen registry's union).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invoke_sdk.models import BaseModelType, ModelConfigBase, ModelFormat, ModelType
from invoke_sdk.models.records import ConfigValidator, DuplicateModelError, UnknownModelKeyError
from invoke_sdk.storage import StorageError
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from invoke_postgres_storage.database import Connection, Database

__all__ = ["PostgresModelRecordStore"]


def _row(config: ModelConfigBase) -> tuple[Any, ...]:
    data = config.model_dump(mode="json")
    return (config.key, config.hash, config.name, data["base"], data["type"], data["format"], config.path, Jsonb(data))


async def _conflict(conn: Connection, config: ModelConfigBase) -> DuplicateModelError:
    cur = await conn.execute(
        "SELECT key, path FROM model_records WHERE key = %s OR path = %s ORDER BY key = %s DESC LIMIT 1",
        (config.key, config.path, config.key),
    )
    row = await cur.fetchone()
    if row is not None and row[0] == config.key:
        return DuplicateModelError(
            f"this model is already installed as key {row[0]!r} at {row[1]!r} (same content)", existing=str(row[0])
        )
    existing = str(row[0]) if row is not None else ""
    return DuplicateModelError(f"another model ({existing!r}) is already recorded at {config.path!r}", existing)


class PostgresModelRecordStore:
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
        async def work(conn: Connection) -> None:
            cur = await conn.execute(
                "INSERT INTO model_records (key, hash, name, base, type, format, path, config)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING key",
                _row(config),
            )
            if await cur.fetchone() is None:
                raise await _conflict(conn, config)

        await self._db.write(work)
        return config

    async def _configs(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        async def work(conn: Connection) -> list[dict[str, Any]]:
            cur = await conn.execute(sql, params)
            return [r[0] for r in await cur.fetchall()]  # type: ignore[call-overload]

        return await self._db.run(work)

    async def get(self, key: str) -> ModelConfigBase:
        rows = await self._configs("SELECT config FROM model_records WHERE key = %s", (key,))
        if not rows:
            raise UnknownModelKeyError(key)
        return self._validate(rows[0])

    async def exists(self, key: str) -> bool:
        return bool(await self._configs("SELECT 1 FROM model_records WHERE key = %s", (key,)))

    async def update(self, key: str, changes: Mapping[str, Any]) -> ModelConfigBase:
        if "key" in changes and changes["key"] != key:
            raise ValueError("a model's key cannot be changed: it derives from the model's content")

        # Read (locking the row), merge, validate and write in one transaction: two updates never interleave.
        async def work(conn: Connection) -> ModelConfigBase:
            cur = await conn.execute("SELECT config FROM model_records WHERE key = %s FOR UPDATE", (key,))
            row = await cur.fetchone()
            if row is None:
                raise UnknownModelKeyError(key)
            merged = {**row[0], **changes}  # type: ignore[dict-item]
            updated = self._validate(merged)  # may switch class when type/format change
            try:
                async with conn.transaction():  # a savepoint: a taken path leaves the transaction usable
                    await conn.execute(
                        "UPDATE model_records SET hash = %s, name = %s, base = %s, type = %s, format = %s, "
                        "path = %s, config = %s, updated_at = clock_timestamp() WHERE key = %s",
                        (*_row(updated)[1:], key),
                    )
            except pg_errors.UniqueViolation:
                raise await _conflict(conn, updated) from None
            return updated

        return await self._db.write(work)

    async def delete(self, key: str) -> None:
        async def work(conn: Connection) -> int:
            cur = await conn.execute("DELETE FROM model_records WHERE key = %s", (key,))
            return cur.rowcount

        if await self._db.write(work) == 0:
            raise UnknownModelKeyError(key)

    async def _select(self, where: str, params: tuple[Any, ...]) -> list[ModelConfigBase]:
        sql = "SELECT config FROM model_records" + (f" WHERE {where}" if where else "") + " ORDER BY name, key"
        return [self._validate(c) for c in await self._configs(sql, params)]

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
                clauses.append(f"{column} = %s")
                params.append(str(getattr(value, "value", value)))
        return await self._select(" AND ".join(clauses), tuple(params))

    async def search_by_path(self, path: str) -> list[ModelConfigBase]:
        return await self._select("path = %s", (path,))

    async def search_by_hash(self, hash: str) -> list[ModelConfigBase]:  # noqa: A002 - the field's name
        return await self._select("hash = %s", (hash,))
