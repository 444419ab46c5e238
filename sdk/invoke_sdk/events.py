"""Typed events: what the host tells clients and sinks while it works.

Each event is a pydantic model with a class-level :attr:`BaseEvent.event_name` and a ``build(...)``
classmethod that takes the few objects it needs and decides the payload; services emit
``SomeEvent.build(...)`` and never assemble dicts. Clients receive ``{"event": name, "data": payload}``.

Plugins add event classes through the ``register_events`` hook and receive every event through an
:class:`EventSink` registered with ``register_event_sinks``. The classes here are always registered.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from invoke_sdk.session_queue import EnqueueResult, QueueItemStatus, QueueItemSummary

if TYPE_CHECKING:
    from invoke_sdk.invocation import BaseInvocation, BaseInvocationOutput

__all__ = [
    "CORE_EVENTS",
    "EVENT_SINKS_STATE_KEY",
    "BaseEvent",
    "BatchEnqueuedEvent",
    "ConfigurableEventSink",
    "EventSink",
    "EventSinkDirectory",
    "InvocationCompleteEvent",
    "InvocationErrorEvent",
    "InvocationEventBase",
    "InvocationProgressEvent",
    "InvocationStartedEvent",
    "ProgressImage",
    "QueueClearedEvent",
    "QueueEventBase",
    "QueueItemEventBase",
    "QueueItemStatusChangedEvent",
    "QueueItemsCanceledEvent",
    "SelectiveEventSink",
]


class BaseEvent(BaseModel):
    """Base of every event. Subclasses set ``event_name`` and write a ``build(...)`` classmethod."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_name: ClassVar[str] = ""
    """The name clients see in ``{"event": name, ...}``; unique across all plugins."""

    timestamp: float = Field(default_factory=time.time, description="When the event happened (Unix seconds)")

    def room(self) -> str | None:
        """Which subscribers get this event: ``queue:<id>`` for a queue's events; None means every client."""
        return None


class QueueEventBase(BaseEvent):
    """An event about one queue; delivered to clients subscribed to that queue."""

    queue_id: str

    def room(self) -> str | None:
        return f"queue:{self.queue_id}"


class QueueItemEventBase(QueueEventBase):
    """An event about one queue item."""

    item_id: int
    batch_id: str
    session_id: str


class InvocationEventBase(QueueItemEventBase):
    """An event about one node of a running queue item."""

    invocation_id: str = Field(description="The node's id in the execution graph (iterations get their own ids)")
    invocation_source_id: str = Field(description="The id of the node in the graph the client sent")
    invocation_type: str
    invocation: dict[str, Any] = Field(
        description="The node with its inputs; inputs that arrived over edges are left out when the emitter says "
        "so (they are earlier nodes' results, already sent in their invocation_complete events)"
    )

    @staticmethod
    def _node_fields(
        queue_item: QueueItemSummary,
        invocation: BaseInvocation,
        source_node_id: str,
        omit_inputs: Collection[str] = (),
    ) -> dict[str, Any]:
        info = invocation.invocation_info()
        return {
            "queue_id": queue_item.queue_id,
            "item_id": queue_item.item_id,
            "batch_id": queue_item.batch_id,
            "session_id": queue_item.session_id,
            "invocation_id": invocation.id,
            "invocation_source_id": source_node_id,
            "invocation_type": info.type if info is not None else type(invocation).__name__,
            # An iterate node's input is its whole collection: sent with every iteration it would make each
            # event grow with the collection, so emitters omit what came over edges.
            "invocation": invocation.model_dump(mode="json", exclude=set(omit_inputs) or None),
        }


class InvocationStartedEvent(InvocationEventBase):
    """A node started running."""

    event_name: ClassVar[str] = "invocation_started"

    @classmethod
    def build(
        cls,
        queue_item: QueueItemSummary,
        invocation: BaseInvocation,
        source_node_id: str,
        *,
        omit_inputs: Collection[str] = (),
    ) -> InvocationStartedEvent:
        """The event for ``invocation`` of ``queue_item`` starting (``omit_inputs``: inputs left out of the payload)."""
        return cls(**cls._node_fields(queue_item, invocation, source_node_id, omit_inputs))


