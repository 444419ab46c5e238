"""Retrying failed and canceled queue items on PostgreSQL: a new pending item per original, the original untouched.

Under the enqueue advisory lock, like an enqueue, so the new ids come from ``queue_item_ids`` in order."""

from __future__ import annotations

from collections.abc import Sequence

from invoke_sdk.session_queue import NewQueueItem
from psycopg.types.json import Jsonb

from invoke_postgres_storage.database import Connection, Database

__all__ = ["insert_retries"]


async def insert_retries(
    db: Database, queue_id: str, retries: Sequence[tuple[int, NewQueueItem]], enqueue_lock: int
) -> list[tuple[int, int]]:
    """Insert one new item per ``(original id, new item)`` whose original is a failed or canceled item of the queue,
    in one transaction; the batch and priority are the original's. Returns ``(original id, new id)`` pairs."""

    async def work(conn: Connection) -> list[tuple[int, int]]:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (enqueue_lock,))
        cur = await conn.execute(
            "SELECT item_id FROM queue_items WHERE item_id = ANY(%s) AND queue_id = %s "
            "AND status IN ('failed', 'canceled') FOR SHARE",
            ([original for original, _ in retries], queue_id),
        )
        retryable = {int(r[0]) for r in await cur.fetchall()}  # type: ignore[call-overload]
        done: list[tuple[int, int]] = []
        for original, item in retries:
            if original not in retryable:
                continue
            cur = await conn.execute("UPDATE queue_item_ids SET last = last + 1 RETURNING last")
            row = await cur.fetchone()
            new_id = int(row[0]) if row else 0  # type: ignore[call-overload]
            await conn.execute(
                "INSERT INTO queue_items (item_id, queue_id, batch_id, session_id, priority, field_values, session, "
                "model_key) SELECT %s, queue_id, batch_id, %s, priority, %s, %s, %s FROM queue_items "
                "WHERE item_id = %s",
                (
                    new_id,
                    item.session_id,
                    Jsonb([v.model_dump(mode="json") for v in item.field_values])
                    if item.field_values is not None else None,
                    item.session_json,
                    item.model_key,
                    original,
                ),
            )
            done.append((original, new_id))
        return done

    return await db.write(work)
