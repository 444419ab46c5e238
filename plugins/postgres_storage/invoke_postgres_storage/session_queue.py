"""The session-queue store on PostgreSQL: items in ``queue_items``, progress in rows (migration 1), leases and queue
state (migration 4).

Many nodes share the queue. A claim takes the first pending item with ``FOR UPDATE SKIP LOCKED``, so concurrent
claimers (in any process, on any machine) each take a different item without waiting on each other. Enqueues
take a transaction-level advisory lock, so a prepended batch's priority is computed against a queue no other
enqueue is changing, and item ids are numbered from ``queue_item_ids`` in the batch's order (the order items run in).
Results are appended as rows in one pipelined round trip per batch; nothing is rewritten while a session runs.

Lease times are computed by the server (``clock_timestamp()``), so every node uses one clock. Renewals and guarded
writes are ``UPDATE ... WHERE worker_id = $w AND status = 'in_progress'``: a row another transaction changes meanwhile
is re-checked against that condition once it commits, so a reclaimed item is never written by its old holder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

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
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from invoke_postgres_storage.database import Connection, Database
from invoke_postgres_storage.queue_retry import insert_retries

__all__ = ["PostgresSessionQueueStore"]

SUMMARY_COLUMNS = (
    "item_id, queue_id, batch_id, session_id, status, priority, field_values, error_type, error_message, "
    "created_at, updated_at, started_at, completed_at, worker_id, attempts, model_key"
)
FULL_COLUMNS = f"{SUMMARY_COLUMNS}, error_traceback, session"
RESULT_COLUMNS = "seq, node_id, source_node_id, path, output"
ORDER = "priority DESC, item_id ASC"
STATUSES: tuple[QueueItemStatus, ...] = ("pending", "in_progress", "completed", "failed", "canceled")
NOW = "clock_timestamp()"
LEASE_EXPIRED_ERROR = "LeaseExpiredError"
NOT_PAUSED = "queue_id NOT IN (SELECT queue_id FROM queue_state WHERE paused)"
ENQUEUE_LOCK = 0x1D0CE_5C4E_3A01
"""The advisory lock key enqueues take for their transaction."""

ATTEMPT_FENCE = "attempts = COALESCE((%s::jsonb ->> item_id::text)::int, attempts)"
"""A renewal's or lease check's fence: the item's ``attempts`` is the one its claim returned (the JSON object of
item id -> attempt names it; an item it leaves out is checked by worker only)."""

_BIGINT = range(-(2**63), 2**63)
_INT = range(-(2**31), 2**31)


def _in(param: str) -> str:
    """The time ``param`` seconds (a float parameter, may be negative) from now on the server's clock."""
    return f"{NOW} + make_interval(secs => {param})"


def _attempts(attempts: Mapping[int, int] | None) -> Jsonb:
    return Jsonb({str(k): int(v) for k, v in (attempts or {}).items()})


def _summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    fields = dict(row)
    raw = fields.get("field_values")
    fields["field_values"] = [NodeFieldValue(**v) for v in raw] if raw is not None else None
    return fields


def _summary(row: dict[str, Any]) -> QueueItemSummary:
    return QueueItemSummary(**_summary_fields(row))


def _item(row: dict[str, Any]) -> QueueItem:
    fields = _summary_fields(row)
    # The stored text as it is: decoded only if the session is read (a claim of a held graph, or the item's GET,
    # never reads it).
    return QueueItem.from_stored(fields.pop("session"), **fields)


def _result(row: tuple[Any, ...]) -> SessionNodeResult:
    return SessionNodeResult(row[0], row[1], row[2], tuple(row[3]), row[4])


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        priority, item_id = (int(part) for part in cursor.split(":"))
        if priority not in _BIGINT or item_id not in _BIGINT:
            raise ValueError("out of range")
        return priority, item_id
    except ValueError:
        expected = "'<priority>:<item_id>'"
        raise ValueError(f"cursor {cursor!r} is not one this server gave out (expected {expected})") from None


