"""The session-queue service: what the API and the processor call. It owns the events of the queue.

Every status change this node makes goes through here, so every change emits its event exactly once; the store
only stores. The processor's side of the contract (each call names the worker, see docs/deploy.md):

- ``await claim_next(worker_id, prefer_models)`` takes the next item atomically (or None), marking it
  ``in_progress`` under a lease of ``lease_seconds``; paused queues are skipped by the store;
- ``await append_progress(item_id, results, errors, worker_id=...)`` stores node results and errors as it goes
  (rows appended, never rewritten: see :class:`invoke_sdk.storage.SessionQueueStore`), refused once the lease
  is lost;
- ``await renew_leases(...)`` / ``await lost_leases(...)`` keep the leases and see cancels made by other nodes;
- ``is_canceled(item_id)`` (cheap, any thread) says whether a cancel arrived through this node, and
  ``watch_cancel(item_id, flag)`` has such a cancel set the processor's own flag for the item;
- ``await complete(...)`` / ``await fail(...)`` finish it (a canceled item stays canceled; a lost one is left);
- ``await wait_for_work()`` sleeps until there may be work.

Recovery: at start and every few seconds after, this node (whatever its shape) reclaims items whose lease
expired (their worker died): back to pending, or failed after ``max_attempts`` claims. It never fails an item
because it was running when this node started: that item may belong to a live worker elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence

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
from invoke_host.queue.batch import Batch, batch_size, prepare_batch
from invoke_host.queue.held_graphs import HeldGraphs, HeldSession
from invoke_host.queue.retry import RetryItemsResult, retry_items
from invoke_host.registry import FrozenRegistry

__all__ = ["LEASE_EXPIRED_MESSAGE", "QueueService"]

logger = logging.getLogger("invoke_host.queue")

LEASE_EXPIRED_MESSAGE = (
    "the worker running this item stopped renewing its lease (it died, was stopped, or lost the database) on "
    "every one of its attempts (INVOKE_HOST_MAX_ATTEMPTS={max_attempts}, each lease INVOKE_HOST_LEASE_SECONDS="
    "{lease_seconds:g}); it was not retried again: enqueue it again to retry, or raise INVOKE_HOST_MAX_ATTEMPTS"
)

# How often a node looks for expired leases, at most (a lease's quarter when that is shorter).
_RECLAIM_INTERVAL_S = 5.0

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
        limits: Limits | None = None, max_results_page_size: int = 1000, lease_seconds: float = 30.0,
        max_attempts: int = 2, affinity_max_wait_s: float = 30.0, max_held_graph_nodes: int = 0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.registry = registry
        self.max_batch_size = max_batch_size
        self.max_results_page_size = max_results_page_size
        """The most node results one page of ``GET .../i/{id}/results`` may ask for (a host setting)."""
        self.limits = limits or Limits.from_settings()
        """What an enqueued batch and its graph are held to (the host's settings; their defaults if not given)."""
        self.lease_seconds = lease_seconds
        """How long a claim lasts unless renewed (INVOKE_HOST_LEASE_SECONDS)."""
        self.max_attempts = max_attempts
        self.affinity_max_wait_s = affinity_max_wait_s
        self.held_graphs = HeldGraphs(max_held_graph_nodes)
        """Graphs validated at enqueue, for a processor of this host to take at claim (0 nodes: none held)."""
        self._running: set[int] = set()
        self._cancel_requested: set[int] = set()
        self._cancel_flags: dict[int, threading.Event] = {}
        """The processor's flag of each running item, set by a cancel through this node (``watch_cancel``)."""
        self._work = asyncio.Event()
        self._reclaimer: asyncio.Task[None] | None = None
        self._enqueuing = 0
        """Enqueues between their start and their end (validating, encoding, storing their batch)."""

    async def start(self) -> None:
        await self.reclaim_expired()
        self._reclaimer = asyncio.get_running_loop().create_task(self._reclaim_forever(), name="queue-reclaim")
        self._work.set()

    async def stop(self) -> None:
        if self._reclaimer is not None:
            self._reclaimer.cancel()
            with contextlib.suppress(BaseException):
                await self._reclaimer
            self._reclaimer = None
        self._work.set()  # wake a waiting processor so it can notice the shutdown

    # -- leases ----------------------------------------------------------------------------------

    async def reclaim_expired(self) -> list[QueueItemSummary]:
        """Take back the items whose lease expired (their worker died): pending again, or failed after
        ``max_attempts``; emit their status changes and wake the processors. Returns them."""
        message = LEASE_EXPIRED_MESSAGE.format(max_attempts=self.max_attempts, lease_seconds=self.lease_seconds)
        items = await self.store.reclaim_expired(self.max_attempts, message)
        for item in items:
            if item.status == "pending":
                logger.warning("Queue item %d lost its worker %s (lease expired); queued again for attempt %d of %d",
                               item.item_id, item.worker_id, item.attempts + 1, self.max_attempts)
            else:
                logger.warning("Queue item %d lost its worker %s on attempt %d of %d; failed", item.item_id,
                               item.worker_id, item.attempts, self.max_attempts)
            self.bus.emit(QueueItemStatusChangedEvent.build(item))
        if any(item.status == "pending" for item in items):
            self._work.set()
        return items

    async def _reclaim_forever(self) -> None:
        interval = max(0.1, min(_RECLAIM_INTERVAL_S, self.lease_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reclaim_expired()
            except Exception:
                logger.exception("Reclaiming queue items with expired leases failed; trying again in %.1f s",
                                 interval)

    async def renew_leases(
        self, worker_id: str, item_ids: Sequence[int], lease_seconds: float | None = None, *,
        attempts: Mapping[int, int] | None = None,
    ) -> list[int]:
        """Extend this worker's leases on its running items (under the claims ``attempts`` names); return the ids
        it no longer holds."""
        seconds = self.lease_seconds if lease_seconds is None else lease_seconds
        return await self.store.renew_leases(worker_id, item_ids, seconds, attempts=attempts)

    async def lost_leases(
        self, worker_id: str, item_ids: Sequence[int], *, attempts: Mapping[int, int] | None = None
    ) -> list[int]:
        """The ids this worker no longer holds (canceled by another node, reclaimed, claimed again, deleted): a
        cheap read."""
        return await self.store.lost_leases(worker_id, item_ids, attempts=attempts)

    def forget(self, item_id: int) -> None:
        """The processor let go of an item it no longer holds (lost lease, canceled elsewhere)."""
        self._running.discard(item_id)
        self._cancel_requested.discard(item_id)
        self._cancel_flags.pop(item_id, None)

    # -- enqueue ---------------------------------------------------------------------------------

    async def enqueue_batch(self, queue_id: str, batch: Batch, *, prepend: bool = False) -> EnqueueResult:
        """Validate and expand ``batch`` and store all its items in one transaction; raises ``BatchError``."""
        self._enqueuing += 1
        try:
            return await self._enqueue_batch(queue_id, batch, prepend=prepend)
        finally:
            self._enqueuing -= 1

    async def _enqueue_batch(self, queue_id: str, batch: Batch, *, prepend: bool) -> EnqueueResult:
        if _work(batch) > _THREAD_THRESHOLD:
            prepared = await asyncio.to_thread(
                prepare_batch, queue_id, batch, self.registry, self.max_batch_size, self.limits
            )
        else:
            prepared = prepare_batch(queue_id, batch, self.registry, self.max_batch_size, self.limits)
        record = prepared.record
        result = await self.store.enqueue(record, prepared.items, prepend=prepend)
        # Held only once stored: a claim can only follow the commit, and a refused enqueue leaves nothing behind.
        self.held_graphs.hold(prepared.graph, prepared.graph_sessions, prepared.workflow)
        logger.info(
            "Enqueued batch %s on queue %s: %d items%s", record.batch_id, queue_id, result.enqueued,
            " (prepended)" if prepend else "",
        )
        self.bus.emit(BatchEnqueuedEvent.build(result))
        self._work.set()
        return result

    # -- the processor's side -------------------------------------------------------------------

    def work_coming(self) -> bool:
        """Whether an enqueue through this node is under way, or work was signalled that no processor waited for
        yet (event loop). An idle processor then leaves its after-item work (heap_freeze.py, memory.py) for later:
        a collection then walks the objects of the batch being validated, which are about to become an item."""
        return self._enqueuing > 0 or self._work.is_set()

    async def wait_for_work(self, timeout: float | None = None) -> None:
        """Return when an enqueue, a resume or a stop happened since the last call (or after ``timeout``)."""
        try:
            await asyncio.wait_for(self._work.wait(), timeout)
        except TimeoutError:
            return
        self._work.clear()

    async def claim_next(
        self, queue_id: str | None = None, *, worker_id: str | None = None, prefer_models: Sequence[str] = ()
    ) -> QueueItem | None:
        """Atomically take the next pending item of a queue that is not paused and mark it ``in_progress`` under
        ``worker_id``'s lease, preferring items whose main model is in ``prefer_models`` (bounded by
        ``affinity_max_wait_s``); None when nothing is pending."""
        item = await self.store.claim_next(
            queue_id, worker_id=worker_id, lease_seconds=self.lease_seconds, prefer_models=prefer_models,
            affinity_max_wait_s=self.affinity_max_wait_s,
        )
        if item is not None:
            self._running.add(item.item_id)
            self.bus.emit(QueueItemStatusChangedEvent.build(item))
        return item

    async def append_progress(
        self, item_id: int, results: Sequence[SessionNodeResult], errors: Sequence[SessionNodeError] = (),
        *, worker_id: str | None = None, attempt: int | None = None,
    ) -> None:
        """Store node results and errors of a running item (appended; a row already stored is skipped).

        With ``worker_id`` (and ``attempt``, the claim's): ``LeaseLostError`` once that worker (that claim) no
        longer holds the item."""
        await self.store.append_progress(item_id, results, errors, worker_id=worker_id, attempt=attempt)

    def take_validated_graph(self, session_id: str) -> HeldSession | None:
        """The graph this host validated when it enqueued the session (with the session's workflow), if it still
        holds it (taken: once)."""
        return self.held_graphs.take(session_id)

    def watch_cancel(self, item_id: int, flag: threading.Event) -> None:
        """Set ``flag`` when a cancel of the running item arrives through this node (now, if one already did):
        the runner checks a plain event twice a node, not this service (until the item is finished or forgotten).
        Call it on the event loop, as the cancels run there."""
        self._cancel_flags[item_id] = flag
        if item_id in self._cancel_requested:
            flag.set()

    def is_canceled(self, item_id: int) -> bool:
        """Whether a cancel arrived for this running item. Cheap and safe from worker threads."""
        return item_id in self._cancel_requested

    async def complete(
        self, item_id: int, *, worker_id: str | None = None, attempt: int | None = None
    ) -> QueueItemSummary | None:
        """Mark the item completed (unless it was canceled meanwhile, or ``worker_id`` lost it, or its claim of
        ``attempt``); None if it was deleted (queue cleared)."""
        return await self._finish(item_id, "completed", None, worker_id, attempt)

    async def fail(
        self, item_id: int, error_type: str, error_message: str, error_traceback: str | None = None, *,
        worker_id: str | None = None, attempt: int | None = None,
    ) -> QueueItemSummary | None:
        """Mark the item failed with the error (unless ``worker_id`` lost it, or its claim of ``attempt``); None if
        it was deleted."""
        error = QueueItemError(error_type=error_type, error_message=error_message, error_traceback=error_traceback)
        return await self._finish(item_id, "failed", error, worker_id, attempt)

    async def _finish(
        self, item_id: int, status: QueueItemStatus, error: QueueItemError | None, worker_id: str | None,
        attempt: int | None = None,
    ) -> QueueItemSummary | None:
        self._running.discard(item_id)
        self._cancel_requested.discard(item_id)
        self._cancel_flags.pop(item_id, None)
        try:
            item = await self.store.finish(
                item_id, status, error=error, worker_id=worker_id, attempt=attempt  # type: ignore[arg-type]
            )
        except QueueItemNotFoundError:
            return None
        if item.status == status and (attempt is None or item.attempts == attempt):
            self.bus.emit(QueueItemStatusChangedEvent.build(item))
        elif worker_id is not None and item.status != "canceled":
            logger.warning("Refused to record queue item %d as %s for %s (attempt %s): it is %s under %s, attempt "
                           "%d, now (this worker's lease was lost and the item claimed again)", item_id, status,
                           worker_id, attempt, item.status, item.worker_id, item.attempts)
        return item

    async def retry_items_by_id(self, queue_id: str, item_ids: Sequence[int]) -> RetryItemsResult:
        """A new pending item for each failed or canceled item of ``item_ids`` (see ``invoke_host.queue.retry``);
        one status event per new item, and the processors woken."""
        result = await retry_items(self.store, queue_id, item_ids)
        for new_id in result.new_item_ids:
            if (summary := await self.store.get_summary(new_id)) is not None:
                self.bus.emit(QueueItemStatusChangedEvent.build(summary))
        if result.new_item_ids:
            logger.info("Retried %d items of queue %s as %s", len(result.new_item_ids), queue_id, result.new_item_ids)
            self._work.set()
        return result

    # -- pause -----------------------------------------------------------------------------------

    async def pause(self, queue_id: str) -> None:
        """Let no worker, on any node, take a new item of the queue; running ones finish. Stored: it holds
        across restarts until :meth:`resume`."""
        await self.store.set_paused(queue_id, True)
        logger.info("Queue %s paused", queue_id)

    async def resume(self, queue_id: str) -> None:
        """Let workers take items of the queue again."""
        await self.store.set_paused(queue_id, False)
        self._work.set()
        logger.info("Queue %s resumed", queue_id)

    async def is_paused(self, queue_id: str) -> bool:
        """Whether the queue is paused (as stored: for every node)."""
        return queue_id in await self.store.paused_queues()

    @property
    def is_processing(self) -> bool:
        """Whether an item is running in this process now."""
        return bool(self._running)

    # -- cancel, clear, prune --------------------------------------------------------------------

    def _note_canceled(self, item_ids: Sequence[int]) -> list[int]:
        running = [i for i in item_ids if i in self._running]
        self._cancel_requested.update(running)
        for item_id in running:
            flag = self._cancel_flags.get(item_id)
            if flag is not None:
                flag.set()
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
