"""Turns the engine's plain node events into the SDK's typed events of one queue item, and emits them.

Runs on the engine's worker thread: the typed event (and its JSON-ready payload) is built there,
off the event loop, and handed to the bus, whose ``emit`` is thread-safe. An event no sink wants now
(:meth:`EventBus.wants`) is not built at all: with no client subscribed, a graph of thousands of fast nodes
spent a sixth of its time building events for nobody.
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

from invoke_sdk import BaseInvocation
from invoke_sdk.events import (
    BaseEvent,
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationProgressEvent,
    InvocationStartedEvent,
    ProgressImage,
)
from invoke_sdk.session_queue import QueueItemSummary

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


class NodeEventPublisher:
    """The ``on_event`` callback of the runner for one queue item."""

    def __init__(self, bus: EventBus, item: QueueItemSummary, state: GraphExecutionState) -> None:
        self.bus = bus
        self.item = item
        self.state = state
        # Inputs fed by edges are earlier nodes' results, already published in their complete events;
        # leaving them out keeps each event's size independent of, say, the collection an iterate walks.
        self._edge_inputs: dict[str, frozenset[str]] = {}
        for edge in state.graph.edges:
            node_id = edge.destination.node_id
            self._edge_inputs[node_id] = self._edge_inputs.get(node_id, frozenset()) | {edge.destination.field}

    def _invocation(self, event: Any) -> BaseInvocation:
        node: BaseInvocation | None = event.invocation
        # A node whose incoming inputs failed validation was never built: publish it as submitted.
        return node if node is not None else self.state.graph.nodes[event.source_node_id]

    def __call__(self, event: EngineEvent) -> None:
        typed: BaseEvent
        name = _EVENT_NAMES.get(type(event))
        if name is None:
            return  # session_complete: the item's status change says it
        if not self.bus.wants(name):
            return  # no sink would use it (no subscribed client, a log level that hides it): build nothing
        omit = self._edge_inputs.get(event.source_node_id, frozenset())
        if isinstance(event, NodeStarted):
            typed = InvocationStartedEvent.build(self.item, self._invocation(event), event.source_node_id,
                                                 omit_inputs=omit)
        elif isinstance(event, NodeCompleted):
            typed = InvocationCompleteEvent.build(self.item, self._invocation(event), event.source_node_id,
                                                  event.output, omit_inputs=omit, cached=event.cached)
        elif isinstance(event, NodeProgress):
            typed = InvocationProgressEvent.build(self.item, self._invocation(event), event.source_node_id,
                                                  event.message, event.percentage, progress_image(event.image),
                                                  omit_inputs=omit)
        else:
            typed = InvocationErrorEvent.build_from_record(
                self.item, self._invocation(event), event.source_node_id, event.error_type, event.error_message,
                event.error_traceback, omit_inputs=omit,
            )
        self.bus.emit(typed)