def _counts(rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in rows:
        counts[status] = int(count)
    counts["total"] = sum(counts.values())
    return counts


class PostgresSessionQueueStore:
    """Batches and queue items in the ``batches`` and ``queue_items`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(self, batch: BatchRecord, items: Sequence[NewQueueItem], *, prepend: bool) -> EnqueueResult:
        async def work(conn: Connection) -> EnqueueResult:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ENQUEUE_LOCK,))
            priority = 0
            if prepend:
                cur = await conn.execute(
                    "SELECT MAX(priority) FROM queue_items WHERE queue_id = %s AND status = 'pending'",
                    (batch.queue_id,),
                )
                row = await cur.fetchone()
                priority = max(0, (int(row[0]) if row and row[0] is not None else 0)) + 1
            cur = await conn.execute(
                "INSERT INTO batches (batch_id, queue_id, runs, requested, origin, destination) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING created_at",
                (batch.batch_id, batch.queue_id, batch.runs, batch.requested, batch.origin, batch.destination),
            )
            created = await cur.fetchone()
            cur = await conn.execute("UPDATE queue_item_ids SET last = last + %s RETURNING last", (len(items),))
            row = await cur.fetchone()
            first = int(row[0]) - len(items) + 1 if row else 1
            # One statement for the whole batch, numbered in the order given. model_key (migration 4) only when an
            # item names one: the migration tests drive this store on a schema from before it, and an item without
            # a main model is the same row either way.
            with_model = any(item.model_key is not None for item in items)
            await conn.execute(
                "INSERT INTO queue_items (item_id, queue_id, batch_id, session_id, priority, field_values, session"
                + (", model_key) SELECT %s + n - 1, %s, %s, s, %s, f, t, m "
                   "FROM unnest(%s::text[], %s::jsonb[], %s::text[], %s::text[]) WITH ORDINALITY AS i (s, f, t, m, n)"
                   if with_model else
                   ") SELECT %s + n - 1, %s, %s, s, %s, f, t "
                   "FROM unnest(%s::text[], %s::jsonb[], %s::text[]) WITH ORDINALITY AS i (s, f, t, n)"),
                (
                    first,
                    batch.queue_id,
                    batch.batch_id,
                    priority,
                    [item.session_id for item in items],
                    [
                        Jsonb([v.model_dump(mode="json") for v in item.field_values])
                        if item.field_values is not None else None
                        for item in items
                    ],
                    [item.session_json for item in items],
                    *(([item.model_key for item in items],) if with_model else ()),
                ),
            )
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
        except pg_errors.UniqueViolation as exc:
            raise StorageError(
                f"batch {batch.batch_id} or one of its session ids is already stored: {exc.diag.message_detail}"
            ) from exc

    async def claim_next(
        self,
        queue_id: str | None = None,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        prefer_models: Sequence[str] = (),
        affinity_max_wait_s: float = 0.0,
    ) -> QueueItem | None:
        where = f"status = 'pending' AND {NOT_PAUSED}" + (" AND queue_id = %(queue)s" if queue_id is not None else "")
        order = ORDER
        params: dict[str, Any] = {"queue": queue_id, "worker": worker_id, "lease": float(lease_seconds)}
        if prefer_models:
            # Within one priority: items that waited out the bound first (oldest first), then those whose model
            # the worker holds, then the rest in enqueue order (see SessionQueueStore.claim_next). The bound is
            # one instant for the whole statement; IS TRUE because a NULL model_key would sort first in DESC.
            waited = "created_at <= statement_timestamp() - make_interval(secs => %(waited)s)"
            order = (f"priority DESC, ({waited}) DESC, "
                     f"(NOT ({waited}) AND model_key = ANY(%(models)s::text[])) IS TRUE DESC, item_id ASC")
            params["waited"] = float(affinity_max_wait_s)
            params["models"] = list(prefer_models)

        async def work(conn: Connection) -> QueueItem | None:
            # SKIP LOCKED: a row another claimer has just locked is passed over, not waited for, so claimers never
            # share an item and never queue up behind each other.
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"UPDATE queue_items SET status = 'in_progress', started_at = {NOW}, updated_at = {NOW}, "
                f"worker_id = %(worker)s, attempts = attempts + 1, lease_expires_at = {_in('%(lease)s')} "
                f"WHERE item_id = (SELECT item_id FROM queue_items WHERE {where} ORDER BY {order} LIMIT 1 "
                f"FOR UPDATE SKIP LOCKED) AND status = 'pending' RETURNING {FULL_COLUMNS}",
                params,
            )
            row = await cur.fetchone()
            return _item(row) if row is not None else None

        return await self._db.run(work)

    async def renew_leases(
        self, worker_id: str, item_ids: Sequence[int], lease_seconds: float, *,
        attempts: Mapping[int, int] | None = None,
    ) -> list[int]:
        wanted = sorted({i for i in item_ids if i in _BIGINT})
        if not wanted:
            return sorted(set(item_ids))

        async def work(conn: Connection) -> set[int]:
            cur = await conn.execute(
                f"UPDATE queue_items SET lease_expires_at = {_in('%s')} "
                "WHERE item_id = ANY(%s::bigint[]) AND worker_id = %s AND status = 'in_progress' "
                f"AND {ATTEMPT_FENCE} RETURNING item_id",
                (float(lease_seconds), wanted, worker_id, _attempts(attempts)),
            )
            return {int(r[0]) for r in await cur.fetchall()}  # type: ignore[call-overload]

        held = await self._db.write(work)
        return sorted(set(item_ids) - held)

    async def lost_leases(
        self, worker_id: str, item_ids: Sequence[int], *, attempts: Mapping[int, int] | None = None
    ) -> list[int]:
        wanted = sorted({i for i in item_ids if i in _BIGINT})
        held: set[int] = set()
        if wanted:
            async def work(conn: Connection) -> set[int]:
                cur = await conn.execute(
                    "SELECT item_id FROM queue_items WHERE item_id = ANY(%s::bigint[]) AND worker_id = %s "
                    f"AND status = 'in_progress' AND {ATTEMPT_FENCE}",
                    (wanted, worker_id, _attempts(attempts)),
                )
                return {int(r[0]) for r in await cur.fetchall()}  # type: ignore[call-overload]

            held = await self._db.run(work)
        return sorted(set(item_ids) - held)

    async def reclaim_expired(self, max_attempts: int, message: str) -> list[QueueItemSummary]:
        async def work(conn: Connection) -> list[QueueItemSummary]:
            # One statement: items with attempts left go back to pending, the others fail. SKIP LOCKED: a row another
            # node's reclaim (or its holder's renewal) has locked is left to it, so concurrent reclaims never wait on
            # each other, never deadlock, and each item is taken back once.
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"UPDATE queue_items SET "
                "status = CASE WHEN attempts >= %(max)s THEN 'failed' ELSE 'pending' END, "
                "error_type = CASE WHEN attempts >= %(max)s THEN %(error)s ELSE error_type END, "
                "error_message = CASE WHEN attempts >= %(max)s THEN %(message)s ELSE error_message END, "
                f"completed_at = CASE WHEN attempts >= %(max)s THEN {NOW} ELSE completed_at END, "
                "started_at = CASE WHEN attempts >= %(max)s THEN started_at END, "
                f"lease_expires_at = NULL, updated_at = {NOW} "
                "WHERE item_id IN (SELECT item_id FROM queue_items WHERE status = 'in_progress' "
                f"AND lease_expires_at < {NOW} ORDER BY item_id FOR UPDATE SKIP LOCKED) "
                f"AND status = 'in_progress' RETURNING {SUMMARY_COLUMNS}",
                {"max": max_attempts, "error": LEASE_EXPIRED_ERROR, "message": message},
            )
            return sorted((_summary(r) for r in await cur.fetchall()), key=lambda i: i.item_id)

        return await self._db.write(work)

    async def set_paused(self, queue_id: str, paused: bool) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO queue_state (queue_id, paused) VALUES (%s, %s) "
                "ON CONFLICT (queue_id) DO UPDATE SET paused = excluded.paused",
                (queue_id, bool(paused)),
            )

        await self._db.write(work)

    async def paused_queues(self) -> set[str]:
        async def work(conn: Connection) -> set[str]:
            cur = await conn.execute("SELECT queue_id FROM queue_state WHERE paused")
            return {str(r[0]) for r in await cur.fetchall()}  # type: ignore[call-overload]

        return await self._db.run(work)

    async def append_progress(
        self,
        item_id: int,
        results: Sequence[SessionNodeResult],
        errors: Sequence[SessionNodeError] = (),
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        # A worker's write holds the row FOR SHARE until it commits: a reclaim or cancel of the item waits for it,
        # so the check below still holds when the rows land. Without a worker only deletion has to wait.
        lock = "FOR KEY SHARE" if worker_id is None else "FOR SHARE"

        async def work(conn: Connection) -> bool:
            cur = await conn.execute(
                f"SELECT status, worker_id, attempts FROM queue_items WHERE item_id = %s {lock}", (item_id,)
            )
            found = await cur.fetchone()
            if found is None:
                return False
            if worker_id is not None and (found[1] != worker_id or found[0] not in ("in_progress", "canceled")
                                          or (attempt is not None and found[2] != attempt)):
                raise LeaseLostError(item_id, worker_id, attempt)
            # executemany runs in pipeline mode: every row of the batch goes in one round trip.
            # ON CONFLICT DO NOTHING: a row already stored (same seq, or same instance) is never stored twice.
            async with conn.cursor() as many:
                if results:
                    await many.executemany(
                        f"INSERT INTO session_results (item_id, {RESULT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        [(item_id, r[0], r[1], r[2], list(r[3]), r[4]) for r in results],
                    )
                if errors:
                    await many.executemany(
                        "INSERT INTO session_errors (item_id, node_id, source_node_id, error_type, message, traceback, "
                        "field) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [(item_id, e.node_id, e.source_node_id, e.error_type, e.message, e.traceback, e.field)
                         for e in errors],
                    )
            return True

        if item_id not in _BIGINT or not await self._db.write(work):
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
        if item_id not in _BIGINT or (after_seq is not None and after_seq not in _INT):
            return []
        limit = min(limit, 2**63 - 1)
        if source_node_id is None:
            sql = (f"SELECT {RESULT_COLUMNS} FROM session_results WHERE item_id = %s AND seq > %s "
                   "ORDER BY seq LIMIT %s")
            params: tuple[Any, ...] = (item_id, -1 if after_seq is None else after_seq, limit)
        elif after_seq is None:
            sql = (f"SELECT {RESULT_COLUMNS} FROM session_results WHERE item_id = %s AND source_node_id = %s "
                   "ORDER BY path LIMIT %s")
            params = (item_id, source_node_id, limit)
        else:
            sql = (f"SELECT {RESULT_COLUMNS} FROM session_results WHERE item_id = %(item)s "
                   "AND source_node_id = %(source)s "
                   "AND path > (SELECT path FROM session_results WHERE item_id = %(item)s AND seq = %(seq)s) "
                   "ORDER BY path LIMIT %(limit)s")
            params = {"item": item_id, "source": source_node_id, "seq": after_seq, "limit": limit}  # type: ignore[assignment]

        async def work(conn: Connection) -> list[SessionNodeResult]:
            cur = await conn.execute(sql, params)
            return [_result(r) for r in await cur.fetchall()]

        return await self._db.run(work)

    async def list_errors(self, item_id: int) -> list[SessionNodeError]:
        if item_id not in _BIGINT:
            return []

        async def work(conn: Connection) -> list[SessionNodeError]:
            cur = await conn.execute(
                "SELECT node_id, source_node_id, error_type, message, traceback, field FROM session_errors "
                "WHERE item_id = %s ORDER BY stored",
                (item_id,),
            )
            return [SessionNodeError(*r) for r in await cur.fetchall()]

        return await self._db.run(work)

    async def result_counts(self, item_id: int) -> dict[str, int]:
        if item_id not in _BIGINT:
            return {}

        async def work(conn: Connection) -> dict[str, int]:
            cur = await conn.execute(
                "SELECT source_node_id, COUNT(*) FROM session_results WHERE item_id = %s GROUP BY source_node_id",
                (item_id,),
            )
            return {str(r[0]): int(r[1]) for r in await cur.fetchall()}  # type: ignore[call-overload]

        return await self._db.run(work)

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
        if item_id not in _BIGINT:
            raise QueueItemNotFoundError(item_id)
        guard_params: tuple[Any, ...]
        if worker_id is None:
            guard, guard_params = "status IN ('pending', 'in_progress')", ()
        else:
            # A worker finishes only what it still holds, under the claim it ran: a zombie's late finish (its lease
            # expired and the item was claimed again) leaves the item as it is.
            guard, guard_params = "status = 'in_progress' AND worker_id = %s", (worker_id,)
            if attempt is not None:
                guard, guard_params = f"{guard} AND attempts = %s", (*guard_params, attempt)

        async def work(conn: Connection) -> QueueItemSummary:
            cur = conn.cursor(row_factory=dict_row)
            # The status guard makes a retry (after a lost reply) change nothing: the item is already final.
            await cur.execute(
                f"UPDATE queue_items SET status = %s, error_type = %s, error_message = %s, error_traceback = %s, "
                f"completed_at = {NOW}, updated_at = {NOW}, lease_expires_at = NULL "
                f"WHERE item_id = %s AND {guard} RETURNING {SUMMARY_COLUMNS}",
                (
                    status,
                    error.error_type if error else None,
                    error.error_message if error else None,
                    error.error_traceback if error else None,
                    item_id,
                    *guard_params,
                ),
            )
            row = await cur.fetchone()
            if row is None:
                await cur.execute(f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE item_id = %s", (item_id,))
                row = await cur.fetchone()
            if row is None:
                raise QueueItemNotFoundError(item_id)
            return _summary(row)

        return await self._db.write(work)

    async def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        async def work(conn: Connection) -> dict[str, Any] | None:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            return await cur.fetchone()

        return await self._db.run(work)

    async def get(self, item_id: int) -> QueueItem | None:
        if item_id not in _BIGINT:
            return None  # no stored id is out of range, and the server would refuse it
        row = await self._one(f"SELECT {FULL_COLUMNS} FROM queue_items WHERE item_id = %s", (item_id,))
        return _item(row) if row is not None else None

    async def get_summary(self, item_id: int) -> QueueItemSummary | None:
        if item_id not in _BIGINT:
            return None
        row = await self._one(f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE item_id = %s", (item_id,))
        return _summary(row) if row is not None else None

    async def current(self, queue_id: str) -> QueueItemSummary | None:
        row = await self._one(
            f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE queue_id = %s AND status = 'in_progress' "
            "ORDER BY started_at, item_id LIMIT 1",
            (queue_id,),
        )
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
        where = ["queue_id = %s"]
        params: list[Any] = [queue_id]
        if status is not None:
            where.append("status = %s")
            params.append(status)
        count_sql = f"SELECT COUNT(*) FROM queue_items WHERE {' AND '.join(where)}"
        count_params = list(params)
        if cursor is not None:
            priority, item_id = _decode_cursor(cursor)
            where.append("(priority < %s OR (priority = %s AND item_id > %s))")
            params += [priority, priority, item_id]
        sql = f"SELECT {SUMMARY_COLUMNS} FROM queue_items WHERE {' AND '.join(where)} ORDER BY {ORDER} LIMIT %s"
        params.append(min(limit + 1, 2**63 - 1))
        if offset is not None and cursor is None:
            sql += " OFFSET %s"
            params.append(min(offset, 2**63 - 1))

        async def work(conn: Connection) -> tuple[list[dict[str, Any]], int]:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            rows = await cur.fetchall()
            counted = await conn.execute(count_sql, count_params)
            total = await counted.fetchone()
            return rows, int(total[0]) if total else 0

        rows, total = await self._db.run(work)
        has_more = len(rows) > limit
        rows = rows[:limit]
        return QueueItemPage(
            items=[_summary(r) for r in rows],
            limit=limit,
            has_more=has_more,
            next_cursor=f"{rows[-1]['priority']}:{rows[-1]['item_id']}" if has_more and rows else None,
            offset=offset if cursor is None else None,
            total=total,
        )

    async def _status_counts(self, sql: str, params: tuple[Any, ...]) -> dict[str, int]:
        async def work(conn: Connection) -> dict[str, int]:
            cur = await conn.execute(sql, params)
            return _counts(await cur.fetchall())

        return await self._db.run(work)

    async def counts(self, queue_id: str) -> QueueCounts:
        counts = await self._status_counts(
            "SELECT status, COUNT(*) FROM queue_items WHERE queue_id = %s GROUP BY status", (queue_id,)
        )
        return QueueCounts(queue_id=queue_id, **counts)

    async def batch_status(self, queue_id: str, batch_id: str) -> BatchStatus | None:
        batch = await self._one(
            "SELECT origin, destination FROM batches WHERE queue_id = %s AND batch_id = %s", (queue_id, batch_id)
        )
        if batch is None:
            return None
        counts = await self._status_counts(
            "SELECT status, COUNT(*) FROM queue_items WHERE batch_id = %s GROUP BY status", (batch_id,)
        )
        return BatchStatus(
            queue_id=queue_id, batch_id=batch_id, origin=batch["origin"], destination=batch["destination"], **counts
        )

    async def _cancel_where(self, where: str, params: tuple[Any, ...]) -> list[int]:
        async def work(conn: Connection) -> list[int]:
            cur = await conn.execute(
                f"UPDATE queue_items SET status = 'canceled', completed_at = {NOW}, updated_at = {NOW}, "
                f"lease_expires_at = NULL WHERE {where} RETURNING item_id",
                params,
            )
            return sorted(int(r[0]) for r in await cur.fetchall())  # type: ignore[call-overload]

        return await self._db.write(work)

    async def cancel_batches(self, queue_id: str, batch_ids: Sequence[str]) -> list[int]:
        return await self._cancel_where(
            "queue_id = %s AND status IN ('pending', 'in_progress') AND batch_id = ANY(%s::text[])",
            (queue_id, list(batch_ids)),
        )

    async def cancel_pending(self, queue_id: str) -> list[int]:
        return await self._cancel_where("queue_id = %s AND status = 'pending'", (queue_id,))

    # Deleted rows' space is reused by PostgreSQL once (auto)vacuum has seen them; nothing to hand back here.
    async def clear(self, queue_id: str) -> int:
        async def work(conn: Connection) -> int:
            cur = await conn.execute("DELETE FROM queue_items WHERE queue_id = %s", (queue_id,))
            deleted = cur.rowcount
            await conn.execute("DELETE FROM batches WHERE queue_id = %s", (queue_id,))
            return deleted

        return await self._db.write(work)

    async def prune(self, queue_id: str) -> int:
        async def work(conn: Connection) -> int:
            cur = await conn.execute(
                "DELETE FROM queue_items WHERE queue_id = %s AND status IN ('completed', 'failed', 'canceled')",
                (queue_id,),
            )
            deleted = cur.rowcount
            await conn.execute(
                "DELETE FROM batches WHERE queue_id = %s "
                "AND NOT EXISTS (SELECT 1 FROM queue_items WHERE queue_items.batch_id = batches.batch_id)",
                (queue_id,),
            )
            return deleted

        return await self._db.write(work)

    async def fail_interrupted(self, message: str) -> list[QueueItemSummary]:
        async def work(conn: Connection) -> list[QueueItemSummary]:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"UPDATE queue_items SET status = 'failed', error_type = 'ServerStoppedError', error_message = %s, "
                f"completed_at = {NOW}, updated_at = {NOW} WHERE status = 'in_progress' RETURNING {SUMMARY_COLUMNS}",
                (message,),
            )
            return sorted((_summary(r) for r in await cur.fetchall()), key=lambda i: i.item_id)

        return await self._db.write(work)

    async def retry(self, queue_id: str, retries: Sequence[tuple[int, NewQueueItem]]) -> list[tuple[int, int]]:
        return await insert_retries(self._db, queue_id, retries, ENQUEUE_LOCK)
