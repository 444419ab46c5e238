"""Turns the engine's plain node events into the SDK's events of one queue item, and emits them.

Runs on the engine's worker thread, off the event loop; the bus's ``emit`` is thread-safe. An event no sink wants
now (:meth:`EventBus.wants`) is not built at all: with no client subscribed, a graph of thousands of fast nodes
spent a sixth of its time building events for nobody.

A node's start and completion (two events per node, the bulk of any graph's stream) are written straight to their
wire message from parts: the parts that stay the same for the item (queue, item, batch and session ids) are
encoded once, the node and its output by pydantic's own serializers, so the text is byte for byte what
:func:`~invoke_sdk.events.encode_message` makes of the typed event (a test pins that for every node event type).
The typed pydantic event, which cost about four times the encoding (validating the node's and the output's dicts),
is built only when a sink that needs it wants the event (the log at DEBUG, a relay to other nodes): then here,
off the loop. Progress and errors, a few per node at most, are built typed and encoded from the model.

While no sink needs the typed events, the starts and completions go to the bus as runs (:mod:`invoke_host.events.runs`):
each message's bytes are appended to the item's open run, with no object, decode or queue slot of its own, and the
loop makes each run one text for every client (two appends per event here, against an ``EncodedEvent``, a decode and
a queue slot per event before).

A websocket client may ask for the brief form of the starts and completions (:mod:`invoke_sdk.brief_message`): the
publisher writes each form some sink wants (the bus's :meth:`~invoke_host.events.bus.EventBus.wanted_forms`), the
brief one from the same kept parts without serializing the node or its output, into a run of its own.

A client may ask for no node events at all, only per-item counts (``"node_events": "progress"``,
:mod:`invoke_sdk.progress_summary`): while the bus says a sink wants them (:meth:`~invoke_host.events.bus.EventBus.
wants_progress`), each start and completion is counted into the item's open window (:mod:`invoke_host.events.progress`),
which the loop writes as one summary when it takes it.

The inputs left out go to pydantic's serializer as a dict (``{"a": True}``), not a set: it turns a set into its own
filter on every call, which cost 5.5 us per node against 1.7 for the dict (4 us of the 30 a node event cost in all).
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import time
from typing import Any

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.events import (
    BaseEvent,
    EncodedEvent,
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationProgressEvent,
    InvocationStartedEvent,
    ProgressImage,
)
from invoke_sdk.session_queue import QueueItemSummary
from pydantic_core import to_json

from invoke_host.engine import (
    EngineEvent,
    GraphExecutionState,
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    NodeStarted,
)
from invoke_host.events.bus import WANTED_TYPED, EventBus
from invoke_host.events.progress import ProgressWriter
from invoke_host.events.runs import RunWriter

__all__ = ["NodeEventPublisher", "progress_image"]

logger = logging.getLogger("invoke_host.queue")

# The typed event each engine event becomes, by name: what the bus is asked before anything is built.
_EVENT_NAMES: dict[type[EngineEvent], str] = {
    NodeStarted: InvocationStartedEvent.event_name,
    NodeCompleted: InvocationCompleteEvent.event_name,
    NodeProgress: InvocationProgressEvent.event_name,
    NodeFailed: InvocationErrorEvent.event_name,
}


def progress_image(image: Any) -> ProgressImage | None:
    """A preview as the event carries it: a PIL image becomes a JPEG data URL; None or unknown types give None."""
    if image is None or isinstance(image, ProgressImage):
        return image
    if hasattr(image, "save") and hasattr(image, "size"):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=80)
        width, height = image.size
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        return ProgressImage(width=width, height=height, dataURL=f"data:image/jpeg;base64,{encoded}")
    logger.debug("Dropped a progress preview of unknown type %s", type(image).__name__)
    return None


_Source = tuple[type[BaseInvocation], bytes, bytes]
"""What :class:`_ItemMessages` keeps per source node: its class, the full form's part, the brief form's part."""


class _ItemMessages:
    """Writes the wire messages of one item's node starts and completions, the item's parts encoded once.

    One ``bytes.join`` per message: the parts that stay the same for a source node (its id, its type, the key of
    the node) are kept per source node; the timestamp, the node's id, the node and the output are encoded per event.
    """

    def __init__(self, item: QueueItemSummary) -> None:
        # Field order is the typed events' (BaseEvent, QueueEventBase, QueueItemEventBase, InvocationEventBase).
        self.item_part = (
            b',"queue_id":' + to_json(item.queue_id) + b',"item_id":' + to_json(item.item_id)
            + b',"batch_id":' + to_json(item.batch_id) + b',"session_id":' + to_json(item.session_id)
            + b',"invocation_id":'
        )
        # The brief form leaves out the batch and session ids (and the node and its output).
        self.brief_item_part = (
            b',"queue_id":' + to_json(item.queue_id) + b',"item_id":' + to_json(item.item_id) + b',"invocation_id":')
        # A progress summary's: the queue and the item alone.
        self.progress_item_part = b',"queue_id":' + to_json(item.queue_id) + b',"item_id":' + to_json(item.item_id)
        self.room = f"queue:{item.queue_id}"
        self._sources: dict[str, _Source] = {}

    def _source_parts(self, source_node_id: str, invocation: BaseInvocation) -> _Source:
        """``,"invocation_source_id":...,"invocation_type":...,"invocation":`` for a source node, and the same
        without ``,"invocation":`` for the brief form (kept)."""
        cls = type(invocation)
        known = self._sources.get(source_node_id)
        if known is not None and known[0] is cls:
            return known
        info = invocation.invocation_info()
        brief = (b',"invocation_source_id":' + to_json(source_node_id) + b',"invocation_type":'
                 + to_json(info.type if info is not None else cls.__name__))
        known = self._sources[source_node_id] = (cls, brief + b',"invocation":', brief)
        return known

    def progress_part(self, source_node_id: str, invocation: BaseInvocation) -> bytes:
        """``,"invocation_source_id":...,"invocation_type":...`` (kept): what a progress summary names its last
        completion by."""
        return self._source_parts(source_node_id, invocation)[2]

    def _source_part(self, source_node_id: str, invocation: BaseInvocation) -> bytes:
        return self._source_parts(source_node_id, invocation)[1]

    def started_brief(self, timestamp: float, invocation: BaseInvocation, source_node_id: str) -> bytes:
        """The brief ``invocation_started`` message (:mod:`invoke_sdk.brief_message`)."""
        return b"".join((_STARTED, to_json(timestamp), self.brief_item_part, to_json(invocation.id),
                         self._source_parts(source_node_id, invocation)[2], b"}}"))

    def complete_brief(self, timestamp: float, invocation: BaseInvocation, source_node_id: str, cached: bool) -> bytes:
        """The brief ``invocation_complete`` message (:mod:`invoke_sdk.brief_message`)."""
        return b"".join((_COMPLETE, to_json(timestamp), self.brief_item_part, to_json(invocation.id),
                         self._source_parts(source_node_id, invocation)[2],
                         _CACHED_TRUE if cached else _CACHED_FALSE))

    def started(self, timestamp: float, invocation: BaseInvocation, source_node_id: str,
                exclude: dict[str, bool] | None) -> bytes:
        """The whole ``invocation_started`` message."""
        return b"".join((
            _STARTED, to_json(timestamp), self.item_part, to_json(invocation.id),
            self._source_part(source_node_id, invocation),
            invocation.__pydantic_serializer__.to_json(invocation, exclude=exclude), b"}}",
        ))

    def complete(self, timestamp: float, invocation: BaseInvocation, source_node_id: str,
                 exclude: dict[str, bool] | None, output: BaseInvocationOutput, cached: bool) -> bytes:
        """The whole ``invocation_complete`` message."""
        return b"".join((
            _COMPLETE, to_json(timestamp), self.item_part, to_json(invocation.id),
            self._source_part(source_node_id, invocation),
            invocation.__pydantic_serializer__.to_json(invocation, exclude=exclude), b',"result":',
            output.__pydantic_serializer__.to_json(output), _CACHED_TRUE if cached else _CACHED_FALSE,
        ))


_CLASSES: dict[str, type[BaseEvent]] = {
    cls.event_name: cls for cls in (InvocationStartedEvent, InvocationCompleteEvent)}
# How long the bus's answer to whether node starts and completions are wanted is kept (wants_node_events).
_RECHECK_S = 0.02
_STARTED_NAME = InvocationStartedEvent.event_name
_COMPLETE_NAME = InvocationCompleteEvent.event_name
_STARTED = b'{"event":"' + InvocationStartedEvent.event_name.encode() + b'","data":{"timestamp":'
_COMPLETE = b'{"event":"' + InvocationCompleteEvent.event_name.encode() + b'","data":{"timestamp":'
_CACHED_TRUE = b',"cached":true}}'
_CACHED_FALSE = b',"cached":false}}'


class NodeEventPublisher:
    """The ``on_event`` callback of the runner for one queue item."""

    def __init__(self, bus: EventBus, item: QueueItemSummary, state: GraphExecutionState) -> None:
        self.bus = bus
        self.item = item
        self.state = state
        self._messages = _ItemMessages(item)
        self._wanted = bus.wanted
        self._wanted_forms = bus.wanted_forms
        self._emit = bus.emit_encoded
        self._node_events_wanted = False
        self._node_events_typed = False
        self._full_wanted = False
        self._brief_wanted = False
        self._progress_wanted = False
        self._recheck_at = float("-inf")
        self._runs = RunWriter(bus, self._messages.room)
        self._brief_runs = RunWriter(bus, self._messages.room, brief=True)
        self._progress = ProgressWriter(bus, self._messages.room, self._messages.progress_item_part)

    # Both built by the first node event published, not here: with no subscriber (most runs) nothing reads them,
    # and walking a 1,000-node chain's edges on the loop at each claim was 2.7% of its server samples (issue #11).
    @functools.cached_property
    def _edge_inputs(self) -> dict[str, frozenset[str]]:
        """Inputs fed by edges are earlier nodes' results, already published in their complete events; leaving
        them out keeps each event's size independent of, say, the collection an iterate walks."""
        inputs: dict[str, frozenset[str]] = {}
        for edge in self.state.graph.edges:
            node_id = edge.destination.node_id
            inputs[node_id] = inputs.get(node_id, frozenset()) | {edge.destination.field}
        return inputs

    @functools.cached_property
    def _exclude(self) -> dict[str, dict[str, bool]]:
        """The same, as the serializer's exclude filter (see the module's docstring)."""
        return {node_id: dict.fromkeys(sorted(fields), True) for node_id, fields in self._edge_inputs.items()}

    def wants_node_events(self) -> bool:
        """Whether a sink would take a node's start or completion now (runner thread, asked before each node).

        The bus's answer is kept for up to ``_RECHECK_S``: asking it twice per node cost 5% of a 10,000-item
        run's lock-holding samples with no client at all. A client that subscribes meanwhile gets the item's node
        events from the next node after that (the bus still decides each event, see :meth:`__call__`).
        """
        now = time.monotonic()
        if now >= self._recheck_at:
            self._recheck_at = now + _RECHECK_S
            (started, started_brief), (complete, complete_brief) = (
                self._wanted_forms(_STARTED_NAME), self._wanted_forms(_COMPLETE_NAME))
            self._full_wanted = bool(started or complete)
            self._brief_wanted = started_brief or complete_brief
            self._progress_wanted = self.bus.wants_progress(_STARTED_NAME)
            self._node_events_wanted = self._full_wanted or self._brief_wanted or self._progress_wanted
            self._node_events_typed = WANTED_TYPED in (started, complete)
        return self._node_events_wanted

    def _invocation(self, event: Any) -> BaseInvocation:
        node: BaseInvocation | None = event.invocation
        # A node whose incoming inputs failed validation was never built: publish it as submitted.
        return node if node is not None else self.state.graph.nodes[event.source_node_id]

    def __call__(self, event: EngineEvent) -> None:
        name = _EVENT_NAMES.get(type(event))
        if name is None:
            return  # session_complete: the item's status change says it
        if type(event) is NodeStarted or type(event) is NodeCompleted:
            if not self.wants_node_events():
                return  # no sink would use it: build nothing
            if not self._node_events_typed:
                self._add_to_run(event)
                return
        wanted = self._wanted(name)
        if not wanted:
            return  # no sink would use it (no subscribed client, a log level that hides it): build nothing
        omit = self._edge_inputs.get(event.source_node_id, frozenset())
        if isinstance(event, NodeStarted | NodeCompleted):
            self._emit_written(name, event, omit, wanted == WANTED_TYPED)
            return
        typed: BaseEvent
        if isinstance(event, NodeProgress):
            typed = InvocationProgressEvent.build(self.item, self._invocation(event), event.source_node_id,
                                                  event.message, event.percentage, progress_image(event.image),
                                                  omit_inputs=omit)
        else:
            assert isinstance(event, NodeFailed)  # _EVENT_NAMES names exactly these four
            typed = InvocationErrorEvent.build_from_record(
                self.item, self._invocation(event), event.source_node_id, event.error_type, event.error_message,
                event.error_traceback, omit_inputs=omit,
            )
        self.bus.emit_encoded(EncodedEvent.of(typed))

    def node_started(self, invocation: BaseInvocation, source_node_id: str) -> None:
        """The runner's direct call (:class:`~invoke_host.engine.NodeEventHooks`), for a node it asked about."""
        if not self._node_events_typed:
            self._write_started(invocation, source_node_id)
            return
        self(NodeStarted(self.state.id, invocation.id, source_node_id, invocation.type,  # type: ignore[attr-defined]
                         invocation=invocation))

    def node_completed(self, invocation: BaseInvocation, source_node_id: str, output: BaseInvocationOutput,
                       cached: bool) -> None:
        """The runner's direct call (:class:`~invoke_host.engine.NodeEventHooks`), for a node it asked about."""
        if not self._node_events_typed:
            self._write_complete(invocation, source_node_id, output, cached)
            return
        self(NodeCompleted(self.state.id, invocation.id, source_node_id,
                           invocation.type, output, cached, invocation=invocation))  # type: ignore[attr-defined]

    def _add_to_run(self, event: NodeStarted | NodeCompleted) -> None:
        """The message appended to the item's open run (no sink needs the typed event)."""
        source = event.source_node_id
        invocation = event.invocation
        if invocation is None:
            invocation = self.state.graph.nodes[source]  # its inputs failed validation: published as submitted
        if type(event) is NodeCompleted:
            self._write_complete(invocation, source, event.output, event.cached)
        else:
            self._write_started(invocation, source)

    # Each form some sink wants, into its own run; the brief one never serializes the node or its output.
    def _write_started(self, invocation: BaseInvocation, source: str) -> None:
        if self._progress_wanted:
            self._progress.started()
        timestamp = time.time()
        if self._full_wanted:
            self._runs.add(InvocationStartedEvent, self._messages.started(
                timestamp, invocation, source, self._exclude.get(source)))
        if self._brief_wanted:
            self._brief_runs.add(InvocationStartedEvent, self._messages.started_brief(timestamp, invocation, source))

    def _write_complete(self, invocation: BaseInvocation, source: str, output: BaseInvocationOutput,
                        cached: bool) -> None:
        if self._progress_wanted:
            self._progress.completed(self._messages.progress_part(source, invocation), cached)
        timestamp = time.time()
        if self._full_wanted:
            self._runs.add(InvocationCompleteEvent, self._messages.complete(
                timestamp, invocation, source, self._exclude.get(source), output, cached))
        if self._brief_wanted:
            self._brief_runs.add(InvocationCompleteEvent, self._messages.complete_brief(
                timestamp, invocation, source, cached))

    def _emit_written(self, name: str, event: NodeStarted | NodeCompleted, omit: frozenset[str], typed: bool) -> None:
        source = event.source_node_id
        invocation = event.invocation
        if invocation is None:
            invocation = self.state.graph.nodes[source]  # its inputs failed validation: published as submitted
        exclude = self._exclude.get(source)
        if self._progress_wanted:
            if type(event) is NodeCompleted:
                self._progress.completed(self._messages.progress_part(source, invocation), event.cached)
            else:
                self._progress.started()
        timestamp = time.time()
        model: BaseEvent | None = None
        if type(event) is NodeCompleted:
            output: BaseInvocationOutput = event.output
            message = self._messages.complete(timestamp, invocation, source, exclude, output, event.cached).decode()
            if typed:
                model = InvocationCompleteEvent.build(self.item, invocation, source, output, omit_inputs=omit,
                                                      cached=event.cached, timestamp=timestamp)
        else:
            message = self._messages.started(timestamp, invocation, source, exclude).decode()
            if typed:
                model = InvocationStartedEvent.build(self.item, invocation, source, omit_inputs=omit,
                                                     timestamp=timestamp)
        if model is None:
            # No sink needs the model now: the event holds its text alone (one object for the garbage collector to
            # walk, not a closure with its cells); a sink that asks later gets it read back from the text.
            self._emit(EncodedEvent.written(_CLASSES[name], self._messages.room, message))
            return
        built = model  # a sink needs the model (the log at DEBUG, a relay): built here, off the loop
        encoded = EncodedEvent(name, self._messages.room, message, lambda: built)
        encoded.typed()  # kept, so that the loop never builds it
        self._emit(encoded)
