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
"""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Callable
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
from invoke_host.events.bus import EventBus

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


class _ItemMessages:
    """Writes the wire messages of one item's node starts and completions, the item's parts encoded once."""

    def __init__(self, item: QueueItemSummary) -> None:
        # Field order is the typed events' (BaseEvent, QueueEventBase, QueueItemEventBase, InvocationEventBase).
        self.item_part = (
            b',"queue_id":' + to_json(item.queue_id) + b',"item_id":' + to_json(item.item_id)
            + b',"batch_id":' + to_json(item.batch_id) + b',"session_id":' + to_json(item.session_id)
        )
        self.room = f"queue:{item.queue_id}"
        self._source_ids: dict[str, bytes] = {}
        self._types: dict[type[BaseInvocation], bytes] = {}

    def _type_part(self, invocation: BaseInvocation) -> bytes:
        cls = type(invocation)
        part = self._types.get(cls)
        if part is None:
            info = invocation.invocation_info()
            part = self._types[cls] = b',"invocation_type":' + to_json(
                info.type if info is not None else cls.__name__)
        return part

    def node(self, prefix: bytes, timestamp: float, invocation: BaseInvocation, source_node_id: str,
             omit: frozenset[str]) -> bytes:
        """``{"event":...,"data":{`` up to and including the node, without the closing braces."""
        source = self._source_ids.get(source_node_id)
        if source is None:
            source = self._source_ids[source_node_id] = b',"invocation_source_id":' + to_json(source_node_id)
        node_json = invocation.__pydantic_serializer__.to_json(invocation, exclude=omit or None)
        return b"".join((
            prefix, to_json(timestamp), self.item_part, b',"invocation_id":', to_json(invocation.id), source,
            self._type_part(invocation), b',"invocation":', node_json,
        ))


# How long the bus's answer to whether node starts and completions are wanted is kept (wants_node_events).
_RECHECK_S = 0.02
_STARTED_NAME = InvocationStartedEvent.event_name
_COMPLETE_NAME = InvocationCompleteEvent.event_name

_STARTED = b'{"event":"' + InvocationStartedEvent.event_name.encode() + b'","data":{"timestamp":'
_COMPLETE = b'{"event":"' + InvocationCompleteEvent.event_name.encode() + b'","data":{"timestamp":'
_CACHED = {True: b',"cached":true}}', False: b',"cached":false}}'}


class NodeEventPublisher:
    """The ``on_event`` callback of the runner for one queue item."""

    def __init__(self, bus: EventBus, item: QueueItemSummary, state: GraphExecutionState) -> None:
        self.bus = bus
        self.item = item
        self.state = state
        self._messages = _ItemMessages(item)
        self._wanted = False
        self._recheck_at = float("-inf")
        # Inputs fed by edges are earlier nodes' results, already published in their complete events;
        # leaving them out keeps each event's size independent of, say, the collection an iterate walks.
        self._edge_inputs: dict[str, frozenset[str]] = {}
        for edge in state.graph.edges:
            node_id = edge.destination.node_id
            self._edge_inputs[node_id] = self._edge_inputs.get(node_id, frozenset()) | {edge.destination.field}

    def wants_node_events(self) -> bool:
        """Whether a sink would take a node's start or completion now (runner thread, asked before each node).

        The bus's answer is kept for up to ``_RECHECK_S``: asking it twice per node cost 5% of a 10,000-item
        run's lock-holding samples with no client at all. A client that subscribes meanwhile gets the item's node
        events from the next node after that (the bus still decides each event, see :meth:`__call__`).
        """
        now = time.monotonic()
        if now >= self._recheck_at:
            self._recheck_at = now + _RECHECK_S
            self._wanted = self.bus.wants(_STARTED_NAME) or self.bus.wants(_COMPLETE_NAME)
        return self._wanted

    def _invocation(self, event: Any) -> BaseInvocation:
        node: BaseInvocation | None = event.invocation
        # A node whose incoming inputs failed validation was never built: publish it as submitted.
        return node if node is not None else self.state.graph.nodes[event.source_node_id]

    def __call__(self, event: EngineEvent) -> None:
        name = _EVENT_NAMES.get(type(event))
        if name is None:
            return  # session_complete: the item's status change says it
        if not self.bus.wants(name):
            return  # no sink would use it (no subscribed client, a log level that hides it): build nothing
        omit = self._edge_inputs.get(event.source_node_id, frozenset())
        if isinstance(event, NodeStarted | NodeCompleted):
            self._emit_written(name, event, omit)
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

    def _emit_written(self, name: str, event: NodeStarted | NodeCompleted, omit: frozenset[str]) -> None:
        item, invocation, source = self.item, self._invocation(event), event.source_node_id
        timestamp = time.time()
        build: Callable[[], BaseEvent]
        if isinstance(event, NodeCompleted):
            output: BaseInvocationOutput = event.output
            cached = event.cached
            text = b"".join((
                self._messages.node(_COMPLETE, timestamp, invocation, source, omit), b',"result":',
                output.__pydantic_serializer__.to_json(output), _CACHED[cached],
            ))

            def build() -> BaseEvent:
                return InvocationCompleteEvent.build(item, invocation, source, output, omit_inputs=omit,
                                                     cached=cached, timestamp=timestamp)
        else:
            text = self._messages.node(_STARTED, timestamp, invocation, source, omit) + b"}}"

            def build() -> BaseEvent:
                return InvocationStartedEvent.build(item, invocation, source, omit_inputs=omit, timestamp=timestamp)
        encoded = EncodedEvent(name, self._messages.room, text.decode(), build)
        if self.bus.wants_typed(name):
            encoded.typed()  # a sink needs the model: built here, off the loop
        self.bus.emit_encoded(encoded)
