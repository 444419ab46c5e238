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
import contextlib
import logging
import threading
from collections.abc import Sequence

from invoke_sdk.session_queue import SessionNodeError, SessionNodeResult
from invoke_sdk.storage import LeaseLostError, QueueItemNotFoundError

from invoke_host.engine import GraphExecutionState
from invoke_host.queue.service import QueueService
from invoke_host.registry import FrozenRegistry

__all__ = ["ProgressWriter", "restore_progress", "stored_results"]

logger = logging.getLogger("invoke_host.queue.processor")

# Rows read per query when a retried item's stored results are read back.
_READ_PAGE = 10_000

# How often, at most, a running item's new rows are looked for (session_save_interval may be 0).
_LEAST_INTERVAL_S = 0.01


class ProgressWriter:
    """Stores one item's node results as rows while it runs, read from its state's execution history.

    The runner does nothing per node for it: a node's output is in ``state.results`` and its id at the end of
    ``state.executed_history`` once it completed, which is all a row holds. The writer (event loop) looks every
    ``interval`` seconds (at least every 10 ms) for ids past the last it stored, encodes their rows in a worker
    thread and appends them as one batch, the next only once that landed; a row of a node that completed before a
    long node started is stored while that node runs. :meth:`close` (after the run) appends what is left with the
    errors. A batch that fails is read again from the history with the next one, so rows are never lost or
    reordered; ``seq`` is the node's place in the history (a retried item's history starts with the stored rows
    it replayed, so it continues where they end).

    Reading the state from another thread while the runner extends it is safe under the interpreter lock: the
    history and the results only grow (append, insert of a new key), an id is in the history only after its
    output is in the results, and the writer reads only ids below the history's length it read first.
    Before, each node's completion went through the runner's listener into a queued row (an event record, the
    output's JSON, a lock): 7.5% of a 10,000-item run's lock-holding samples, on the runner's thread.
    """

    def __init__(
        self,
        queue: QueueService,
        item_id: int,
        state: GraphExecutionState,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        *,
        on_gone: threading.Event | None = None,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        self._queue = queue
        self._attempt = attempt
        self._item_id = item_id
        self._state = state
        self._loop = loop
        self._interval = max(interval, _LEAST_INTERVAL_S)
        self._stored = len(state.executed_history)
        """How many of the history's ids have their rows stored (a restored state's replayed ids are)."""
        self._on_gone = on_gone
        self._worker_id = worker_id
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.gone = False
        """Whether the item was deleted (the queue cleared) or this worker lost it (its lease) while it ran:
        nothing more is written."""

    def start(self) -> None:
        """(Event loop) start storing rows as the run makes them."""
        self._task = self._loop.create_task(self._store_while_running(), name=f"queue-item-{self._item_id}-rows")

    async def _store_while_running(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._interval)
            if self._closing.is_set() or self.gone:
                return
            with contextlib.suppress(Exception):  # logged in _append; the rows go again with the next batch
                await self._store_new()

    async def _store_new(self, errors: Sequence[SessionNodeError] = ()) -> None:
        end = len(self._state.executed_history)
        if end == self._stored and not errors:
            return
        try:
            rows = await asyncio.to_thread(self._rows, self._stored, end) if end > self._stored else []
        except Exception:
            logger.exception("Encoding results %d to %d of queue item %d failed", self._stored, end - 1, self._item_id)
            raise
        await self._append(rows, errors)
        self._stored = end

    def _rows(self, start: int, end: int) -> list[SessionNodeResult]:
        """(Worker thread) the rows of the history's ids ``start`` to ``end``."""
        state = self._state
        nodes, results = state.exec_nodes, state.results
        # The named tuple's own __new__ is a Python function (a frame per row); tuple.__new__ makes the same row.
        new_row = tuple.__new__
        rows: list[SessionNodeResult] = []
        append = rows.append
        # A slice of the history is one step under the interpreter lock, whatever the runner appends meanwhile.
        for seq, node_id in enumerate(state.executed_history[start:end], start):
            node = nodes[node_id]
            output = results[node_id]
            # The model's own serializer, as model_dump_json() calls it with its defaults, without that call's
            # Python layer (about half of the encoding of a small output).
            append(new_row(SessionNodeResult, (seq, node_id, node.source_id, node.path,
                                               output.__pydantic_serializer__.to_json(output).decode())))
        return rows

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
        self._closing.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._store_new(errors)


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