class ProgressImage(BaseModel):
    """A small preview of a node's work in progress."""

    width: int
    height: int
    dataURL: str = Field(description="The preview as a data: URL")  # noqa: N815 - the name clients know


class InvocationProgressEvent(InvocationEventBase):
    """A running node reported progress (``context.util.signal_progress``)."""

    event_name: ClassVar[str] = "invocation_progress"

    message: str
    percentage: float | None = Field(default=None, ge=0, le=1, description="Done so far, 0 to 1, if known")
    image: ProgressImage | None = None

    @classmethod
    def build(
        cls,
        queue_item: QueueItemSummary,
        invocation: BaseInvocation,
        source_node_id: str,
        message: str,
        percentage: float | None = None,
        image: ProgressImage | None = None,
        *,
        omit_inputs: Collection[str] = (),
    ) -> InvocationProgressEvent:
        """The event for a progress report of a running node."""
        return cls(
            **cls._node_fields(queue_item, invocation, source_node_id, omit_inputs),
            message=message,
            percentage=percentage,
            image=image,
        )


class InvocationCompleteEvent(InvocationEventBase):
    """A node finished and produced its output."""

    event_name: ClassVar[str] = "invocation_complete"

    result: dict[str, Any] = Field(description="The node's output")

    @classmethod
    def build(
        cls,
        queue_item: QueueItemSummary,
        invocation: BaseInvocation,
        source_node_id: str,
        output: BaseInvocationOutput,
        *,
        omit_inputs: Collection[str] = (),
    ) -> InvocationCompleteEvent:
        """The event for a node that returned ``output``."""
        return cls(
            **cls._node_fields(queue_item, invocation, source_node_id, omit_inputs),
            result=output.model_dump(mode="json"),
        )


class InvocationErrorEvent(InvocationEventBase):
    """A node raised; the item's session records the error too."""

    event_name: ClassVar[str] = "invocation_error"

    error_type: str
    error_message: str
    error_traceback: str | None = None

    @classmethod
    def build(
        cls,
        queue_item: QueueItemSummary,
        invocation: BaseInvocation,
        source_node_id: str,
        error: BaseException,
        error_traceback: str | None = None,
        *,
        omit_inputs: Collection[str] = (),
    ) -> InvocationErrorEvent:
        """The event for a node that raised ``error``."""
        return cls.build_from_record(
            queue_item, invocation, source_node_id, type(error).__name__, str(error), error_traceback,
            omit_inputs=omit_inputs,
        )

    @classmethod
    def build_from_record(
        cls,
        queue_item: QueueItemSummary,
        invocation: BaseInvocation,
        source_node_id: str,
        error_type: str,
        error_message: str,
        error_traceback: str | None = None,
        *,
        omit_inputs: Collection[str] = (),
    ) -> InvocationErrorEvent:
        """The event for a node error already recorded as type, message and traceback (no exception at hand)."""
        return cls(
            **cls._node_fields(queue_item, invocation, source_node_id, omit_inputs),
            error_type=error_type,
            error_message=error_message,
            error_traceback=error_traceback,
        )


class QueueItemStatusChangedEvent(QueueItemEventBase):
    """A queue item moved to another status."""

    event_name: ClassVar[str] = "queue_item_status_changed"

    status: QueueItemStatus
    error_type: str | None = None
    error_message: str | None = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    completed_at: str | None = None

    @classmethod
    def build(cls, queue_item: QueueItemSummary) -> QueueItemStatusChangedEvent:
        """The event for ``queue_item`` as it is now."""

        def iso(value: Any) -> str | None:
            return value.isoformat() if value is not None else None

        return cls(
            queue_id=queue_item.queue_id,
            item_id=queue_item.item_id,
            batch_id=queue_item.batch_id,
            session_id=queue_item.session_id,
            status=queue_item.status,
            error_type=queue_item.error_type,
            error_message=queue_item.error_message,
            created_at=queue_item.created_at.isoformat(),
            updated_at=queue_item.updated_at.isoformat(),
            started_at=iso(queue_item.started_at),
            completed_at=iso(queue_item.completed_at),
        )


