"""Running a session: node code in a worker thread, cancellation, the output cache, events.

``run_graph`` is what the CLI, the pytest plugin and tests call; a queue processor builds a
:class:`GraphExecutionState`, persists ``state.to_dict()`` as it likes, and awaits
:meth:`SessionRunner.run_async` (the whole session runs in one worker thread; events are delivered
on that thread).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.cancellation import InvocationCanceledError
from invoke_sdk.limits import LimitExceededError

from invoke_host.config import HostConfig
from invoke_host.engine.cache import OutputCache
from invoke_host.engine.context import HostInvocationContext, NodeUtil, models_for_run
from invoke_host.engine.errors import NodeErrorRecord, NodeInputError, NodeLimitError
from invoke_host.engine.events import (
    EngineEvent,
    NodeCompleted,
    NodeEventHooks,
    NodeFailed,
    NodeProgress,
    NodeStarted,
    SessionFinished,
    SessionStatus,
)
from invoke_host.engine.images_on_demand import ImagesOnDemand
from invoke_host.engine.node_services import NodeServices
from invoke_host.engine.state import GraphExecutionState
from invoke_host.graph import GraphBase, parse_graph
from invoke_host.limits import Limits
from invoke_host.registry import FrozenRegistry

__all__ = ["EventCallback", "GraphHost", "SessionResult", "SessionRunner", "run_graph", "run_graph_async"]

logger = logging.getLogger("invoke_host.engine")

EventCallback = Callable[[EngineEvent], None]

# Output field values too small to be worth walking: a fixed guess of their stored size is enough.
_SMALL: frozenset[type] = frozenset({bool, float, type(None)})


@dataclass
class SessionResult:
    """How a session ended, with its state (results and errors by prepared and by source node)."""

    state: GraphExecutionState
    status: SessionStatus

    @property
    def outputs(self) -> dict[str, list[BaseInvocationOutput]]:
        """Outputs by source node id, each list in iteration order."""
        return self.state.results_by_source()

    @property
    def errors(self) -> list[NodeErrorRecord]:
        return list(self.state.errors.values())

    def output(self, source_node_id: str) -> BaseInvocationOutput:
        """The one output of a node that ran exactly once."""
        found = self.state.source_results(source_node_id)
        if len(found) != 1:
            raise LookupError(f"node {source_node_id!r} ran {len(found)} times; use .outputs[{source_node_id!r}]")
        return found[0]


class _SavedGraph:
    """The graph as saved images embed it, made on the first call and kept for the rest of the run.

    Node code of one run calls it from the runner's thread only.
    """

    __slots__ = ("_graph", "_saved")

    def __init__(self, graph: GraphBase) -> None:
        self._graph = graph
        self._saved: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        if self._saved is None:
            self._saved = self._graph.to_saved_dict()
        return self._saved


class SessionRunner:
    """Runs sessions of one registry with shared services and output cache, within the host's limits.

    ``limits`` default to those in ``services.config``. Every output is measured against them before it
    becomes a result (a node of any plugin returning a huge list fails with an error naming the setting),
    and the state it runs is given them, so iterate expansion and collect are bounded too.
    """

    def __init__(
        self,
        registry: FrozenRegistry,
        services: NodeServices,
        *,
        cache: OutputCache | None = None,
        on_event: EventCallback | None = None,
        limits: Limits | None = None,
        wants_node_events: Callable[[], bool] | None = None,
        node_hooks: NodeEventHooks | None = None,
    ) -> None:
        self.registry = registry
        self.services = services
        self.cache = cache
        self.on_event = on_event
        self.limits = limits or Limits.from_settings(services.config)
        self.wants_node_events = wants_node_events
        """Asked once before each node (runner thread), when set: whether ``on_event`` wants that node's
        :class:`NodeStarted` and :class:`NodeCompleted` now. With no one to tell (the server with no client), the
        two records are not made; progress, failures and the session's end are always reported."""
        self.node_hooks = node_hooks
        """When set (with ``on_event``), a node's start and completion are told to it directly, with no record made."""

    def _output_class(self, node_type: str) -> type[BaseInvocationOutput]:
        return self.registry.output_of(node_type)

    def _emit(self, event: EngineEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            # A failing listener must not fail the graph it listens to.
            logger.exception("An event listener failed on %s", event.name)

    def run(
        self, state: GraphExecutionState, cancel: threading.Event | None = None, *, workflow: str | None = None
    ) -> SessionStatus:
        """Run nodes until the session is done, fails, or ``cancel`` is set. Blocking: call off the event loop.

        ``workflow`` (JSON text, the item's) is embedded with the graph in every image the session saves.
        """
        cancel = cancel or threading.Event()
        session_id = state.id
        limits = state.limits = self.limits
        # Results already in the state (a restored session) count against max_session_bytes too.
        result_bytes = sum(limits.measure(out, "a restored result") for out in state.results.values())
        current: list[BaseInvocation | None] = [None]

        def progress(message: str, percentage: float | None, image: Any) -> None:
            node = current[0]
            if node is not None:
                self._emit(NodeProgress(session_id, node.id, state.exec_nodes[node.id].source_id,
                                              node.type, message, percentage, image,  # type: ignore[attr-defined]
                                              invocation=node))

        services = self.services
        # The run's own context.models: its downloads stop on this run's cancel and report this node's progress.
        models, end_models = models_for_run(services.models, cancel, progress)
        context = HostInvocationContext(
            images=services.images, tensors=services.tensors, conditioning=services.conditioning,
            models=models, util=NodeUtil(cancel, progress), logger=logger, config=services.config,
        )
        images_for_node = services.images_for_node
        # Saved images carry the graph that made them: dumped on the run's first save, not for every run (a
        # 1,000-node graph's dump cost a tenth of its run through the server; most graphs save no image).
        graph_json = _SavedGraph(state.graph) if images_for_node is not None else None
        status: SessionStatus = "completed"
        emit = self.on_event is not None
        wants_node_events = self.wants_node_events if emit else None
        hooks = self.node_hooks if emit else None
        cache = self.cache
        loggers: dict[str, logging.Logger] = {}
        while True:
            if cancel.is_set():
                status = "canceled"
                break
            try:
                node = state.next()
            except NodeInputError as exc:
                record = NodeErrorRecord(exc.node_id, exc.source_node_id, "NodeInputError", str(exc),
                                         traceback.format_exc(), field=exc.field)
                self._fail(state, record)
                status = "failed"
                break
            except NodeLimitError as exc:
                self._fail(state, self._limit_record(exc))
                status = "failed"
                break
            if node is None:
                break
            node_type: str = node.type  # type: ignore[attr-defined]
            source_id = state.exec_nodes[node.id].source_id
            # Decided once per node, so a listener gets both of its records or neither.
            node_events = emit if wants_node_events is None else wants_node_events()
            if node_events:
                if hooks is None:
                    self._emit(NodeStarted(session_id, node.id, source_id, node_type, invocation=node))
                else:
                    try:
                        hooks.node_started(node, source_id)
                    except Exception:
                        logger.exception("An event listener failed on %s", NodeStarted.name)
            # Only a type that ever had an output kept can hit (OutputCache.may_hold): the rest skip the key.
            key = cache.key(node) if cache is not None and cache.may_hold(node_type) else None
            generation = cache.generation if cache is not None else 0
            output = cache.get(key) if cache is not None and key is not None else None
            cached = output is not None
            ran = 0.0
            if output is None:
                current[0] = node
                if images_for_node is not None:
                    context.images = ImagesOnDemand(images_for_node, session_id, node, source_id, graph_json,
                                                    workflow)
                context.logger = loggers.get(node_type) or loggers.setdefault(
                    node_type, logging.getLogger(f"invoke_host.nodes.{node_type}"))
                try:
                    started = perf_counter()
                    output = node.invoke(context)  # type: ignore[arg-type]
                    ran = perf_counter() - started
                    expected = self._output_class(node_type)
                    if not isinstance(output, expected):
                        raise TypeError(
                            f"node {source_id!r} ({node_type}) returned {_described(output)}, but its invoke() is "
                            f"declared to return {expected.__module__}.{expected.__qualname__} (output type "
                            f"{_output_type(expected)!r}): return an instance of that class, or change the "
                            f"annotation")
                except InvocationCanceledError:
                    # The node stopped because the run was canceled (it saw is_canceled()): not a node error.
                    logger.info("Node %s (%s) stopped: the session was canceled", source_id, node_type)
                    status = "canceled"
                    break
                except Exception as exc:  # noqa: BLE001 - any node failure is recorded on that node
                    if cancel.is_set() or isinstance(exc, InvocationCanceledError):
                        status = "canceled"
                        break
                    record = NodeErrorRecord(node.id, source_id, type(exc).__name__, str(exc),
                                             traceback.format_exc())
                    self._fail(state, record, node)
                    status = "failed"
                    break
                finally:
                    current[0] = None
                if cancel.is_set():
                    # The node saw the cancel and returned early: its output is not a result.
                    status = "canceled"
                    break
            try:
                size = self._measure(output, source_id, node_type, limits.max_session_bytes - result_bytes)
                result_bytes += size
            except LimitExceededError as exc:
                # The output is dropped, neither cached nor stored: the session stays as small as it was.
                self._fail(state, NodeErrorRecord(node.id, source_id, "LimitExceededError", str(exc),
                                                  traceback.format_exc()), node)
                status = "failed"
                break
            if not cached and cache is not None and cache.enabled:
                cache.offer(node, output, seconds=ran, key=key, size_bytes=size, generation=generation)
            refused: NodeLimitError | None = None
            try:
                state.complete(node.id, output)
            except NodeLimitError as exc:
                refused = exc  # the node completed; preparing what follows it would pass a limit
            if node_events:
                if hooks is None:
                    self._emit(NodeCompleted(session_id, node.id, source_id, node_type, output, cached,
                                             invocation=node))
                else:
                    try:
                        hooks.node_completed(node, source_id, output, cached)
                    except Exception:
                        logger.exception("An event listener failed on %s", NodeCompleted.name)
            if refused is not None:
                self._fail(state, self._limit_record(refused))
                status = "failed"
                break
        end_models()
        self._emit(SessionFinished(session_id, status))
        return status

    def _measure(self, output: BaseInvocationOutput, source_id: str, node_type: str, budget: int) -> int:
        """The output's size as stored, each field checked against the limits (see :meth:`Limits.measure`)."""
        total = 0
        limits = self.limits
        max_chars = limits.max_string_length
        for name, value in output.__dict__.items():
            # Most outputs hold a few small numbers and short strings: sized here, without a walk.
            t = type(value)
            if (t is int and value.bit_length() <= 64) or t in _SMALL:
                total += 12
            elif t is str and len(value) <= max_chars:
                total += len(value) + 12
            else:
                total += limits.measure(value, f"output {name!r} of node {source_id!r} ({node_type})", budget - total)
        if total > budget:
            raise LimitExceededError(f"the size of the session's results with node {source_id!r} ({node_type})",
                                     self.limits.max_session_bytes - budget + total, "max_session_bytes",
                                     self.limits.max_session_bytes)
        return total

    @staticmethod
    def _limit_record(exc: NodeLimitError) -> NodeErrorRecord:
        return NodeErrorRecord(exc.node_id, exc.source_node_id, "LimitExceededError", str(exc.original_error),
                               "".join(traceback.format_exception(exc)))

    def _fail(self, state: GraphExecutionState, record: NodeErrorRecord, node: BaseInvocation | None = None) -> None:
        state.set_node_error(record)
        logger.warning("Node %s failed: %s: %s", record.source_node_id, record.error_type, record.message)
        node_type = state.graph.nodes[record.source_node_id].type
        self._emit(NodeFailed(state.id, record.node_id, record.source_node_id, node_type, record.error_type,
                                   record.message, record.traceback, invocation=node))

    async def run_async(
        self, state: GraphExecutionState, cancel: threading.Event | None = None, *, workflow: str | None = None
    ) -> SessionStatus:
        """:meth:`run` in a worker thread, so the event loop stays free while nodes run."""
        return await asyncio.to_thread(self.run, state, cancel, workflow=workflow)


class GraphHost(Protocol):
    """What running a graph needs of a host (an :class:`invoke_host.host.Host` is one): the frozen registry and
    the services its nodes share."""

    @property
    def registry(self) -> FrozenRegistry: ...

    @property
    def node_services(self) -> NodeServices: ...


def _resolve(
    host_or_registry: GraphHost | FrozenRegistry, services: NodeServices | None
) -> tuple[FrozenRegistry, NodeServices]:
    if isinstance(host_or_registry, FrozenRegistry):
        return host_or_registry, services or NodeServices.default(HostConfig())
    return host_or_registry.registry, services or host_or_registry.node_services


def _prepare(
    host_or_registry: GraphHost | FrozenRegistry, graph: GraphBase | dict[str, Any] | str | bytes,
    services: NodeServices | None, cache: OutputCache | None, on_event: EventCallback | None,
    session_id: str | None,
) -> tuple[SessionRunner, GraphExecutionState]:
    registry, services = _resolve(host_or_registry, services)
    runner = SessionRunner(registry, services, cache=cache, on_event=on_event)
    parsed = parse_graph(registry, graph, limits=runner.limits)
    return runner, GraphExecutionState(registry, parsed, id=session_id, limits=runner.limits)


def run_graph(
    host_or_registry: GraphHost | FrozenRegistry,
    graph: GraphBase | dict[str, Any] | str | bytes,
    *,
    on_event: EventCallback | None = None,
    cache: OutputCache | None = None,
    services: NodeServices | None = None,
    cancel: threading.Event | None = None,
    session_id: str | None = None,
) -> SessionResult:
    """Validate and run a graph in this thread; raises ``GraphValidationError`` listing every problem."""
    runner, state = _prepare(host_or_registry, graph, services, cache, on_event, session_id)
    return SessionResult(state, runner.run(state, cancel))


async def run_graph_async(
    host_or_registry: GraphHost | FrozenRegistry,
    graph: GraphBase | dict[str, Any] | str | bytes,
    *,
    on_event: EventCallback | None = None,
    cache: OutputCache | None = None,
    services: NodeServices | None = None,
    cancel: threading.Event | None = None,
    session_id: str | None = None,
) -> SessionResult:
    """:func:`run_graph` with node code in a worker thread."""
    runner, state = _prepare(host_or_registry, graph, services, cache, on_event, session_id)
    return SessionResult(state, await runner.run_async(state, cancel))


def _output_type(cls: type[BaseInvocationOutput]) -> str:
    info = cls.output_info()
    return info.type if info is not None else "undeclared"


def _described(value: object) -> str:
    """What a node returned, for the pack author: the class with its module, and its output type if it has one."""
    if value is None:
        return "None"
    cls = type(value)
    if isinstance(value, BaseInvocationOutput):
        return f"{cls.__module__}.{cls.__qualname__} (output type {_output_type(cls)!r})"
    return f"a {cls.__module__}.{cls.__qualname__}"

