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
import concurrent.futures
import logging
import threading
import time
from collections.abc import Sequence

from invoke_sdk.session_queue import SessionNodeError, SessionNodeResult
from invoke_sdk.storage import QueueItemNotFoundError

from invoke_host.engine import GraphExecutionState, InvocationComplete
from invoke_host.queue.service import QueueService
from invoke_host.registry import FrozenRegistry

__all__ = ["ProgressWriter", "restore_progress", "stored_results"]

logger = logging.getLogger("invoke_host.queue.processor")

# Rows read per query when a retried item's stored results are read back.
_READ_PAGE = 10_000


class ProgressWriter:
    """Collects one item's node results on the runner's thread and appends them to the queue in batches.

    :meth:`record` (runner thread) encodes the output and queues the row; at most every ``interval`` seconds,
    and only when the previous batch has landed, the queued rows go to the event loop as one append, which the
    runner never waits for. :meth:`close` (event loop, after the run) appends what is left with the errors.
    A batch that fails is sent again with the next one, so rows are never lost or reordered by an error.
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
    ) -> None:
        self._queue = queue
        self._item_id = item_id
        self._state = state
        self._loop = loop
        self._interval = interval
        self._seq = first_seq
        self._on_gone = on_gone
        self._pending: list[SessionNodeResult] = []
        self._sent: list[SessionNodeResult] = []
        self._in_flight: concurrent.futures.Future[None] | None = None
        self._last = time.monotonic()
        self.gone = False
        """Whether the item was deleted (the queue cleared) while it ran: nothing more is written."""

    @property
    def next_seq(self) -> int:
        return self._seq

    def record(self, event: InvocationComplete) -> None:
        """Queue the result of a node that completed (runner thread); maybe hand a batch to the loop."""
        if self.gone:
            return
        self._pending.append(SessionNodeResult(self._seq, event.node_id, event.source_node_id,
                                               self._state.exec_nodes[event.node_id].path,
                                               event.output.model_dump_json()))
        self._seq += 1
        if time.monotonic() - self._last >= self._interval and self._collect_sent():
            rows = self._sent = self._pending
            self._pending = []
            self._last = time.monotonic()
            self._in_flight = asyncio.run_coroutine_threadsafe(self._append(rows), self._loop)

    def _collect_sent(self) -> bool:
        """Whether no batch is on its way; a batch that failed is put back in front of the queued rows."""
        future = self._in_flight
        if future is None:
            return True
        if not future.done():
            return False
        self._in_flight = None
        if future.cancelled() or future.exception() is not None:
            self._pending = self._sent + self._pending
        self._sent = []
        return True

    async def _append(self, rows: Sequence[SessionNodeResult], errors: Sequence[SessionNodeError] = ()) -> None:
        try:
            await self._queue.append_progress(self._item_id, rows, errors)
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
        future = self._in_flight
        if future is not None:
            await asyncio.gather(asyncio.wrap_future(future), return_exceptions=True)
        self._collect_sent()
        if self.gone or (not self._pending and not errors):
            return
        rows, self._pending = self._pending, []
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
        if row.node_id not in state.exec_nodes or row.node_id in state.executed:
            raise ValueError(f"stored result {row.seq} is for node {row.node_id!r}, which the session has not "
                             "prepared at that point (or already ran)")
        state.complete(row.node_id, adapter.validate_json(row.output_json))
