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

from collections.abc import Callable, Sequence
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


@runtime_checkable
class SessionQueueStore(Protocol):
    """Durable batches and queue items.

    Order: higher ``priority`` first, then enqueue order (``item_id``). Items only move forward
    (pending -> in_progress -> completed/failed/canceled, or pending -> canceled); a terminal
    item never changes status again.
    """

    async def enqueue(self, batch: BatchRecord, items: Sequence[NewQueueItem], *, prepend: bool) -> EnqueueResult:
        """Store the batch and all its items in one transaction, in the given order.

        ``prepend`` gives the items a priority above every pending item of the queue, so they
        run next; otherwise they get priority 0 and run after what is already queued.
        """
        ...

    async def claim_next(self, queue_id: str | None = None) -> QueueItem | None:
        """Atomically take the next pending item (of one queue, or of any) and mark it ``in_progress``.

        Concurrent claimers, in this process or another on the same database, never take the same item.
        """
        ...

    async def append_progress(
        self,
        item_id: int,
        results: Sequence[SessionNodeResult],
        errors: Sequence[SessionNodeError] = (),
    ) -> None:
        """Add node results and errors of a running item, in one transaction; nothing stored is ever rewritten.

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
    ) -> QueueItemSummary:
        """Move an item to a final status (with the error, if given) and return it, without its session.

        An item already final is left as it is and returned unchanged: a run that completes an
        item canceled meanwhile sees ``status == "canceled"``. Unknown id: :class:`QueueItemNotFoundError`.
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
        """Mark every ``in_progress`` item failed with ``message`` (run at start-up); return them."""
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
