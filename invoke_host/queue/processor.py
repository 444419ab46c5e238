"""The session processor: takes queue items one at a time per worker and runs them with the engine.

A Host service started after the queue service. Each worker loops: wait while paused or idle,
claim the next item atomically, build the execution state from ``session["graph"]`` (replaying the
results stored for the item, if a run before stored any), run it with :class:`SessionRunner` in a
worker thread, publish node events, store the results as it goes, then complete or fail it.

Storing: each node's result becomes a row, queued on the runner's thread and appended in batches, at
most once per ``session_save_interval`` seconds and always at the end (see ``session_progress.py``);
what is written never grows with what was written before. Recovery never re-runs an interrupted item
(at-most-once, see docs/queue.md); the rows are what a retry would resume from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import traceback
from typing import Any

from invoke_sdk.session_queue import QueueItem, SessionNodeError
from invoke_sdk.storage import QueueItemNotFoundError

from invoke_host.engine import (
    EngineEvent,
    GraphExecutionState,
    NodeCompleted,
    NodeServices,
    OutputCache,
    SessionRunner,
)
from invoke_host.events.bus import EventBus
from invoke_host.graph import load_validated_graph, parse_graph, registry_fingerprint
from invoke_host.limits import Limits
from invoke_host.memory import release_free_memory
from invoke_host.queue.node_events import NodeEventPublisher
from invoke_host.queue.service import INTERRUPTED_MESSAGE, QueueService
from invoke_host.queue.session_progress import ProgressWriter, restore_progress, stored_results
from invoke_host.registry import FrozenRegistry

__all__ = ["SERVER_STOPPED_ERROR", "SessionProcessor"]

logger = logging.getLogger("invoke_host.queue.processor")

SERVER_STOPPED_ERROR = "ServerStoppedError"

# How long stop() waits for running items to reach a node boundary before leaving them to recovery.
_STOP_GRACE_S = 10.0

# After an item that ran this many nodes, freed memory is handed back to the system (see memory.py).
_TRIM_AFTER_NODES = 10_000


class _ItemCancel(threading.Event):
    """The runner's cancel flag for one item: set by a cancel of the item in the queue, or by a server stop.

    The runner and ``context.util.is_canceled()`` call ``is_set()`` from the worker thread; the
    queue's ``is_canceled`` is a set lookup, so this stays cheap enough to call in a tight loop.
    """

    def __init__(self, queue: QueueService, item_id: int, halt: threading.Event) -> None:
        super().__init__()
        self._queue = queue
        self._item_id = item_id
        self._halt = halt

    def is_set(self) -> bool:
        return super().is_set() or self._halt.is_set() or self._queue.is_canceled(self._item_id)


class SessionProcessor:
    """Runs queue items: ``workers`` at a time (default 1), each item's nodes one after another.

    Items come from ``queue``; their graphs are read with ``registry``; node events go to ``events``; nodes get
    ``node_services`` in their context.
    """

    def __init__(
        self,
        registry: FrozenRegistry,
        queue: QueueService,
        events: EventBus,
        node_services: NodeServices,
        *,
        workers: int = 1,
        save_interval: float = 0.5,
        cache: OutputCache | None = None,
    ) -> None:
        self.registry = registry
        self.queue = queue
        self.events = events
        self.node_services = node_services
        self.limits = Limits.from_settings(node_services.config)
        """What each item's session is held to: set on its state before stored results are replayed into it."""
        self.workers = workers
        self.save_interval = save_interval
        self.cache = cache if cache is not None else OutputCache()
        self._halt = threading.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._halt.clear()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(n), name=f"queue-worker-{n}") for n in range(self.workers)]
        logger.info("Session processor started with %d worker%s", self.workers, "s" if self.workers != 1 else "")

    async def stop(self) -> None:
        self._stop.set()
        self._halt.set()  # running items stop at their next node boundary (or sooner, if their node checks)
        if self._runs:
            _done, pending = await asyncio.wait(self._runs, timeout=_STOP_GRACE_S)
            if pending:
                logger.warning("%d item(s) did not stop in %.0f s; they will be marked failed on the next start",
                               len(pending), _STOP_GRACE_S)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []

    # -- the worker loop -------------------------------------------------------------------------

    async def _idle(self) -> None:
        """Sleep until there may be work (an enqueue, a resume) or the processor stops."""
        waiter = asyncio.ensure_future(self.queue.wait_for_work(5.0))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()

    async def _worker(self, number: int) -> None:
        while not self._stop.is_set():
            if self.queue.paused:
                await self._idle()
                continue
            try:
                item = await self.queue.claim_next()
            except Exception:
                logger.exception("Claiming the next queue item failed; retrying in a moment")
                await self._idle()
                continue
            if item is None:
                await self._idle()
                continue
            # Its own task, so stopping the worker never abandons an item half-way through its bookkeeping.
            run = asyncio.get_running_loop().create_task(self._run_item(item), name=f"queue-item-{item.item_id}")
            self._runs.add(run)
            run.add_done_callback(self._runs.discard)
            await asyncio.shield(run)

    # -- one item --------------------------------------------------------------------------------

    def _state_for(self, item: QueueItem) -> GraphExecutionState:
        session = item.session
        registry = self.registry
        if session.get("validated_with") == registry_fingerprint(registry):
            # Validated at enqueue against these very node types: rebuild the nodes, skip the structural checks.
            graph = load_validated_graph(registry, session["graph"])
        else:
            # Stored by a host with other packs or versions (or before items carried a fingerprint): check it all.
            graph = parse_graph(registry, session["graph"])
        return GraphExecutionState(registry, graph, id=item.session_id)

    async def _run_item(self, item: QueueItem) -> None:
        nodes = await self._run_session(item)
        if nodes >= _TRIM_AFTER_NODES:
            # The session's state is gone by now; give the pages it held back to the system (see memory.py).
            await asyncio.to_thread(release_free_memory)

    async def _run_session(self, item: QueueItem) -> int:
        """Run the item to its end and record how it ended; return how many nodes ran."""
        item_id = item.item_id
        started = time.perf_counter()
        logger.info("Running queue item %d (queue %s, batch %s)", item_id, item.queue_id, item.batch_id)
        try:
            state = self._state_for(item)
            state.limits = self.limits
            # A retried item continues from the results stored by the run before (none for a first run).
            stored = await stored_results(self.queue, item_id)
            if stored:
                await asyncio.to_thread(restore_progress, self.registry, state, stored)
                logger.info("Queue item %d resumes after %d stored results", item_id, len(stored))
        except Exception as exc:  # noqa: BLE001 - a session that cannot be built fails its item, not the worker
            await self._finish_failed(item_id, type(exc).__name__, f"the session could not be built: {exc}",
                                      traceback.format_exc())
            return 0
        loop = asyncio.get_running_loop()
        cancel = _ItemCancel(self.queue, item_id, self._halt)
        publish = NodeEventPublisher(self.events, item, state)
        writer = ProgressWriter(self.queue, item_id, state, loop, self.save_interval, first_seq=len(stored),
                                on_gone=cancel)
        del stored

        def on_event(event: EngineEvent) -> None:
            # On the worker thread: publish, and queue the result for the store (the writer never waits).
            if publish is not None:
                publish(event)
            if isinstance(event, NodeCompleted):
                writer.record(event)

        runner = SessionRunner(self.registry, self.node_services, cache=self.cache, on_event=on_event,
                               limits=self.limits)
        try:
            status = await runner.run_async(state, cancel)
        except Exception as exc:
            logger.exception("Queue item %d failed outside its nodes", item_id)
            with contextlib.suppress(Exception):
                await writer.close()  # what it did run stays readable
            await self._finish_failed(item_id, type(exc).__name__, str(exc), traceback.format_exc())
            return len(state.executed)
        try:
            await writer.close([SessionNodeError(r.node_id, r.source_node_id, r.error_type, r.message, r.traceback,
                                                 r.field) for r in state.errors.values()])
        except Exception as exc:
            logger.exception("Storing the last results of queue item %d failed", item_id)
            await self._finish_failed(item_id, type(exc).__name__, f"its results could not be stored: {exc}",
                                      traceback.format_exc())
            return len(state.executed)
        elapsed = time.perf_counter() - started
        ran = len(state.executed)
        if status == "completed":
            await self.queue.complete(item_id)
            logger.info("Queue item %d completed: %d nodes in %.2f s", item_id, ran, elapsed)
        elif status == "failed":
            record = next(iter(state.errors.values()))
            await self._finish_failed(item_id, record.error_type, record.message, record.traceback)
        elif self.queue.is_canceled(item_id) or not self._halt.is_set():
            await self._finish_canceled(item_id)
            logger.info("Queue item %d canceled after %d nodes", item_id, ran)
        else:
            # The server is stopping: the item is not finished and will not be re-run (at-most-once).
            await self._finish_failed(item_id, SERVER_STOPPED_ERROR, INTERRUPTED_MESSAGE, None)
        return ran

    async def _finish_failed(self, item_id: int, error_type: str, message: str, error_traceback: str | None) -> None:
        try:
            await self.queue.fail(item_id, error_type, message, error_traceback)
        except Exception:
            logger.exception("Recording the failure of queue item %d failed", item_id)

    async def _finish_canceled(self, item_id: int) -> None:
        try:
            item: Any = await self.queue.get(item_id)
            if item is None:
                return  # cleared meanwhile
            if item.status == "in_progress":
                # A node raised InvocationCanceledError on its own: record it as a cancel of the item.
                await self.queue.cancel(item_id)
            await self.queue.complete(item_id)  # forgets the running item; a canceled item stays canceled
        except QueueItemNotFoundError:
            return
        except Exception:
            logger.exception("Recording the cancel of queue item %d failed", item_id)
