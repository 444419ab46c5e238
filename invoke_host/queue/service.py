"""The session-queue service: what the API and the processor call. It owns the events of the queue.

Every status change goes through here, so every change emits its event exactly once; the store
only stores. The processor's side of the contract:

- ``await claim_next()`` takes the next item atomically (or None), marking it ``in_progress``;
- ``await append_progress(item_id, results, errors)`` stores node results and errors as it goes (rows appended,
  never rewritten: see :class:`invoke_sdk.storage.SessionQueueStore`);
- ``is_canceled(item_id)`` (cheap, any thread) says whether a cancel arrived for the running item;
- ``await complete(...)`` / ``await fail(...)`` finish it (a canceled item stays canceled);
- ``paused`` says whether to claim at all, and ``await wait_for_work()`` sleeps until there may be work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from invoke_sdk.events import (
    BatchEnqueuedEvent,
    QueueClearedEvent,
    QueueItemsCanceledEvent,
    QueueItemStatusChangedEvent,
)
from invoke_sdk.session_queue import (
    BatchStatus,
    EnqueueResult,
    QueueCounts,
    QueueItem,
    QueueItemError,
    QueueItemPage,
    QueueItemStatus,
    QueueItemSummary,
    SessionNodeError,
    SessionNodeResult,
)
from invoke_sdk.storage import QueueItemNotFoundError, SessionQueueStore

from invoke_host.events.bus import EventBus
from invoke_host.limits import Limits
from invoke_host.queue.batch import Batch, batch_size, prepare_items
from invoke_host.registry import FrozenRegistry

__all__ = ["INTERRUPTED_MESSAGE", "QueueService"]

logger = logging.getLogger("invoke_host.queue")

INTERRUPTED_MESSAGE = (
    "the server stopped while this item ran; it was not run again (at-most-once), enqueue it again to retry"
)

# Validating, expanding and encoding a batch is CPU work that grows with its graph and its data; above this
# much (nodes + edges + items + data values) it runs in a worker thread, so the loop serves other requests
# meanwhile (a 5,000-node graph took 0.3 s). Below it the thread hop would cost more than the work.
_THREAD_THRESHOLD = 64


def _work(batch: Batch) -> int:
    """A rough measure of what preparing ``batch`` costs, computed without touching its values."""
    graph = batch.graph
    nodes, edges = graph.get("nodes"), graph.get("edges")
    size = (len(nodes) if isinstance(nodes, dict) else 0) + (len(edges) if isinstance(edges, list) else 0)
    data = sum(len(d.items) for group in batch.data or [] for d in group)
    return size + data + batch_size(batch)


class QueueService:
    """Batches in, queue items out, one event per change. A Host service (start/stop)."""

    def __init__(
        self, store: SessionQueueStore, bus: EventBus, registry: FrozenRegistry, *, max_batch_size: int,
        limits: Limits | None = None, max_results_page_size: int = 1000,
    ) -> None:
        self.store = store
        self.bus = bus
        self.registry = registry
        self.max_batch_size = max_batch_size
        self.max_results_page_size = max_results_page_size
        """The most node results one page of ``GET .../i/{id}/results`` may ask for (a host setting)."""
        self.limits = limits or Limits.from_settings()
        """What an enqueued batch and its graph are held to (the host's settings; their defaults if not given)."""
        self.paused = False
        self._running: set[int] = set()
        self._cancel_requested: set[int] = set()
        self._work = asyncio.Event()

    async def start(self) -> None:
        recovered = await self.store.fail_interrupted(INTERRUPTED_MESSAGE)
        for item in recovered:
            logger.warning(
                "Queue item %d (queue %s, batch %s) was running when the server stopped; marked failed",
                item.item_id, item.queue_id, item.batch_id,
            )
            self.bus.emit(QueueItemStatusChangedEvent.build(item))
        self._work.set()

    async def stop(self) -> None:
        self._work.set()  # wake a waiting processor so it can notice the shutdown

    # -- enqueue ---------------------------------------------------------------------------------

    async def enqueue_batch(self, queue_id: str, batch: Batch, *, prepend: bool = False) -> EnqueueResult:
        """Validate and expand ``batch`` and store all its items in one transaction; raises ``BatchError``."""
        if _work(batch) > _THREAD_THRESHOLD:
            record, items = await asyncio.to_thread(
                prepare_items, queue_id, batch, self.registry, self.max_batch_size, self.limits
            )
        else:
            record, items = prepare_items(queue_id, batch, self.registry, self.max_batch_size, self.limits)
        result = await self.store.enqueue(record, items, prepend=prepend)
        logger.info(
            "Enqueued batch %s on queue %s: %d items%s", record.batch_id, queue_id, result.enqueued,
            " (prepended)" if prepend else "",
        )
        self.bus.emit(BatchEnqueuedEvent.build(result))
        self._work.set()
        return result

    # -- the processor's side -------------------------------------------------------------------

    async def wait_for_work(self, timeout: float | None = None) -> None:
        """Return when an enqueue, a resume or a stop happened since the last call (or after ``timeout``)."""
        try:
            await asyncio.wait_for(self._work.wait(), timeout)
        except TimeoutError:
            return
        self._work.clear()

    async def claim_next(self, queue_id: str | None = None) -> QueueItem | None:
        """Atomically take the next pending item and mark it ``in_progress`` (None when nothing is pending)."""
        item = await self.store.claim_next(queue_id)
        if item is not None:
            self._running.add(item.item_id)
            self.bus.emit(QueueItemStatusChangedEvent.build(item))
        return item

    async def append_progress(
        self, item_id: int, results: Sequence[SessionNodeResult], errors: Sequence[SessionNodeError] = ()
    ) -> None:
        """Store node results and errors of a running item (appended; a row already stored is skipped)."""
        await self.store.append_progress(item_id, results, errors)

    def is_canceled(self, item_id: int) -> bool:
        """Whether a cancel arrived for this running item. Cheap and safe from worker threads."""
        return item_id in self._cancel_requested

    async def complete(self, item_id: int) -> QueueItemSummary | None:
        """Mark the item completed (unless it was canceled meanwhile); None if it was deleted (queue cleared)."""
        return await self._finish(item_id, "completed", None)

    async def fail(
        self, item_id: int, error_type: str, error_message: str, error_traceback: str | None = None
    ) -> QueueItemSummary | None:
        """Mark the item failed with the error; None if it was deleted (queue cleared)."""
        error = QueueItemError(error_type=error_type, error_message=error_message, error_traceback=error_traceback)
        return await self._finish(item_id, "failed", error)

    async def _finish(
        self, item_id: int, status: QueueItemStatus, error: QueueItemError | None
    ) -> QueueItemSummary | None:
        self._running.discard(item_id)
        self._cancel_requested.discard(item_id)
        try:
            item = await self.store.finish(item_id, status, error=error)  # type: ignore[arg-type]
        except QueueItemNotFoundError:
            return None
        if item.status == status:
            self.bus.emit(QueueItemStatusChangedEvent.build(item))
        return item

    # -- pause -----------------------------------------------------------------------------------

    def pause(self) -> None:
        """Ask the processor to take no new item; the running one finishes."""
        self.paused = True
        logger.info("Queue processor paused")

    def resume(self) -> None:
        """Let the processor take items again."""
        self.paused = False
        self._work.set()
        logger.info("Queue processor resumed")

    @property
    def is_processing(self) -> bool:
        """Whether an item is running now."""
        return bool(self._running)

    # -- cancel, clear, prune --------------------------------------------------------------------

    def _note_canceled(self, item_ids: Sequence[int]) -> list[int]:
        running = [i for i in item_ids if i in self._running]
        self._cancel_requested.update(running)
        return running

    async def cancel(self, item_id: int) -> QueueItem:
        """Cancel one item; a running one stops at its next node boundary. Raises if unknown."""
        before = await self.store.get(item_id)
        if before is None:
            raise QueueItemNotFoundError(item_id)
        self._note_canceled([item_id])
        item = await self.store.finish(item_id, "canceled")
        if before.status != item.status:
            self.bus.emit(QueueItemStatusChangedEvent.build(item))
        after = await self.store.get(item_id)
        if after is None:
            raise QueueItemNotFoundError(item_id)  # cleared meanwhile
        return after

    async def _emit_bulk_cancel(self, queue_id: str, item_ids: list[int]) -> None:
        if not item_ids:
            return
        for item_id in self._note_canceled(item_ids):
            item = await self.store.get(item_id)
            if item is not None:
                self.bus.emit(QueueItemStatusChangedEvent.build(item))
        self.bus.emit(QueueItemsCanceledEvent.build(queue_id, item_ids))

    async def cancel_by_batch_ids(self, queue_id: str, batch_ids: Sequence[str]) -> list[int]:
        """Cancel the pending and running items of these batches; return their ids."""
        canceled = await self.store.cancel_batches(queue_id, batch_ids)
        await self._emit_bulk_cancel(queue_id, canceled)
        return canceled

    async def cancel_all_except_current(self, queue_id: str) -> list[int]:
        """Cancel every pending item of the queue; the running one goes on."""
        canceled = await self.store.cancel_pending(queue_id)
        await self._emit_bulk_cancel(queue_id, canceled)
        return canceled

    async def clear(self, queue_id: str) -> int:
        """Stop the running item of the queue and delete all its items and batches."""
        current = await self.store.current(queue_id)
        if current is not None:
            await self.cancel(current.item_id)
        deleted = await self.store.clear(queue_id)
        logger.info("Cleared queue %s: %d items deleted", queue_id, deleted)
        self.bus.emit(QueueClearedEvent.build(queue_id))
        return deleted

    async def prune(self, queue_id: str) -> int:
        """Delete the queue's completed, failed and canceled items."""
        return await self.store.prune(queue_id)

    # -- reading ---------------------------------------------------------------------------------

    async def get(self, item_id: int) -> QueueItem | None:
        return await self.store.get(item_id)

    async def get_summary(self, item_id: int) -> QueueItemSummary | None:
        return await self.store.get_summary(item_id)

    async def current(self, queue_id: str) -> QueueItemSummary | None:
        return await self.store.current(queue_id)

    async def list_results(
        self, item_id: int, *, source_node_id: str | None = None, after_seq: int | None = None, limit: int
    ) -> list[SessionNodeResult]:
        return await self.store.list_results(item_id, source_node_id=source_node_id, after_seq=after_seq, limit=limit)

    async def list_errors(self, item_id: int) -> list[SessionNodeError]:
        return await self.store.list_errors(item_id)

    async def result_counts(self, item_id: int) -> dict[str, int]:
        return await self.store.result_counts(item_id)

    async def list_items(
        self,
        queue_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        offset: int | None = None,
        status: QueueItemStatus | None = None,
    ) -> QueueItemPage:
        return await self.store.list_items(queue_id, limit=limit, cursor=cursor, offset=offset, status=status)

    async def counts(self, queue_id: str) -> QueueCounts:
        return await self.store.counts(queue_id)

    async def batch_status(self, queue_id: str, batch_id: str) -> BatchStatus | None:
        return await self.store.batch_status(queue_id, batch_id)
