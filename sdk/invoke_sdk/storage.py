"""Storage backends: what the host asks of a database, with no SQL in sight.

A backend plugin registers a :class:`StorageBackendFactory` through the
``register_storage_backends`` hook. The host picks one by name (config ``storage_backend``,
default ``sqlite``), creates it with the data root, starts it (open, migrate) and reads its
stores. Each store is a Protocol here; a backend offers one attribute per store.

Stores: :attr:`StorageBackend.session_queue`, :attr:`StorageBackend.images` and
:attr:`StorageBackend.model_records`, one attribute each (and, in an SQL backend, one numbered
migration each), so one database file and one migration history hold everything.

Every method is a coroutine and must not block the event loop: run database work in a thread
(aiosqlite does) or use an async driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from invoke_sdk.images import ImageRecordStore
from invoke_sdk.models.records import ModelRecordStore
from invoke_sdk.session_queue import (
    BatchRecord,
    BatchStatus,
    EnqueueResult,
    NewQueueItem,
    QueueCounts,
    QueueItem,
    QueueItemError,
    QueueItemPage,
    QueueItemStatus,
    QueueItemSummary,
    SessionNodeError,
    SessionNodeResult,
)
from invoke_sdk.storage_base import StorageError, StorageOptions

__all__ = [
    "LeaseLostError",
    "QueueItemNotFoundError",
    "SessionQueueStore",
    "StorageBackend",
    "StorageBackendFactory",
    "StorageError",
    "StorageOptions",
]


class QueueItemNotFoundError(StorageError, LookupError):
    """No queue item has the given id."""

    def __init__(self, item_id: int) -> None:
        super().__init__(f"there is no queue item {item_id}")
        self.item_id = item_id


class LeaseLostError(StorageError):
    """The worker no longer holds this item: its lease expired and the item was reclaimed (and perhaps claimed by
    another worker), or it was canceled, finished or deleted meanwhile. A worker that gets this stops the item
    and writes nothing more for it."""

    def __init__(self, item_id: int, worker_id: str, attempt: int | None = None) -> None:
        claim = f" under its claim of attempt {attempt}" if attempt is not None else ""
        super().__init__(
            f"worker {worker_id!r} no longer holds queue item {item_id}{claim} (its lease was lost); its write was "
            "refused"
        )
        self.item_id = item_id
        self.worker_id = worker_id
        self.attempt = attempt


@runtime_checkable
class SessionQueueStore(Protocol):
    """Durable batches and queue items, shared by every node (API nodes and workers) of one deployment.

    Order: higher ``priority`` first, then enqueue order (``item_id``). Items move forward
    (pending -> in_progress -> completed/failed/canceled, or pending -> canceled), with one way back: an
    ``in_progress`` item whose lease expired returns to ``pending`` (:meth:`reclaim_expired`) while it has
    attempts left. A terminal item never changes status again.

    **Leases** (docs/deploy.md, "Failure model"). A worker claims an item under its ``worker_id`` for
    ``lease_seconds``: the item records the worker (``worker_id``), when the lease ends (``lease_expires_at``, on
    the database's clock, never a worker's) and how many claims it had (``attempts``). The worker renews its
    leases while it runs (:meth:`renew_leases`); a worker that dies stops renewing, and any node's
    :meth:`reclaim_expired` puts its items back to ``pending`` (or fails them once ``max_attempts`` claims were
    made). Every write a worker makes for a running item names its ``worker_id`` and is refused once the item is
    no longer held by it, so a worker that lost its lease (a zombie) cannot finish or write an item it lost.

    In PostgreSQL each operation is one statement or one short transaction on the item rows: the claim is
    ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1`` then ``UPDATE``; renew, reclaim and the guarded writes are
    ``UPDATE ... WHERE worker_id = $w AND status = 'in_progress'``. In SQLite every write is one transaction
    under the single writer lock, which serializes claimers across processes sharing the file (WAL).
    """

    async def enqueue(self, batch: BatchRecord, items: Sequence[NewQueueItem], *, prepend: bool) -> EnqueueResult:
        """Store the batch and all its items in one transaction, in the given order.

        ``prepend`` gives the items a priority above every pending item of the queue, so they
        run next; otherwise they get priority 0 and run after what is already queued.
        """
        ...

    async def claim_next(
        self,
        queue_id: str | None = None,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        prefer_models: Sequence[str] = (),
        affinity_max_wait_s: float = 0.0,
    ) -> QueueItem | None:
        """Atomically take the next pending item (of one queue, or of any) and mark it ``in_progress``.

        Concurrent claimers, in this process or another on the same database, never take the same item.
        Items of a paused queue (:meth:`set_paused`) are never taken. The claimed item gets ``worker_id``,
        ``attempts + 1`` and a lease ending ``lease_seconds`` from now (database clock). ``worker_id=None`` is an
        anonymous claim (tools, tests): it cannot be renewed, so it is reclaimed once ``lease_seconds`` pass.

        Which item: the first in queue order (priority, then ``item_id``), except that within one priority an
        item whose ``model_key`` is in ``prefer_models`` (the models the worker holds) goes before one whose
        model it would have to load, unless that earlier item has waited ``affinity_max_wait_s`` seconds or
        more since it was enqueued (``created_at``): waited-out items go first, oldest first, so affinity never
        starves an item for longer than that. Empty ``prefer_models`` is plain queue order. As SQL::

            ORDER BY priority DESC,
                     (created_at <= now - affinity_max_wait_s) DESC,                  -- waited out: first,
                     (created_at > now - affinity_max_wait_s
                      AND model_key = ANY(prefer_models)) DESC,                       -- then held models
                     item_id                                                          -- (both: only with
                                                                                      --  prefer_models)
        """
        ...

    async def renew_leases(
        self, worker_id: str, item_ids: Sequence[int], lease_seconds: float, *,
        attempts: Mapping[int, int] | None = None,
    ) -> list[int]:
        """Extend the leases of the given items that ``worker_id`` still holds (``in_progress`` under it) to
        ``lease_seconds`` from now; return the ids it no longer holds (reclaimed, claimed by another worker,
        canceled, finished or deleted), in ascending order. ``lease_seconds=0`` gives the leases up at once (a
        worker stopping): :meth:`reclaim_expired` then returns the items to the queue without waiting.

        ``attempts`` (item id -> the ``attempts`` its claim returned) fences the claim itself: an item claimed again
        since (its ``attempts`` moved on, even by a worker of the same name) is no longer held. An id missing from
        ``attempts`` is checked by worker only.
        """
        ...

    async def lost_leases(
        self, worker_id: str, item_ids: Sequence[int], *, attempts: Mapping[int, int] | None = None
    ) -> list[int]:
        """The ids among ``item_ids`` that ``worker_id`` no longer holds (not ``in_progress`` under it, or, with
        ``attempts``, claimed again since: see :meth:`renew_leases`), in ascending order. Read-only and cheap (a
        worker calls it about twice a second while it runs items, to see a cancel made by another node within a
        second); it does not extend anything."""
        ...

    async def reclaim_expired(self, max_attempts: int, message: str) -> list[QueueItemSummary]:
        """Take back every ``in_progress`` item whose lease has expired: one with fewer than ``max_attempts``
        attempts goes back to ``pending`` (keeping its priority, ``item_id``, ``worker_id`` of the last holder,
        ``attempts`` and stored results, so a retry resumes from them); one with ``max_attempts`` or more is
        failed with ``error_type="LeaseExpiredError"`` and ``message``. Returns the items changed, in id order
        (their ``status`` says which). Safe to call from every node at once: each item is taken back once."""
        ...

    async def set_paused(self, queue_id: str, paused: bool) -> None:
        """Pause (no item of the queue is claimed; running items finish) or resume a queue. Stored, so it holds
        for every node and across restarts. Queues are resumed unless paused."""
        ...

    async def paused_queues(self) -> set[str]:
        """The ids of the queues paused now."""
        ...

    async def append_progress(
        self,
        item_id: int,
        results: Sequence[SessionNodeResult],
        errors: Sequence[SessionNodeError] = (),
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        """Add node results and errors of a running item, in one transaction; nothing stored is ever rewritten.

        With ``worker_id``, only while that worker holds the item (``in_progress`` under it, or ``canceled`` while
        it held it, so what a canceled run did stays readable), and with ``attempt`` (the ``attempts`` its claim
        returned) only while that claim does: a worker whose lease expired and whose item was claimed again (by
        any worker, one of the same name too) is fenced off. Otherwise :class:`LeaseLostError` and nothing is
        stored.

        ``results`` come in ``seq`` order and continue where the stored ones end, so what is stored is always
        a prefix of the run (a transaction lands whole or not at all). A result whose ``seq``, or whose node
        instance (``source_node_id`` and ``path``), is already stored for the item is skipped, not stored
        twice: appending the same rows again (a retried write, a retry of the item) changes nothing. Unknown
        id (the queue was cleared): :class:`QueueItemNotFoundError`.
        """
        ...

    async def list_results(
        self,
        item_id: int,
        *,
        source_node_id: str | None = None,
        after_seq: int | None = None,
        limit: int,
    ) -> list[SessionNodeResult]:
        """Up to ``limit`` stored results of an item (an unknown item has none).

        All of them in ``seq`` (execution) order, those after ``after_seq``; or, with ``source_node_id``,
        that node's instances in iteration order (``path``), those after the row whose ``seq`` is
        ``after_seq``. Keyset paging: a page costs the same however deep into the results it is.
        """
        ...

    async def list_errors(self, item_id: int) -> list[SessionNodeError]:
        """Every stored node error of an item (usually none or one)."""
        ...

    async def result_counts(self, item_id: int) -> dict[str, int]:
        """How many results each source node of the item has stored (nodes without any are left out)."""
        ...

    async def finish(
        self,
        item_id: int,
        status: Literal["completed", "failed", "canceled"],
        *,
        error: QueueItemError | None = None,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> QueueItemSummary:
        """Move an item to a final status (with the error, if given) and return it, without its session.

        An item already final is left as it is and returned unchanged: a run that completes an
        item canceled meanwhile sees ``status == "canceled"``. With ``worker_id`` (a worker finishing its run)
        the item changes only while that worker holds it (``in_progress`` under it, and with ``attempt`` under that
        claim, as in :meth:`append_progress`); otherwise it is returned unchanged too (``pending`` again, or another
        worker's). Without it (a cancel) any pending or running item
        is finished. Unknown id: :class:`QueueItemNotFoundError`.
        """
        ...

    async def get(self, item_id: int) -> QueueItem | None:
        """One item with its session as enqueued, or None."""
        ...

    async def get_summary(self, item_id: int) -> QueueItemSummary | None:
        """One item without its session (nothing large is read), or None."""
        ...

    async def current(self, queue_id: str) -> QueueItemSummary | None:
        """The queue's ``in_progress`` item (the earliest started, if several workers run), or None."""
        ...

    async def list_items(
        self,
        queue_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        offset: int | None = None,
        status: QueueItemStatus | None = None,
    ) -> QueueItemPage:
        """A page of items in execution order; ``cursor`` (from a previous page) or ``offset``."""
        ...

    async def counts(self, queue_id: str) -> QueueCounts:
        """How many items of the queue are in each status."""
        ...

    async def batch_status(self, queue_id: str, batch_id: str) -> BatchStatus | None:
        """Counts of one batch's items, or None if the queue has no such batch."""
        ...

    async def cancel_batches(self, queue_id: str, batch_ids: Sequence[str]) -> list[int]:
        """Cancel every pending or running item of these batches; return the ids canceled."""
        ...

    async def cancel_pending(self, queue_id: str) -> list[int]:
        """Cancel every pending item of the queue (the running one is left); return the ids canceled."""
        ...

    async def clear(self, queue_id: str) -> int:
        """Delete every item and batch of the queue, with their results; return how many items were deleted.

        The space they took is given back (to the file system, where the database is a file).
        """
        ...

    async def prune(self, queue_id: str) -> int:
        """Delete the queue's completed, failed and canceled items with their results; return how many.

        The space they took is given back (to the file system, where the database is a file).
        """
        ...

    async def fail_interrupted(self, message: str) -> list[QueueItemSummary]:
        """Mark every ``in_progress`` item failed with ``message``; return them.

        Only right where one process is the only worker of the database and nothing else runs items (a
        maintenance tool); the host no longer calls it at start-up: leases expire and :meth:`reclaim_expired`
        takes the items back instead, so a node starting never fails another worker's items.
        """
        ...

    async def retry(self, queue_id: str, retries: Sequence[tuple[int, NewQueueItem]]) -> list[tuple[int, int]]:
        """Enqueue each ``(original item id, new item)`` whose original is a ``failed`` or ``canceled`` item of
        ``queue_id``, in one transaction: a new ``pending`` item in the original's batch with its priority, and
        the new item's session, field values and model key. The original is left exactly as it is. Others are
        skipped. Returns ``(original id, new id)`` pairs in the order given (ids numbered like an enqueue's)."""
        ...


@runtime_checkable
class StorageBackend(Protocol):
    """One database (or equivalent) holding every store."""

    @property
    def session_queue(self) -> SessionQueueStore:
        """The session-queue store."""
        ...

    @property
    def images(self) -> ImageRecordStore:
        """The image-record store (see :mod:`invoke_sdk.images`)."""
        ...

    @property
    def model_records(self) -> ModelRecordStore:
        """The model-record store (see :mod:`invoke_sdk.models.records`)."""
        ...

    # A backend that keeps the workflow library also offers ``workflows``, an
    # :class:`invoke_sdk.workflows.WorkflowStore`; it is not part of this protocol, so backends written before it
    # still are StorageBackends (the host serves no library without it).

    async def start(self) -> None:
        """Open the database and bring its schema up to date; raise :class:`StorageError` with a reason if not."""
        ...

    async def stop(self) -> None:
        """Close the database; pending writes are finished first."""
        ...


@dataclass(frozen=True)
class StorageBackendFactory:
    """A storage backend offered under a name, registered through ``register_storage_backends``."""

    name: str
    """The name the host is configured with (``storage_backend``), e.g. ``sqlite``."""
    create: Callable[[StorageOptions], StorageBackend]
    """Builds an unstarted backend; do no I/O here (the host calls ``start()``)."""
    description: str = ""
