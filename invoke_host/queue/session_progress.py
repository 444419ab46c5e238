"""A running item's progress as rows: node results appended in batches while it runs, and replayed for a retry.

The store keeps one :class:`~invoke_sdk.session_queue.SessionNodeResult` per node that ran, in execution order
(``seq``), and one :class:`~invoke_sdk.session_queue.SessionNodeError` per node error; nothing about the engine's
own bookkeeping (prepared nodes, the ready heap, ...) is stored, because it follows from the results:

- the engine prepares nodes deterministically from the graph and the outputs it is given, in the order it is
  given them, so feeding the stored outputs back through ``GraphExecutionState.complete`` in ``seq`` order
  rebuilds the very same state, prepared node ids included (:func:`restore_progress`);
- rows are appended in ``seq`` order, one batch per transaction, the next batch only after the previous one
  landed, so what is stored is always a prefix of the run: never a later node without the earlier ones;
- a result already stored for ``(item_id, node_id)`` is skipped by the store, so appending rows again (a write
  retried after an error, a zombie worker's late write) never stores an output twice.

What a retry does with that (issue #12): it claims the item, replays the stored rows, and runs what is left,
continuing ``seq`` where the rows end. A node that ran but whose row had not landed runs again; its side
effects (an image saved, say) must therefore be keyed by ``(session id, prepared node id)`` to be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

from invoke_sdk.session_queue import SessionNodeError, SessionNodeResult
from invoke_sdk.storage import LeaseLostError, QueueItemNotFoundError

from invoke_host.engine import GraphExecutionState, NodeCompleted
from invoke_host.queue.service import QueueService
from invoke_host.registry import FrozenRegistry

__all__ = ["ProgressWriter", "restore_progress", "stored_results"]

logger = logging.getLogger("invoke_host.queue.processor")

# Rows read per query when a retried item's stored results are read back.
_READ_PAGE = 10_000


class ProgressWriter:
    """Collects one item's node results on the runner's thread and appends them to the queue in batches.

    :meth:`record` (runner thread) encodes the output and queues the row; the event loop appends what is
    queued as one batch at most every ``interval`` seconds, the next batch only once the previous one landed,
    and the runner never waits for it. A row queued before a long node starts is stored while that node runs
    (the loop's timer sends it), not after. :meth:`close` (event loop, after the run) appends what is left with
    the errors. A batch that fails is sent again with the next one, so rows are never lost or reordered.
    """

    def __init__(
        self,
        queue: QueueService,
        item_id: int,
        state: GraphExecutionState,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        *,
        first_seq: int = 0,
        on_gone: threading.Event | None = None,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        self._queue = queue
        self._attempt = attempt
        self._item_id = item_id
        self._state = state
        self._loop = loop
        self._interval = interval
        self._seq = first_seq
        self._on_gone = on_gone
        self._worker_id = worker_id
        self._lock = threading.Lock()
        self._pending: list[SessionNodeResult] = []
        self._scheduled = False
        """Whether the loop has a send coming (a timer, or a batch on its way): guarded by ``_lock``."""
        self._last = 0.0
        self._sending: asyncio.Task[None] | None = None
        self._closed = False
        self.gone = False
        """Whether the item was deleted (the queue cleared) or this worker lost it (its lease) while it ran:
        nothing more is written."""

    def record(self, event: NodeCompleted) -> None:
        """Queue the result of a node that completed (runner thread); the loop sends it."""
        if self.gone:
            return
        row = SessionNodeResult(self._seq, event.node_id, event.source_node_id,
                                self._state.exec_nodes[event.node_id].path, event.output.model_dump_json())
        self._seq += 1
        with self._lock:
            self._pending.append(row)
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        """(Loop) send the queued rows once ``interval`` has passed since the last send."""
        if self._closed:
            return
        wait = self._last + self._interval - self._loop.time()
        if wait > 0:
            self._loop.call_later(wait, self._send)
        else:
            self._send()

    def _send(self) -> None:
        if self._closed:
            return
        with self._lock:
            rows, self._pending = self._pending, []
        self._last = self._loop.time()
        self._sending = self._loop.create_task(self._append_then_reschedule(rows))

    async def _append_then_reschedule(self, rows: list[SessionNodeResult]) -> None:
        try:
            await self._append(rows)
        except Exception:  # noqa: BLE001 - logged in _append; the rows go again with the next batch
            with self._lock:
                self._pending[:0] = rows
        with self._lock:
            if not self._pending or self._closed:
                self._scheduled = False
                return
        self._schedule()

    async def _append(self, rows: Sequence[SessionNodeResult], errors: Sequence[SessionNodeError] = ()) -> None:
        if self.gone:
            return
        try:
            await self._queue.append_progress(self._item_id, rows, errors, worker_id=self._worker_id,
                                              attempt=self._attempt)
        except LeaseLostError as exc:
            logger.warning("Refused to store %d results of queue item %d: %s", len(rows) + len(errors),
                           self._item_id, exc)
            self.gone = True
            if self._on_gone is not None:
                self._on_gone.set()
        except QueueItemNotFoundError:
            self.gone = True
            if self._on_gone is not None:
                self._on_gone.set()  # the queue was cleared under it: nothing left to run for
        except Exception:
            logger.exception("Storing %d results of queue item %d failed; they are sent again with the next ones",
                             len(rows), self._item_id)
            raise

    async def close(self, errors: Sequence[SessionNodeError] = ()) -> None:
        """Append every row not yet stored, and the errors (event loop, once the runner has stopped)."""
        self._closed = True  # no more timers: this call sends the rest
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        with self._lock:
            rows, self._pending = self._pending, []
        if rows or errors:
            await self._append(rows, errors)


async def stored_results(queue: QueueService, item_id: int) -> list[SessionNodeResult]:
    """Every result stored for the item, in ``seq`` order (none for an item that never ran)."""
    rows: list[SessionNodeResult] = []
    after: int | None = None
    while True:
        page = await queue.list_results(item_id, after_seq=after, limit=_READ_PAGE)
        rows += page
        if len(page) < _READ_PAGE:
            return rows
        after = page[-1].seq


def restore_progress(registry: FrozenRegistry, state: GraphExecutionState, rows: Sequence[SessionNodeResult]) -> None:
    """Feed stored results back into a fresh state, in ``seq`` order: the nodes they prepare are prepared again.

    Raises ``ValueError`` when the rows do not fit the state (a gap in ``seq``, or a node the graph never
    prepares at that point): the item's graph or the engine changed since the rows were written.
    """
    adapter = registry.output_adapter
    assert adapter is not None
    for expected, row in enumerate(rows):
        if row.seq != expected:
            raise ValueError(f"the stored results skip from seq {expected - 1} to {row.seq}")
        node = state.exec_nodes.get(row.node_id)
        if node is None or row.node_id in state.executed or any(p not in state.executed for p, _, _ in node.inputs):
            raise ValueError(f"stored result {row.seq} is for node {row.node_id!r}, which the session could not "
                             "have run at that point (not prepared, its inputs not run yet, or already run)")
        state.complete(row.node_id, adapter.validate_json(row.output_json))
