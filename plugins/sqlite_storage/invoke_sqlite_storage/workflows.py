"""The workflow library on SQLite (tables from migration 7): one row per workflow, one per tag of it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from invoke_sdk.storage import StorageError
from invoke_sdk.workflows import WorkflowChanges, WorkflowPage, WorkflowQuery, WorkflowRecord, WorkflowSummary

from invoke_sqlite_storage.database import Database

__all__ = ["SqliteWorkflowStore"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
SUMMARY_COLUMNS = "workflow_id, name, description, tags, created_at, updated_at"
ORDER_COLUMNS = {"name": "lower(name)", "created_at": "created_at", "updated_at": "updated_at"}


def _summary_fields(row: sqlite3.Row) -> dict[str, Any]:
    fields = dict(row)
    fields["tags"] = json.loads(fields["tags"])
    return fields


def _record(row: sqlite3.Row) -> WorkflowRecord:
    fields = _summary_fields(row)
    fields["graph_json"] = fields.pop("graph")
    fields["workflow_json"] = fields.pop("workflow")
    return WorkflowRecord(**fields)


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _set_tags(conn: aiosqlite.Connection, workflow_id: str, tags: Sequence[str]) -> None:
    await conn.execute("DELETE FROM workflow_tags WHERE workflow_id = ?", (workflow_id,))
    await conn.executemany(
        "INSERT OR IGNORE INTO workflow_tags (tag, workflow_id) VALUES (?, ?)", [(t, workflow_id) for t in tags]
    )


class SqliteWorkflowStore:
    """Implements :class:`invoke_sdk.workflows.WorkflowStore` on the ``workflows`` and ``workflow_tags`` tables."""

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
        async def work(conn: aiosqlite.Connection) -> WorkflowRecord:
            await conn.execute(
                "INSERT INTO workflows (workflow_id, name, description, tags, graph, workflow) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (workflow_id, name, description, json.dumps(list(tags)), graph_json, workflow_json),
            )
            await _set_tags(conn, workflow_id, tags)
            return await self._read(conn, workflow_id)  # type: ignore[return-value]

        try:
            return await self._db.write(work)
        except sqlite3.IntegrityError as exc:
            raise StorageError(f"a workflow with id {workflow_id!r} is already stored: {exc}") from exc

    async def _read(self, conn: aiosqlite.Connection, workflow_id: str) -> WorkflowRecord | None:
        async with conn.execute(
            f"SELECT {SUMMARY_COLUMNS}, graph, workflow FROM workflows WHERE workflow_id = ?", (workflow_id,)
        ) as cur:
            row = await cur.fetchone()
        return _record(row) if row is not None else None

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        async with self._db.read() as conn:
            return await self._read(conn, workflow_id)

    async def update(self, workflow_id: str, changes: WorkflowChanges) -> WorkflowRecord | None:
        given = changes.model_fields_set
        columns = {"name": "name", "description": "description", "graph_json": "graph", "workflow_json": "workflow"}
        sets = [f"{column} = ?" for field, column in columns.items() if field in given]
        params: list[Any] = [getattr(changes, field) for field in columns if field in given]
        if "tags" in given:
            sets.append("tags = ?")
            params.append(json.dumps(list(changes.tags or [])))

        async def work(conn: aiosqlite.Connection) -> WorkflowRecord | None:
            cur = await conn.execute(
                f"UPDATE workflows SET {', '.join([*sets, f'updated_at = {NOW}'])} WHERE workflow_id = ?",
                (*params, workflow_id),
            )
            if cur.rowcount == 0:
                return None
            if "tags" in given:
                await _set_tags(conn, workflow_id, changes.tags or [])
            return await self._read(conn, workflow_id)

        return await self._db.write(work)

    async def delete(self, workflow_id: str) -> bool:
        async def work(conn: aiosqlite.Connection) -> bool:
            cur = await conn.execute("DELETE FROM workflows WHERE workflow_id = ?", (workflow_id,))
            return cur.rowcount > 0

        return await self._db.write(work)

    async def list(self, query: WorkflowQuery, *, offset: int, limit: int) -> WorkflowPage:
        where: list[str] = []
        params: list[Any] = []
        if query.query:
            where.append("(lower(name) LIKE ? ESCAPE '\\' OR lower(description) LIKE ? ESCAPE '\\')")
            params += [_like(query.query)] * 2
        if query.tags:
            marks = ", ".join("?" * len(query.tags))
            where.append(f"workflow_id IN (SELECT workflow_id FROM workflow_tags WHERE tag IN ({marks}))")
            params += list(query.tags)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = f"{ORDER_COLUMNS[query.order_by]} {query.direction}, workflow_id {query.direction}"
        async with self._db.read() as conn:
            async with conn.execute(f"SELECT COUNT(*) FROM workflows {clause}", params) as cur:
                row = await cur.fetchone()
            total = int(row[0]) if row else 0
            async with conn.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM workflows {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ) as cur:
                rows = await cur.fetchall()
        return WorkflowPage(items=[WorkflowSummary(**_summary_fields(r)) for r in rows], total=total)

    async def count(self) -> int:
        async with self._db.read() as conn:
            async with conn.execute("SELECT COUNT(*) FROM workflows") as cur:
                row = await cur.fetchone()
        return int(row[0]) if row else 0
