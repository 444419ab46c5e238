"""The session processor: takes queue items one at a time per worker loop and runs them with the engine.

A Host service started after the queue service, one per device (each with its own node services and model
cache). Each loop: wait while idle, claim the next item atomically under this processor's ``worker_id`` (paused
queues are skipped by the store; items whose main model this processor's cache holds are preferred), build the
execution state from ``session["graph"]`` (replaying the results stored for the item, if a run before stored
any: a retry resumes), run it with :class:`SessionRunner` in a worker thread, publish node events, store the
results as it goes, then complete or fail it.

Leases (docs/deploy.md): a heartbeat task renews the leases of the running items every third of
``lease_seconds`` and, about twice a second, reads whether this worker still holds them. An item it no longer
holds (canceled through another node, reclaimed after a lost lease, deleted) is stopped like a cancel and
nothing more is written for it: every write names the worker and the store refuses a worker that lost the
item. A worker that cannot reach the database for most of a lease stops its items itself, since by then
another worker may have them. On stop the leases of unfinished items are given up, so they are retried at once.

Storing: each node's result becomes a row, queued on the runner's thread and appended in batches, at
most once per ``session_save_interval`` seconds and always at the end (see ``session_progress.py``);
what is written never grows with what was written before.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

from invoke_sdk.session_queue import QueueItem, SessionNodeError, SessionNodeResult
from invoke_sdk.storage import QueueItemNotFoundError

from invoke_host.engine import (
    GraphExecutionState,
    NodeServices,
    OutputCache,
    SessionRunner,
)
from invoke_host.events.bus import EventBus
from invoke_host.graph import load_validated_graph, parse_graph, registry_fingerprint
from invoke_host.heap_freeze import freeze_survivors, run_ended, run_started, thaw_due, thaw_run_objects
from invoke_host.limits import Limits
from invoke_host.memory import (
    allocator,
    free_in_steps,
    in_own_arena,
    on_system_allocator,
    release_due,
    release_if_grown,
    start_own_arena,
)
from invoke_host.queue.claims import Claim, RunningClaims
from invoke_host.queue.held_graphs import HeldSession
from invoke_host.queue.node_events import NodeEventPublisher
from invoke_host.queue.service import QueueService
from invoke_host.queue.session_progress import ProgressWriter, restore_progress, stored_results
from invoke_host.registry import FrozenRegistry

__all__ = ["SessionProcessor"]

logger = logging.getLogger("invoke_host.queue.processor")

# How long stop() waits for running items to reach a node boundary before leaving them to recovery.
_STOP_GRACE_S = 10.0

# How often a worker reads whether it still holds its running items: a cancel made through another node (or
# a lost lease) reaches the item within about this long. A read of a few rows by primary key.
_HOLD_CHECK_S = 0.5
# New output cache entries an idle processor moves together (OutputCache.compact) once there are this many: fewer
# pin too few pages to matter (a page or so each).
_COMPACT_AFTER_ENTRIES = 1_000
# How long after an item's end its state is left for the idle heartbeat to free: the client's answers about the
# item (the status poll that sees it end, its GET, its images) come first.
_FREE_AFTER_S = 0.2
# Tracked objects outside the collector's frozen set (heap_freeze.py) an idle processor collects and freezes once
# there are this many after an item: about 1,200 new cache entries' worth; fewer cost later runs' collections little.
_FREEZE_AFTER_OBJECTS = 5_000


def _ran_by_type(state: GraphExecutionState) -> str:
    """``add 100000, iterate 100000, collect 1``: how many nodes of each type ran, the most first."""
    counts: dict[str, int] = {}
    for source_id, prepared in state.source_prepared_mapping.items():
        ran = sum(1 for node_id in prepared if node_id in state.executed)
        if ran:
            node = state.graph.nodes[source_id]
            info = node.invocation_info()
            type_id = info.type if info is not None else type(node).__name__
            counts[type_id] = counts.get(type_id, 0) + ran
    return ", ".join(f"{t} {n}" for t, n in sorted(counts.items(), key=lambda tn: (-tn[1], tn[0]))) or "none"


class _Finished(NamedTuple):
    """An item's state after its run, until :meth:`SessionProcessor._free_finished` frees it."""

    item_id: int
    held: list[GraphExecutionState]
    """The state's only reference, emptied by ``free_in_steps``."""
    left: weakref.ref[GraphExecutionState]
    ended: float
    """``time.monotonic()`` when the run ended."""


