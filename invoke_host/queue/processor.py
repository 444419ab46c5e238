"""The session processor: takes queue items one at a time per worker and runs them with the engine.

A Host service started after the queue service. Each worker loops: wait while paused or idle,
claim the next item atomically, build the execution state from ``item.session`` (a saved state
is restored; a fresh one is built from ``session["graph"]``), run it with :class:`SessionRunner`
in a worker thread, publish node events, save the session as it goes, then complete or fail it.

Saving: the whole state is written after a node completes, but at most once per
``session_save_interval`` seconds (a 10,000-node graph would otherwise spend its time rewriting
an ever larger JSON document), and always at the end. The saved state is for reading; recovery
never re-runs an interrupted item (at-most-once, see docs/queue.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import traceback
from typing import Any

from invoke_sdk.session_queue import QueueItem
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
from invoke_host.queue.node_events import NodeEventPublisher
from invoke_host.queue.service import INTERRUPTED_MESSAGE, QueueService
from invoke_host.queue.session_record import session_json
from invoke_host.registry import FrozenRegistry

__all__ = ["SERVER_STOPPED_ERROR", "SessionProcessor"]

logger = logging.getLogger("invoke_host.queue.processor")

SERVER_STOPPED_ERROR = "ServerStoppedError"

# How long stop() waits for running items to reach a node boundary before leaving them to recovery.
_STOP_GRACE_S = 10.0


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
        if "exec_nodes" in session:
            return GraphExecutionState.from_dict(registry, session)
        if session.get("validated_with") == registry_fingerprint(registry):
            # Validated at enqueue against these very node types: rebuild the nodes, skip the structural checks.
            graph = load_validated_graph(registry, session["graph"])
        else:
            # Stored by a host with other packs or versions (or before items carried a fingerprint): check it all.
            graph = parse_graph(registry, session["graph"])
        return GraphExecutionState(registry, graph, id=item.session_id)

    async def _run_item(self, item: QueueItem) -> None:
        item_id = item.item_id
        started = time.perf_counter()
        logger.info("Running queue item %d (queue %s, batch %s)", item_id, item.queue_id, item.batch_id)
        try:
            state = self._state_for(item)
        except Exception as exc:  # noqa: BLE001 - a session that cannot be built fails its item, not the worker
            await self._finish_failed(item_id, type(exc).__name__, f"the session could not be built: {exc}",
                                      traceback.format_exc(), None)
            return
        loop = asyncio.get_running_loop()
        cancel = _ItemCancel(self.queue, item_id, self._halt)
        publish = NodeEventPublisher(self.events, item, state)
        last_save = [time.monotonic()]
        saving: list[concurrent.futures.Future[None]] = []

        def on_saved(future: concurrent.futures.Future[None]) -> None:
            exc = None if future.cancelled() else future.exception()
            if isinstance(exc, QueueItemNotFoundError):
                cancel.set()  # the queue was cleared under it: nothing left to run for
            elif exc is not None:
                logger.error("Saving the session of queue item %d failed; it runs on", item_id, exc_info=exc)

        def on_event(event: EngineEvent) -> None:
            # On the worker thread: publish, then maybe save (the state is only read on this thread).
            # The save is handed to the loop and never waited for: nodes run on while the loop is busy
            # (delivering events, say); while one save is still on its way the next is skipped.
            if publish is not None:
                publish(event)
            if isinstance(event, NodeCompleted) and time.monotonic() - last_save[0] >= self.save_interval:
                if saving and not saving[0].done():
                    return
                text = session_json(state, item.batch_id)
                future = asyncio.run_coroutine_threadsafe(self.queue.save_session(item_id, text), loop)
                future.add_done_callback(on_saved)
                saving[:] = [future]
                last_save[0] = time.monotonic()

        runner = SessionRunner(self.registry, self.node_services, cache=self.cache, on_event=on_event)
        try:
            status = await runner.run_async(state, cancel)
            if saving:
                # A save still on its way must land before the final one, or it would overwrite it.
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(saving[0])
            text = await asyncio.to_thread(session_json, state, item.batch_id)
        except Exception as exc:
            logger.exception("Queue item %d failed outside its nodes", item_id)
            await self._finish_failed(item_id, type(exc).__name__, str(exc), traceback.format_exc(), None)
            return
        elapsed = time.perf_counter() - started
        if status == "completed":
            await self.queue.complete(item_id, text)
            logger.info("Queue item %d completed: %d nodes in %.2f s", item_id, len(state.executed), elapsed)
        elif status == "failed":
            record = next(iter(state.errors.values()))
            await self._finish_failed(item_id, record.error_type, record.message, record.traceback, text)
        elif self.queue.is_canceled(item_id) or not self._halt.is_set():
            await self._finish_canceled(item_id, text)
            logger.info("Queue item %d canceled after %d nodes", item_id, len(state.executed))
        else:
            # The server is stopping: the item is not finished and will not be re-run (at-most-once).
            await self._finish_failed(item_id, SERVER_STOPPED_ERROR, INTERRUPTED_MESSAGE, None, text)

    async def _finish_failed(
        self, item_id: int, error_type: str, message: str, error_traceback: str | None, text: str | None
    ) -> None:
        try:
            await self.queue.fail(item_id, error_type, message, error_traceback, text)
        except Exception:
            logger.exception("Recording the failure of queue item %d failed", item_id)

    async def _finish_canceled(self, item_id: int, text: str) -> None:
        try:
            item: Any = await self.queue.get(item_id)
            if item is None:
                return  # cleared meanwhile
            if item.status == "in_progress":
                # A node raised InvocationCanceledError on its own: record it as a cancel of the item.
                await self.queue.cancel(item_id)
            await self.queue.save_session(item_id, text)
            await self.queue.complete(item_id)  # forgets the running item; a canceled item stays canceled
        except QueueItemNotFoundError:
            return
        except Exception:
            logger.exception("Recording the cancel of queue item %d failed", item_id)
