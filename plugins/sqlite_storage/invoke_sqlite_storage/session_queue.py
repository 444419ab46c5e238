"""The session-queue store on SQLite: items in ``queue_items`` (migration 1), progress in rows (migration 5),
leases and queue state (migration 6).

Several processes may share the file (WAL): each write is one ``BEGIN IMMEDIATE`` transaction, so a claim, a
lease renewal or a reclaim runs alone under the writer lock, which is what ``FOR UPDATE SKIP LOCKED`` gives a
PostgreSQL backend. Lease times are computed by SQLite (``'now'``), so every process uses one clock.

A session's results and node errors are appended to ``session_results`` and ``session_errors`` as the run goes
(a batch of rows per transaction); nothing is rewritten while it runs. Pages of results are read by keyset
(``seq``, or ``path`` within one source node), so the thousandth page costs what the first does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import aiosqlite
from invoke_sdk.session_queue import (
    BatchRecord,
    BatchStatus,
    EnqueueResult,
    NewQueueItem,
    NodeFieldValue,
    QueueCounts,
    QueueItem,
    QueueItemError,
    QueueItemPage,
    QueueItemStatus,
    QueueItemSummary,
    SessionNodeError,
    SessionNodeResult,
)
from invoke_sdk.storage import LeaseLostError, QueueItemNotFoundError, StorageError
from pydantic_core import PydanticSerializationError, to_json

from invoke_sqlite_storage.database import Database
from invoke_sqlite_storage.queue_retry import insert_retries
from invoke_sqlite_storage.result_inserts import RESULT_COLUMNS, result_statements
from invoke_sqlite_storage.session_rows import path_from_key, path_key

__all__ = ["SqliteSessionQueueStore"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
SUMMARY_COLUMNS = (
    "item_id, queue_id, batch_id, session_id, status, priority, field_values, error_type, error_message, "
    "created_at, updated_at, started_at, completed_at, worker_id, attempts, model_key"
)
FULL_COLUMNS = f"{SUMMARY_COLUMNS}, error_traceback, session"
ORDER = "priority DESC, item_id ASC"
STATUSES: tuple[QueueItemStatus, ...] = ("pending", "in_progress", "completed", "failed", "canceled")
LEASE_EXPIRED_ERROR = "LeaseExpiredError"
NOT_PAUSED = "queue_id NOT IN (SELECT queue_id FROM queue_state WHERE paused = 1)"


def _in(seconds: float) -> str:
    """The ``strftime`` modifier for ``seconds`` from now (SQLite takes fractional seconds)."""
    return f"{seconds:+.3f} seconds"


def _summary_fields(row: sqlite3.Row) -> dict[str, Any]:
    fields = dict(row)
    raw = fields.get("field_values")
    fields["field_values"] = [NodeFieldValue(**v) for v in json.loads(raw)] if raw else None
    return fields


def _summary(row: sqlite3.Row) -> QueueItemSummary:
    return QueueItemSummary(**_summary_fields(row))


def _result(row: sqlite3.Row) -> SessionNodeResult:
    return SessionNodeResult(row[0], row[1], row[2], path_from_key(row[3]), row[4])


def _results_json(results: Sequence[SessionNodeResult]) -> str:
    """The rows as one JSON array of ``[seq, node_id, source_node_id, path key, output text]``, for the one
    statement (``json_each``) that appends a batch whose values cannot be bound (a lone surrogate; the bound
    inserts of ``result_inserts.py`` take every other batch). The output goes in as a JSON string, so it is stored
    exactly as given.
    """
    rows = [(r[0], r[1], r[2], path_key(r[3]), r[4]) for r in results]
    try:
        # pydantic-core's encoder: 0.7 us a row against 1.2 for json.dumps, which escaped each output text more
        # slowly (measured on a 10,000-item iterate's 20,002 rows; it ran on the event loop, 3% of the run).
        return to_json(rows).decode()
    except PydanticSerializationError:
        # A lone surrogate (in a node id: a graph's JSON may spell one) is no UTF-8; json.dumps escapes it.
        return json.dumps(rows, separators=(",", ":"))


def _item(row: sqlite3.Row) -> QueueItem:
    fields = _summary_fields(row)
    # The stored text as it is: decoded only if the session is read (a claim of a held graph, or the item's GET,
    # never reads it).
    return QueueItem.from_stored(fields.pop("session"), **fields)


def _encode_cursor(row: sqlite3.Row) -> str:
    return f"{row['priority']}:{row['item_id']}"


_SQLITE_INT = range(-(2**63), 2**63)


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        priority, item_id = (int(part) for part in cursor.split(":"))
        if priority not in _SQLITE_INT or item_id not in _SQLITE_INT:
            raise ValueError("out of SQLite's integer range")
        return priority, item_id
    except ValueError:
        expected = "'<priority>:<item_id>'"
        raise ValueError(f"cursor {cursor!r} is not one this server gave out (expected {expected})") from None


def _counts(rows: Sequence[sqlite3.Row]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in rows:
        counts[status] = count
    counts["total"] = sum(counts.values())
    return counts


ATTEMPT_FENCE = "attempts = COALESCE(json_extract(?, '$.\"' || item_id || '\"'), attempts)"
"""A renewal's or lease check's fence: the item's ``attempts`` is the one its claim returned (the JSON object of
item id -> attempt names it; an item it leaves out is checked by worker only)."""


def _attempts_json(attempts: Mapping[int, int] | None) -> str:
    return json.dumps({str(k): int(v) for k, v in (attempts or {}).items()})


class SqliteSessionQueueStore:
    """Batches and queue items in the ``batches`` and ``queue_items`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(self, batch: BatchRecord, items: Sequence[NewQueueItem], *, prepend: bool) -> EnqueueResult:
        async def work(conn: aiosqlite.Connection) -> EnqueueResult:
            priority = 0
            if prepend:
                async with conn.execute(
                    "SELECT MAX(priority) FROM queue_items WHERE queue_id = ? AND status = 'pending'",
                    (batch.queue_id,),
                ) as cur:
                    row = await cur.fetchone()
                priority = max(0, (row[0] if row and row[0] is not None else 0)) + 1
            await conn.execute(
                "INSERT INTO batches (batch_id, queue_id, runs, requested, origin, destination) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (batch.batch_id, batch.queue_id, batch.runs, batch.requested, batch.origin, batch.destination),
            )
            # Ids are given explicitly from the highest ever used: this transaction holds the write
            # lock, so they are contiguous and in the batch's order, and never reused after a clear.
            async with conn.execute(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'queue_items'), 0), "
                "COALESCE((SELECT MAX(item_id) FROM queue_items), 0))"
            ) as cur:
                row = await cur.fetchone()
            first = int(row[0] if row else 0) + 1
            # model_key (migration 6) only when an item names one: the migration tests drive this store on a
            # schema from before it, and an item without a main model is the same row either way.
            with_model = any(item.model_key is not None for item in items)
            await conn.executemany(
                "INSERT INTO queue_items (item_id, queue_id, batch_id, session_id, priority, field_values, session"
                + (", model_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)" if with_model else ") VALUES (?, ?, ?, ?, ?, ?, ?)"),
                [
                    (
                        first + i,
                        batch.queue_id,
                        batch.batch_id,
                        item.session_id,
                        priority,
                        json.dumps([v.model_dump(mode="json") for v in item.field_values])
                        if item.field_values is not None
                        else None,
                        item.session_json,
                        *((item.model_key,) if with_model else ()),
                    )
                    for i, item in enumerate(items)
                ],
            )
            async with conn.execute("SELECT created_at FROM batches WHERE batch_id = ?", (batch.batch_id,)) as cur:
                created = await cur.fetchone()
            return EnqueueResult(
                queue_id=batch.queue_id,
                enqueued=len(items),
                requested=batch.requested,
                batch=BatchRecord.model_validate({**batch.model_dump(), "created_at": created[0] if created else None}),
                priority=priority,
                item_ids=list(range(first, first + len(items))),
            )

        try:
            return await self._db.write(work)
        except sqlite3.IntegrityError as exc:
            raise StorageError(f"batch {batch.batch_id} or one of its session ids is already stored: {exc}") from exc

    async def claim_next(
        self,
        queue_id: str | None = None,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        prefer_models: Sequence[str] = (),
        affinity_max_wait_s: float = 0.0,
    ) -> QueueItem | None:
        where = f"status = 'pending' AND {NOT_PAUSED}" + (" AND queue_id = :queue" if queue_id is not None else "")
        order = ORDER
        params: dict[str, Any] = {"queue": queue_id, "worker": worker_id, "lease": _in(lease_seconds)}
        if prefer_models:
            # Within one priority: items that waited out the bound first (oldest first), then those whose model
            # the worker holds, then the rest in enqueue order (see SessionQueueStore.claim_next).
            waited = "created_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', :waited)"
            order = (f"priority DESC, {waited} DESC, "
                     f"(NOT {waited} AND model_key IN (SELECT value FROM json_each(:models))) DESC, item_id ASC")
            params["waited"] = _in(-affinity_max_wait_s)
            params["models"] = json.dumps(list(prefer_models))

        async def work(conn: aiosqlite.Connection) -> QueueItem | None:
            # One statement under the write lock; the status guard makes a double claim impossible even so.
            async with conn.execute(
                f"UPDATE queue_items SET status = 'in_progress', started_at = {NOW}, updated_at = {NOW}, "
                "worker_id = :worker, attempts = attempts + 1, "
                "lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', :lease) "
                f"WHERE item_id = (SELECT item_id FROM queue_items WHERE {where} ORDER BY {order} LIMIT 1) "
                f"AND status = 'pending' RETURNING {FULL_COLUMNS}",
                params,
            ) as cur:
                row = await cur.fetchone()
            return _item(row) if row is not None else None

        return await self._db.write(work)

    async def renew_leases(
        self, worker_id: str, item_ids: Sequence[int], lease_seconds: float, *,
        attempts: Mapping[int, int] | None = None,
    ) -> list[int]:
        wanted = sorted({i for i in item_ids if i in _SQLITE_INT})
        if not wanted:
            return sorted(set(item_ids))

        async def work(conn: aiosqlite.Connection) -> set[int]:
            async with conn.execute(
                "UPDATE queue_items SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) "
                "WHERE item_id IN (SELECT value FROM json_each(?)) AND worker_id = ? AND status = 'in_progress' "
                f"AND {ATTEMPT_FENCE} RETURNING item_id",
                (_in(lease_seconds), json.dumps(wanted), worker_id, _attempts_json(attempts)),
            ) as cur:
                return {int(r[0]) for r in await cur.fetchall()}

        held = await self._db.write(work)
        return sorted(set(item_ids) - held)

    async def lost_leases(
        self, worker_id: str, item_ids: Sequence[int], *, attempts: Mapping[int, int] | None = None
    ) -> list[int]:
        wanted = sorted({i for i in item_ids if i in _SQLITE_INT})
        held: set[int] = set()
        if wanted:
            async with self._db.read() as conn, conn.execute(
                "SELECT item_id FROM queue_items WHERE item_id IN (SELECT value FROM json_each(?)) "
                f"AND worker_id = ? AND status = 'in_progress' AND {ATTEMPT_FENCE}",
                (json.dumps(wanted), worker_id, _attempts_json(attempts)),
            ) as cur:
                held = {int(r[0]) for r in await cur.fetchall()}
        return sorted(set(item_ids) - held)

    async def reclaim_expired(self, max_attempts: int, message: str) -> list[QueueItemSummary]:
        expired = f"status = 'in_progress' AND lease_expires_at < {NOW}"

        async def work(conn: aiosqlite.Connection) -> list[QueueItemSummary]:
            async with conn.execute(
                f"UPDATE queue_items SET status = 'failed', error_type = ?, error_message = ?, "
                f"lease_expires_at = NULL, completed_at = {NOW}, updated_at = {NOW} "
                f"WHERE {expired} AND attempts >= ? RETURNING {SUMMARY_COLUMNS}",
                (LEASE_EXPIRED_ERROR, message, max_attempts),
            ) as cur:
                failed = list(await cur.fetchall())
            async with conn.execute(
                f"UPDATE queue_items SET status = 'pending', lease_expires_at = NULL, started_at = NULL, "
                f"updated_at = {NOW} WHERE {expired} RETURNING {SUMMARY_COLUMNS}",
            ) as cur:
                requeued = list(await cur.fetchall())
            return sorted((_summary(r) for r in [*failed, *requeued]), key=lambda i: i.item_id)

        return await self._db.write(work)

    async def set_paused(self, queue_id: str, paused: bool) -> None:
        async def work(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT INTO queue_state (queue_id, paused) VALUES (?, ?) "
                "ON CONFLICT (queue_id) DO UPDATE SET paused = excluded.paused",
                (queue_id, int(paused)),
            )

        await self._db.write(work)

    async def paused_queues(self) -> set[str]:
        async with self._db.read() as conn, conn.execute("SELECT queue_id FROM queue_state WHERE paused = 1") as cur:
            return {str(r[0]) for r in await cur.fetchall()}

    async def append_progress(
        self,
        item_id: int,
        results: Sequence[SessionNodeResult],
        errors: Sequence[SessionNodeError] = (),
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        async def work(conn: aiosqlite.Connection) -> bool:
            async with conn.execute(
                "SELECT status, worker_id, attempts FROM queue_items WHERE item_id = ?", (item_id,)
            ) as cur:
                found = await cur.fetchone()
            if found is None:
                return False
            if worker_id is not None and (found[1] != worker_id or found[0] not in ("in_progress", "canceled")
                                          or (attempt is not None and found[2] != attempt)):
                raise LeaseLostError(item_id, worker_id, attempt)
            if results:
                try:
                    for sql, params in result_statements(item_id, results):
                        await conn.execute(sql, params)
                except UnicodeEncodeError:
                    # A lone surrogate (in a node id: a graph's JSON may spell one) has no UTF-8 to bind; the batch
                    # goes again as one JSON text, which escapes it (rows already in are skipped by the conflict).
                    # (WHERE true: SQLite's grammar needs it between a SELECT and ON CONFLICT.)
                    await conn.execute(
                        f"INSERT INTO session_results (item_id, {RESULT_COLUMNS}) "
                        "SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
                        "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]') "
                        "FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
                        (item_id, _results_json(results)),
                    )
            if errors:
                await conn.executemany(
                    "INSERT INTO session_errors (item_id, node_id, source_node_id, error_type, message, traceback, "
                    "field) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(item_id, e.node_id, e.source_node_id, e.error_type, e.message, e.traceback, e.field)
                     for e in errors],
                )
            return True

        if item_id not in _SQLITE_INT or not await self._db.write(work):
            raise QueueItemNotFoundError(item_id)

    async def list_results(
        self,
        item_id: int,
        *,
        source_node_id: str | None = None,
        after_seq: int | None = None,
        limit: int,
    ) -> list[SessionNodeResult]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if item_id not in _SQLITE_INT or (after_seq is not None and after_seq not in _SQLITE_INT):
            return []
        if source_node_id is None:
            sql = f"SELECT {RESULT_COLUMNS} FROM session_results WHERE item_id = ? AND seq > ? ORDER BY seq LIMIT ?"
            params: tuple[Any, ...] = (item_id, -1 if after_seq is None else after_seq, limit)
        elif after_seq is None:
            sql = (f"SELECT {RESULT_COLUMNS} FROM session_results WHERE item_id = ? AND source_node_id = ? "
                   "ORDER BY path LIMIT ?")
            params = (item_id, source_node_id, limit)
        else:
            sql = (f"SELECT {RESULT_COLUMNS} FROM session_results WHERE item_id = ?1 AND source_node_id = ?2 "
                   "AND path > (SELECT path FROM session_results WHERE item_id = ?1 AND seq = ?3) "
                   "ORDER BY path LIMIT ?4")
            params = (item_id, source_node_id, after_seq, limit)
        async with self._db.read() as conn, conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [_result(r) for r in rows]

    async def list_errors(self, item_id: int) -> list[SessionNodeError]:
        if item_id not in _SQLITE_INT:
            return []
        async with self._db.read() as conn, conn.execute(
            "SELECT node_id, source_node_id, error_type, message, traceback, field FROM session_errors "
            "WHERE item_id = ? ORDER BY rowid",
            (item_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [SessionNodeError(*r) for r in rows]

    async def result_counts(self, item_id: int) -> dict[str, int]:
        if item_id not in _SQLITE_INT:
            return {}
        async with self._db.read() as conn, conn.execute(
            "SELECT source_node_id, COUNT(*) FROM session_results WHERE item_id = ? GROUP BY source_node_id",
            (item_id,),
        ) as cur:
            rows = await cur.fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    async def finish(
        self,
        item_id: int,
        status: Literal["completed", "failed", "canceled"],
        *,
        error: QueueItemError | None = None,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> QueueItemSummary:
        if status not in ("completed", "failed", "canceled"):
            raise ValueError(f"{status!r} is not a final status")
        guard_params: tuple[Any, ...]
        if worker_id is None:
            guard, guard_params = "status IN ('pending', 'in_progress')", ()
        else:
            # A worker finishes only what it still holds, under the claim it ran: a zombie's late finish (its lease
            # expired and the item was claimed again) leaves the item as it is.
            guard, guard_params = "status = 'in_progress' AND worker_id = ?", (worker_id,)
            if attempt is not None:
                guard, guard_params = f"{guard} AND attempts = ?", (*guard_params, attempt)

        async def work(conn: aiosqlite.Connection) -> QueueItemSummary:
            # The summary only: the session (a graph of up to max_graph_nodes) is not read back to finish an item.
            async with conn.execute(
                f"UPDATE queue_items SET status = ?, error_type = ?, error_message = ?, error_traceback = ?, "
                f"completed_at = {NOW}, updated_at = {NOW}, lease_expires_at = NULL "
                f"WHERE item_id = ? AND {guard} RETURNING {SUMMARY_COLUMNS}",
                (
                    status,
                    error.error_type if error else None,
                    error.error_message if error else None,
                    error.error_traceback if error else None,
                    item_id,
                    *guard_params,
                ),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                async with conn.execute(
                    f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE item_id = ?", (item_id,)
                ) as c:
                    row = await c.fetchone()
            if row is None:
                raise QueueItemNotFoundError(item_id)
            return _summary(row)

        return await self._db.write(work)

    async def get(self, item_id: int) -> QueueItem | None:
        if item_id not in _SQLITE_INT:
            return None  # no stored id is out of range, and the driver would overflow on it
        async with self._db.read() as conn, conn.execute(
            f"SELECT {FULL_COLUMNS} FROM queue_items WHERE item_id = ?", (item_id,)
        ) as cur:
            row = await cur.fetchone()
        return _item(row) if row is not None else None

    async def get_summary(self, item_id: int) -> QueueItemSummary | None:
        if item_id not in _SQLITE_INT:
            return None
        async with self._db.read() as conn, conn.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE item_id = ?", (item_id,)
        ) as cur:
            row = await cur.fetchone()
        return _summary(row) if row is not None else None

    async def current(self, queue_id: str) -> QueueItemSummary | None:
        async with self._db.read() as conn, conn.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE queue_id = ? AND status = 'in_progress' "
            "ORDER BY started_at, item_id LIMIT 1",
            (queue_id,),
        ) as cur:
            row = await cur.fetchone()
        return _summary(row) if row is not None else None

    async def list_items(
        self,
        queue_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        offset: int | None = None,
        status: QueueItemStatus | None = None,
    ) -> QueueItemPage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where = ["queue_id = ?"]
        params: list[Any] = [queue_id]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        count_sql = f"SELECT COUNT(*) FROM queue_items WHERE {' AND '.join(where)}"
        count_params = list(params)
        if cursor is not None:
            priority, item_id = _decode_cursor(cursor)
            where.append("(priority < ? OR (priority = ? AND item_id > ?))")
            params += [priority, priority, item_id]
        sql = f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE {' AND '.join(where)} ORDER BY {ORDER} LIMIT ?"
        params.append(limit + 1)
        if offset is not None and cursor is None:
            sql += " OFFSET ?"
            params.append(offset)
        async with self._db.read() as conn:
            async with conn.execute(sql, params) as cur:
                rows = list(await cur.fetchall())
            async with conn.execute(count_sql, count_params) as cur:
                total_row = await cur.fetchone()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return QueueItemPage(
            items=[_summary(r) for r in rows],
            limit=limit,
            has_more=has_more,
            next_cursor=_encode_cursor(rows[-1]) if has_more and rows else None,
            offset=offset if cursor is None else None,
            total=int(total_row[0]) if total_row else 0,
        )

    async def counts(self, queue_id: str) -> QueueCounts:
        async with self._db.read() as conn, conn.execute(
            "SELECT status, COUNT(*) FROM queue_items WHERE queue_id = ? GROUP BY status", (queue_id,)
        ) as cur:
            rows = list(await cur.fetchall())
        return QueueCounts(queue_id=queue_id, **_counts(rows))

    async def batch_status(self, queue_id: str, batch_id: str) -> BatchStatus | None:
        async with self._db.read() as conn:
            async with conn.execute(
                "SELECT origin, destination FROM batches WHERE queue_id = ? AND batch_id = ?", (queue_id, batch_id)
            ) as cur:
                batch = await cur.fetchone()
            if batch is None:
                return None
            async with conn.execute(
                "SELECT status, COUNT(*) FROM queue_items WHERE batch_id = ? GROUP BY status", (batch_id,)
            ) as cur:
                rows = list(await cur.fetchall())
        return BatchStatus(
            queue_id=queue_id,
            batch_id=batch_id,
            origin=batch["origin"],
            destination=batch["destination"],
            **_counts(rows),
        )

    async def _cancel_where(self, where: str, params: tuple[Any, ...]) -> list[int]:
        async def work(conn: aiosqlite.Connection) -> list[int]:
            async with conn.execute(
                f"UPDATE queue_items SET status = 'canceled', completed_at = {NOW}, updated_at = {NOW}, "
                f"lease_expires_at = NULL WHERE {where} RETURNING item_id",
                params,
            ) as cur:
                rows = await cur.fetchall()
            return sorted(int(r[0]) for r in rows)

        return await self._db.write(work)

    async def cancel_batches(self, queue_id: str, batch_ids: Sequence[str]) -> list[int]:
        return await self._cancel_where(
            "queue_id = ? AND status IN ('pending', 'in_progress') "
            "AND batch_id IN (SELECT value FROM json_each(?))",
            (queue_id, json.dumps(list(batch_ids))),
        )

    async def cancel_pending(self, queue_id: str) -> list[int]:
        return await self._cancel_where("queue_id = ? AND status = 'pending'", (queue_id,))

    async def clear(self, queue_id: str) -> int:
        async def work(conn: aiosqlite.Connection) -> int:
            cur = await conn.execute("DELETE FROM queue_items WHERE queue_id = ?", (queue_id,))
            deleted = cur.rowcount
            await conn.execute("DELETE FROM batches WHERE queue_id = ?", (queue_id,))
            return deleted

        deleted = await self._db.write(work)
        await self._db.reclaim_space()
        return deleted

    async def prune(self, queue_id: str) -> int:
        async def work(conn: aiosqlite.Connection) -> int:
            cur = await conn.execute(
                "DELETE FROM queue_items WHERE queue_id = ? AND status IN ('completed', 'failed', 'canceled')",
                (queue_id,),
            )
            deleted = cur.rowcount
            await conn.execute(
                "DELETE FROM batches WHERE queue_id = ? "
                "AND NOT EXISTS (SELECT 1 FROM queue_items WHERE queue_items.batch_id = batches.batch_id)",
                (queue_id,),
            )
            return deleted

        deleted = await self._db.write(work)
        await self._db.reclaim_space()
        return deleted

    async def fail_interrupted(self, message: str) -> list[QueueItemSummary]:
        async def work(conn: aiosqlite.Connection) -> list[QueueItemSummary]:
            async with conn.execute(
                f"UPDATE queue_items SET status = 'failed', error_type = 'ServerStoppedError', error_message = ?, "
                f"completed_at = {NOW}, updated_at = {NOW} WHERE status = 'in_progress' RETURNING {SUMMARY_COLUMNS}",
                (message,),
            ) as cur:
                rows = await cur.fetchall()
            return sorted((_summary(r) for r in rows), key=lambda i: i.item_id)

        return await self._db.write(work)

    async def retry(self, queue_id: str, retries: Sequence[tuple[int, NewQueueItem]]) -> list[tuple[int, int]]:
        return await insert_retries(self._db, queue_id, retries)