class _ItemCancel(threading.Event):
    """The runner's cancel flag for one item: a plain event, set by a cancel of the item through this node (the
    queue service's ``watch_cancel``), by the heartbeat when this worker no longer holds it (``lose``), or by a
    server stop.

    The runner checks ``is_set()`` before and after every node, and ``context.util.is_canceled()`` in a node's own
    loop, from the worker thread: each source sets the event instead of the check asking all three (which took
    three Python calls, 310-480 ns against 31-56 ns, twice a node: 8-20 ms of a 10,000-item run).
    """

    def __init__(self) -> None:
        super().__init__()
        self.lost = False
        """Whether this worker no longer holds the item (canceled elsewhere, reclaimed, deleted)."""

    def lose(self) -> None:
        self.lost = True
        self.set()


class SessionProcessor:
    """Runs queue items: ``workers`` at a time (default 1), each item's nodes one after another.

    Items come from ``queue``, claimed as ``worker_id``; their graphs are read with ``registry``; node events go
    to ``events``; nodes get ``node_services`` in their context. ``held_models`` (any thread) gives the keys of
    the models this processor's cache holds, which its claims prefer. ``claims`` (shared with the node services'
    image saves) learns each running item's claim, so a run that lost its item saves no image.
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
        worker_id: str = "worker",
        device: str | None = None,
        held_models: Callable[[], Collection[str]] | None = None,
        poll_interval: float = 1.0,
        claims: RunningClaims | None = None,
        memory_release_bytes: int = 8 * 1024 * 1024,
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
        self.worker_id = worker_id
        """This processor's name in the queue (``worker_id`` of the items it runs)."""
        self.device = device
        """The device its node services' model cache runs models on (None: the host's ``device`` setting)."""
        self.held_models = held_models
        self.poll_interval = poll_interval
        self._halt = threading.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: set[asyncio.Task[None]] = set()
        self._running: dict[int, _ItemCancel] = {}
        """The items this processor runs now, with their cancel flags (the heartbeat's list)."""
        self._attempts: dict[int, int] = {}
        """The claim of each running item (its ``attempts`` when claimed): every write for it carries it, so a run
        whose lease was lost and whose item was claimed again (here too) writes nothing more."""
        self.claims = claims
        self.memory_release_bytes = memory_release_bytes
        """While no item runs, freed memory goes back to the system once RSS grew this much (memory.py)."""
        # The cache's entries are moved together only where that lets memory go back: glibc's per-thread arenas.
        self._compacts = memory_release_bytes > 0 and self.cache.enabled and on_system_allocator()
        self._ran_since_freeze = False
        """Whether an item ended since the idle processor last looked at what survived (freeze_survivors)."""
        self._finished: list[_Finished] = []
        """States of items that ended and are not freed yet (:meth:`_free_finished`)."""

    async def start(self) -> None:
        if self._compacts:
            await asyncio.to_thread(start_own_arena)  # before any thread ends and leaves its arena to be reused
        self._halt.clear()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(n), name=f"queue-worker-{n}") for n in range(self.workers)]
        self._tasks.append(loop.create_task(self._heartbeat(), name=f"queue-heartbeat-{self.worker_id}"))
        logger.info("Session processor %s started with %d worker%s%s; allocator: %s",
                    self.worker_id, self.workers, "s" if self.workers != 1 else "",
                    f" on {self.device}" if self.device else "", allocator())

    async def stop(self) -> None:
        self._stop.set()
        self._halt.set()  # running items stop at their next node boundary (or sooner, if their node checks)
        for cancel in self._running.values():
            cancel.set()
        if self._runs:
            _done, pending = await asyncio.wait(self._runs, timeout=_STOP_GRACE_S)
            if pending:
                logger.warning("%d item(s) did not stop in %.0f s; their leases are given up, so they are retried",
                               len(pending), _STOP_GRACE_S)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        if self._running:
            await self._give_up(list(self._running))

    async def _give_up(self, item_ids: list[int]) -> None:
        """Give up the leases of unfinished items: the next reclaim (any node) queues them again at once."""
        try:
            await self.queue.renew_leases(self.worker_id, item_ids, 0, attempts=self._claims_of(item_ids))
        except Exception:
            logger.exception("Giving up the leases of queue items %s failed; they are retried once they expire",
                             item_ids)

    # -- leases ----------------------------------------------------------------------------------

    def _claims_of(self, item_ids: list[int]) -> dict[int, int]:
        return {i: self._attempts[i] for i in item_ids if i in self._attempts}

    async def _heartbeat(self) -> None:
        """Renew the running items' leases; stop the items this worker no longer holds."""
        lease = self.queue.lease_seconds
        renew_every = lease / 3
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(_HOLD_CHECK_S)
            ids = list(self._running)
            if not ids:
                last_renewed = time.monotonic()
                try:
                    await self._release_memory()
                except Exception:  # the heartbeat must go on: it renews the leases of the next items
                    logger.exception("Giving freed memory back failed")
                continue
            try:
                # Another worker of this processor may be idle after its item while this one runs a long one.
                await self._free_finished(ended_before=time.monotonic() - _FREE_AFTER_S)
            except Exception:  # the heartbeat must go on
                logger.exception("Freeing the state of a finished queue item failed")
            try:
                if time.monotonic() - last_renewed >= renew_every:
                    lost = await self.queue.renew_leases(self.worker_id, ids, attempts=self._claims_of(ids))
                    last_renewed = time.monotonic()
                else:
                    lost = await self.queue.lost_leases(self.worker_id, ids, attempts=self._claims_of(ids))
            except Exception:
                logger.exception("Renewing the leases of queue items %s failed", ids)
                if time.monotonic() - last_renewed < lease * 0.8:
                    continue
                # Most of the lease has passed without a renewal: another worker may take these items any moment.
                logger.error("Stopping queue items %s: their leases could not be renewed for %.0f s", ids,
                             time.monotonic() - last_renewed)
                lost = ids
            for item_id in lost:
                cancel = self._running.get(item_id)
                if cancel is not None and not cancel.lost:
                    logger.info("Queue item %d is no longer held by %s (canceled elsewhere, or its lease was "
                                "lost); stopping it", item_id, self.worker_id)
                    cancel.lose()

    async def _release_memory(self) -> None:
        """(No item running.) Move the output cache's new entries together, then give what was freed back.

        Not while work is coming (an enqueue under way, an item not claimed yet): between two items of a client that
        enqueues as soon as the last one ended, the heartbeat's collection walked the next batch's graph while it
        was validated (10,000 objects for a chain of 1,000 nodes, about a third of the chains), froze it (it is freed
        with its item, frozen or not) and held the loop meanwhile; the next quiet heartbeat does it instead.
        """
        if self.queue.work_coming():
            return
        await self._free_finished(ended_before=time.monotonic() - _FREE_AFTER_S)
        if self._finished:
            return  # what follows would freeze or copy beside a state about to go: the next heartbeat does it
        if self._compacts and self.cache.unsettled >= _COMPACT_AFTER_ENTRIES:
            # Off the pages of the sessions that made them, so those can go back (OutputCache.compact).
            await asyncio.get_running_loop().run_in_executor(in_own_arena(), self.cache.compact)
        if self._ran_since_freeze:
            # What survived the items (the cache's entries, above all) out of the next runs' full collections; a
            # no-op unless this process froze its start-up objects (serve/worker; heap_freeze.py says why it is safe).
            self._ran_since_freeze = False
            freeze_survivors(_FREEZE_AFTER_OBJECTS)
        if release_due(self.memory_release_bytes):
            # What the last items (and the answers about them) freed goes back now that nothing runs.
            await asyncio.to_thread(release_if_grown, self.memory_release_bytes)

    # -- the worker loop -------------------------------------------------------------------------

    async def _idle(self) -> None:
        """Sleep until there may be work (an enqueue or resume here, or ``poll_interval``: another node's) or the
        processor stops."""
        waiter = asyncio.ensure_future(self.queue.wait_for_work(self.poll_interval))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()

    async def _worker(self, number: int) -> None:
        while not self._stop.is_set():
            try:
                held = sorted(self.held_models()) if self.held_models is not None else []
                item = await self.queue.claim_next(worker_id=self.worker_id, prefer_models=held)
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

    def _state_for(self, item: QueueItem, held: HeldSession | None = None) -> GraphExecutionState:
        registry = self.registry
        if held is not None:
            # Enqueued through this host: the graph it validated then is the one to run, nodes already built.
            return GraphExecutionState(registry, held.graph, id=item.session_id)
        session = item.session
        if session.get("validated_with") == registry_fingerprint(registry):
            # Validated at enqueue against these very node types: rebuild the nodes, skip the structural checks.
            graph = load_validated_graph(registry, session["graph"])
        else:
            # Stored by a host with other packs or versions (or before items carried a fingerprint): check it all.
            graph = parse_graph(registry, session["graph"])
        return GraphExecutionState(registry, graph, id=item.session_id)

    def _restored_state(self, item: QueueItem, stored: list[SessionNodeResult],
                        held: HeldSession | None) -> GraphExecutionState:
        """(Worker thread) the item's state held to this processor's limits, with ``stored`` replayed into it."""
        state = self._state_for(item, held)
        state.limits = self.limits
        if stored:
            restore_progress(self.registry, state, stored)
        return state

    async def _run_item(self, item: QueueItem) -> None:
        cancel = self._running[item.item_id] = _ItemCancel()
        self.queue.watch_cancel(item.item_id, cancel)  # a cancel through this node sets it (now, if one came)
        if self._halt.is_set():
            cancel.set()  # claimed as the processor stops (stop() set the flags of the items running then)
        self._attempts[item.item_id] = item.attempts
        if self.claims is not None:
            self.claims.hold(item.session_id, Claim(item.item_id, self.worker_id, item.attempts))
        try:
            await self._run_session(item, cancel)
        finally:
            del self._running[item.item_id]
            del self._attempts[item.item_id]
            self._ran_since_freeze = True
            if self.claims is not None:
                self.claims.release(item.session_id)
            self.queue.forget(item.item_id)  # however it ended, this process runs it no more

    async def _run_session(self, item: QueueItem, cancel: _ItemCancel) -> int:
        """Run the item to its end and record how it ended; return how many nodes ran."""
        item_id = item.item_id
        started = time.perf_counter()
        logger.info("Running queue item %d (queue %s, batch %s, attempt %d) on %s", item_id, item.queue_id,
                    item.batch_id, item.attempts, self.worker_id)
        await self._free_finished()
        try:
            # A retried item continues from the results stored by the run before (none for a first run).
            stored = await stored_results(self.queue, item_id)
            held_session = self.queue.take_validated_graph(item.session_id)
            # Off the loop: building the state of a 1,000-node graph held the loop for as long as its run took.
            state = await asyncio.to_thread(self._restored_state, item, stored, held_session)
            # The stored session is read only when this host does not hold its graph and workflow (then it was
            # decoded in the thread above): a held graph's item never decodes its 146 kB for a 1,000-node graph.
            workflow = held_session.workflow if held_session is not None else item.session.get("workflow")
            # The state holds the graph now: with this reference gone, it is freed with the state (in steps, in a
            # worker thread) instead of on the loop when this coroutine returns (2-3 ms for 1,000 nodes, py-spy).
            del held_session
            if stored:
                logger.info("Queue item %d resumes after %d stored results", item_id, len(stored))
        except Exception as exc:  # noqa: BLE001 - a session that cannot be built fails its item, not the worker
            await self._finish_failed(item_id, type(exc).__name__, f"the session could not be built: {exc}",
                                      traceback.format_exc())
            return 0
        del stored
        # The state's last reference is this list's, so that it is freed in a worker thread, in steps: freeing a
        # 10,000-item run's objects on the loop kept it from answering for a twentieth of the run (py-spy).
        held = [state]
        left = weakref.ref(state)
        del state
        run_started()
        try:
            return await self._run_state(item, cancel, held, started, workflow)
        finally:
            run_ended()
            # Freed once the client had its answers (_free_finished): not beside the status poll and the GET that
            # follow an item's end, whose CPU it shared (a chain of 1,000 nodes: the GET's 4 ms became 8.6 ms).
            self._finished.append(_Finished(item_id, held, left, time.monotonic()))

    async def _free_finished(self, ended_before: float | None = None) -> None:
        """Free the states of the items that ended (in steps, in a worker thread): before the next item's state is
        built, so that at most one item's state waits per worker, and from the idle heartbeat those that ended
        before ``ended_before`` (``time.monotonic()``)."""
        while self._finished:
            if ended_before is not None and self._finished[0].ended >= ended_before:
                return
            finished = self._finished.pop(0)
            await asyncio.to_thread(free_in_steps, finished.held)
            # What full collections froze during the run goes back to the collector (heap_freeze.py), so that
            # nothing frozen then stays for good; this collection also frees the state if a cycle held it.
            if thaw_due():
                await asyncio.to_thread(thaw_run_objects)
            if finished.left() is not None:
                # Something still refers to the state (a cycle through it): only a collection frees it. Never seen
                # so far; a full collection costs 90 ms in a server holding a large output cache (memory.py).
                logger.debug("Queue item %d: its session's state outlived its run; collecting garbage",
                             finished.item_id)
                await asyncio.to_thread(gc.collect)

    async def _run_state(self, item: QueueItem, cancel: _ItemCancel, held: list[GraphExecutionState],
                         started: float, workflow: str | None) -> int:
        """Run the item's built state (``held[0]``) to its end and record how it ended; return how many nodes ran."""
        item_id = item.item_id
        state = held[0]
        loop = asyncio.get_running_loop()
        publish = NodeEventPublisher(self.events, item, state)
        # The results are stored from the state's history: the runner reports to nobody but the publisher.
        writer = ProgressWriter(self.queue, item_id, state, loop, self.save_interval, on_gone=cancel,
                                worker_id=self.worker_id, attempt=item.attempts)
        runner = SessionRunner(self.registry, self.node_services, cache=self.cache, on_event=publish,
                               limits=self.limits, wants_node_events=publish.wants_node_events, node_hooks=publish)
        writer.start()
        try:
            status = await runner.run_async(state, cancel, workflow=workflow)
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
        if logger.isEnabledFor(logging.DEBUG):
            # The nodes' own events are not logged (invoke_core_events.log_sink): this one line says what ran. Off
            # the loop: it walks every prepared node (200,000 for an iterate over 100,000 items).
            logger.debug("Queue item %d ran, by node type: %s", item_id, await asyncio.to_thread(_ran_by_type, state))
        if cancel.lost or writer.gone:
            # Canceled through another node, reclaimed, or deleted: whoever holds it now records how it ends.
            logger.info("Queue item %d stopped after %d nodes: %s no longer holds it", item_id, ran, self.worker_id)
        elif status == "completed":
            await self.queue.complete(item_id, worker_id=self.worker_id, attempt=item.attempts)
            logger.info("Queue item %d completed: %d nodes in %.2f s", item_id, ran, elapsed)
        elif status == "failed":
            record = next(iter(state.errors.values()))
            await self._finish_failed(item_id, record.error_type, record.message, record.traceback)
        elif self.queue.is_canceled(item_id) or not self._halt.is_set():
            await self._finish_canceled(item_id)
            logger.info("Queue item %d canceled after %d nodes", item_id, ran)
        else:
            # The server is stopping: give the lease up, so the item is retried (resuming from its rows) at once.
            await self._give_up([item_id])
            self.queue.forget(item_id)
            logger.info("Queue item %d stopped after %d nodes: the server is stopping; it will be retried", item_id,
                        ran)
        return ran

    async def _finish_failed(self, item_id: int, error_type: str, message: str, error_traceback: str | None) -> None:
        try:
            await self.queue.fail(item_id, error_type, message, error_traceback, worker_id=self.worker_id,
                                  attempt=self._attempts.get(item_id))
        except Exception:
            logger.exception("Recording the failure of queue item %d failed", item_id)

    async def _finish_canceled(self, item_id: int) -> None:
        try:
            item: Any = await self.queue.get(item_id)
            if item is None:
                return  # cleared meanwhile
            attempt = self._attempts.get(item_id)
            if item.status == "in_progress" and item.worker_id == self.worker_id and item.attempts == attempt:
                # A node raised InvocationCanceledError on its own: record it as a cancel of the item.
                await self.queue.cancel(item_id)
            # Forgets the running item; a canceled item stays canceled.
            await self.queue.complete(item_id, worker_id=self.worker_id, attempt=attempt)
        except QueueItemNotFoundError:
            return
        except Exception:
            logger.exception("Recording the cancel of queue item %d failed", item_id)