class QueueItemsCanceledEvent(QueueEventBase):
    """Several items were canceled at once (by batch, or all but the current one)."""

    event_name: ClassVar[str] = "queue_items_canceled"

    item_ids: list[int]

    @classmethod
    def build(cls, queue_id: str, item_ids: Sequence[int]) -> QueueItemsCanceledEvent:
        """The event for a bulk cancel of ``item_ids``."""
        return cls(queue_id=queue_id, item_ids=list(item_ids))


class BatchEnqueuedEvent(QueueEventBase):
    """A batch was stored as queue items."""

    event_name: ClassVar[str] = "batch_enqueued"

    batch_id: str
    enqueued: int
    requested: int
    priority: int
    origin: str | None = None
    destination: str | None = None

    @classmethod
    def build(cls, result: EnqueueResult) -> BatchEnqueuedEvent:
        """The event for an enqueue that produced ``result``."""
        return cls(
            queue_id=result.queue_id,
            batch_id=result.batch.batch_id,
            enqueued=result.enqueued,
            requested=result.requested,
            priority=result.priority,
            origin=result.batch.origin,
            destination=result.batch.destination,
        )


class QueueClearedEvent(QueueEventBase):
    """Every item of a queue was deleted."""

    event_name: ClassVar[str] = "queue_cleared"

    @classmethod
    def build(cls, queue_id: str) -> QueueClearedEvent:
        """The event for clearing ``queue_id``."""
        return cls(queue_id=queue_id)


# Imported here, not at the top: model_events subclasses BaseEvent above. The package imports this
# module first (invoke_sdk/__init__.py), so the cycle always resolves in this direction.
from invoke_sdk.model_events import MODEL_INSTALL_EVENTS  # noqa: E402
from invoke_sdk.model_load_events import MODEL_LOAD_EVENTS  # noqa: E402

CORE_EVENTS: tuple[type[BaseEvent], ...] = (
    *MODEL_INSTALL_EVENTS,
    *MODEL_LOAD_EVENTS,
    BatchEnqueuedEvent,
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationProgressEvent,
    InvocationStartedEvent,
    QueueClearedEvent,
    QueueItemStatusChangedEvent,
    QueueItemsCanceledEvent,
)
"""The events the host always knows; a plugin cannot register another class under these names."""


@runtime_checkable
class EventSink(Protocol):
    """Receives every event the host emits (register one with ``register_event_sinks``).

    ``deliver`` is called on the event loop for each event, in order: it must return at once
    (queue the event and do slow work in a task started in ``start``). An exception it raises
    is logged and does not reach the other sinks or the emitter.
    """

    name: str

    async def start(self) -> None:
        """Called when the host starts, before the first event."""
        ...

    async def stop(self) -> None:
        """Called when the host stops."""
        ...

    def deliver(self, event: BaseEvent) -> None:
        """Take one event; never block."""
        ...


@runtime_checkable
class SelectiveEventSink(EventSink, Protocol):
    """A sink that can say which events it would use right now, so that the host builds no event nobody takes.

    Before building an event that costs something to build (the per-node ``invocation_*`` events, thousands
    per graph), the host asks every sink; when none wants it, the event is not built at all. A sink without
    ``wants`` gets every event. An event that is built still goes to every sink, wanted or not.
    """

    def wants(self, event_name: str) -> bool:
        """Whether an event of this name would be used now (a subscribed client, a log level that shows it).

        Called from any thread (node code runs in worker threads), once per event: keep it a cheap read of
        state the sink keeps up to date, and never block. The answer may change at any time; an event
        emitted while it was False is simply not delivered, as if it had happened before the sink listened.
        """
        ...


@runtime_checkable
class ConfigurableEventSink(EventSink, Protocol):
    """A sink that wants the host's settings: ``configure`` is called once, before :meth:`EventSink.start`."""

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take the host's settings (its config as JSON values, without the access token)."""
        ...


EVENT_SINKS_STATE_KEY = "event_sinks"
"""Where the host keeps its :class:`EventSinkDirectory` in the web app's state (``app.state[...]``).

A plugin route that serves a sink (the websocket sink's ``/ws``) finds its sink there.
"""


@runtime_checkable
class EventSinkDirectory(Protocol):
    """The host's started event sinks, by name (``app.state[EVENT_SINKS_STATE_KEY]``)."""

    def sink(self, name: str) -> EventSink | None:
        """The sink registered under ``name``, if any."""
        ...
