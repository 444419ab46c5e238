"""The workflow library on PostgreSQL (table from migration 5): one row per workflow, its tags a ``text[]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invoke_sdk.storage import StorageError
from invoke_sdk.workflows import WorkflowChanges, WorkflowPage, WorkflowQuery, WorkflowRecord, WorkflowSummary
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from invoke_postgres_storage.database import Connection, Database

__all__ = ["PostgresWorkflowStore"]

SUMMARY_COLUMNS = "workflow_id, name, description, tags, created_at, updated_at"
FULL_COLUMNS = f"{SUMMARY_COLUMNS}, graph AS graph_json, workflow AS workflow_json"
ORDER_COLUMNS = {"name": "lower(name)", "created_at": "created_at", "updated_at": "updated_at"}


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class PostgresWorkflowStore:
    """Implements :class:`invoke_sdk.workflows.WorkflowStore` on the ``workflows`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        workflow_id: str,
        *,
        name: str,
        description: str,
        tags: Sequence[str],
        graph_json: str,
        workflow_json: str | None,
    ) -> WorkflowRecord:
        async def work(conn: Connection) -> WorkflowRecord:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "INSERT INTO workflows (workflow_id, name, description, tags, graph, workflow) "
                    f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {FULL_COLUMNS}",
                    (workflow_id, name, description, list(tags), graph_json, workflow_json),
                )
                row = await cur.fetchone()
            assert row is not None
            return WorkflowRecord(**row)

        try:
            return await self._db.write(work)
        except pg_errors.UniqueViolation as exc:
            raise StorageError(f"a workflow with id {workflow_id!r} is already stored") from exc

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        async def work(conn: Connection) -> WorkflowRecord | None:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(f"SELECT {FULL_COLUMNS} FROM workflows WHERE workflow_id = %s", (workflow_id,))
                row = await cur.fetchone()
            return WorkflowRecord(**row) if row is not None else None

        return await self._db.run(work)

    async def update(self, workflow_id: str, changes: WorkflowChanges) -> WorkflowRecord | None:
        given = changes.model_fields_set
        columns = {
            "name": "name", "description": "description", "tags": "tags", "graph_json": "graph",
            "workflow_json": "workflow",
        }
        sets = [f"{column} = %s" for field, column in columns.items() if field in given]
        params: list[Any] = [
            list(changes.tags or []) if field == "tags" else getattr(changes, field) for field in columns
            if field in given
        ]

        async def work(conn: Connection) -> WorkflowRecord | None:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    f"UPDATE workflows SET {', '.join([*sets, 'updated_at = clock_timestamp()'])} "
                    f"WHERE workflow_id = %s RETURNING {FULL_COLUMNS}",
                    (*params, workflow_id),
                )
                row = await cur.fetchone()
            return WorkflowRecord(**row) if row is not None else None

        return await self._db.write(work)

    async def delete(self, workflow_id: str) -> bool:
        async def work(conn: Connection) -> bool:
            cur = await conn.execute("DELETE FROM workflows WHERE workflow_id = %s", (workflow_id,))
            return cur.rowcount > 0

        return await self._db.write(work)

    async def list(self, query: WorkflowQuery, *, offset: int, limit: int) -> WorkflowPage:
        where: list[str] = []
        params: list[Any] = []
        if query.query:
            where.append("(lower(name) LIKE %s ESCAPE '\\' OR lower(description) LIKE %s ESCAPE '\\')")
            params += [_like(query.query)] * 2
        if query.tags:
            where.append("tags && %s::text[]")
            params.append(list(query.tags))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = f"{ORDER_COLUMNS[query.order_by]} {query.direction}, workflow_id {query.direction}"

        async def work(conn: Connection) -> WorkflowPage:
            cur = await conn.execute(f"SELECT COUNT(*) FROM workflows {clause}", params)
            row = await cur.fetchone()
            total = int(row[0]) if row else 0  # type: ignore[call-overload]
            async with conn.cursor(row_factory=dict_row) as dcur:
                await dcur.execute(
                    f"SELECT {SUMMARY_COLUMNS} FROM workflows {clause} ORDER BY {order} LIMIT %s OFFSET %s",
                    (*params, limit, offset),
                )
                rows = await dcur.fetchall()
            return WorkflowPage(items=[WorkflowSummary(**r) for r in rows], total=total)

        return await self._db.run(work)

    async def count(self) -> int:
        async def work(conn: Connection) -> int:
            cur = await conn.execute("SELECT COUNT(*) FROM workflows")
            row = await cur.fetchone()
            return int(row[0]) if row else 0  # type: ignore[call-overload]

        return await self._db.run(work)
