"""Retrying failed and canceled queue items on SQLite: a new pending item per original, the original untouched."""

from __future__ import annotations

import json
from collections.abc import Sequence

import aiosqlite
from invoke_sdk.session_queue import NewQueueItem

from invoke_sqlite_storage.database import Database

__all__ = ["insert_retries"]


async def insert_retries(
    db: Database, queue_id: str, retries: Sequence[tuple[int, NewQueueItem]]
) -> list[tuple[int, int]]:
    """Insert one new item per ``(original id, new item)`` whose original is a failed or canceled item of the queue,
    in one transaction; the batch and priority are the original's. Returns ``(original id, new id)`` pairs."""

    async def work(conn: aiosqlite.Connection) -> list[tuple[int, int]]:
        async with conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'queue_items'), 0), "
            "COALESCE((SELECT MAX(item_id) FROM queue_items), 0))"
        ) as cur:
            row = await cur.fetchone()
        next_id = int(row[0] if row else 0) + 1
        done: list[tuple[int, int]] = []
        for original, item in retries:
            cur = await conn.execute(
                "INSERT INTO queue_items (item_id, queue_id, batch_id, session_id, priority, field_values, session, "
                "model_key) SELECT ?, queue_id, batch_id, ?, priority, ?, ?, ? FROM queue_items "
                "WHERE item_id = ? AND queue_id = ? AND status IN ('failed', 'canceled')",
                (
                    next_id,
                    item.session_id,
                    json.dumps([v.model_dump(mode="json") for v in item.field_values])
                    if item.field_values is not None else None,
                    item.session_json,
                    item.model_key,
                    original,
                    queue_id,
                ),
            )
            if cur.rowcount:
                done.append((original, next_id))
                next_id += 1
        return done

    return await db.write(work)
