"""Node events: a node of a running queue item started, reported progress, completed or raised.

They go to the clients subscribed to the item's queue. They are among the host's own events
(:data:`invoke_sdk.events.CORE_EVENTS`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from invoke_sdk.queue_events import QueueItemEventBase
from invoke_sdk.session_queue import QueueItemSummary

if TYPE_CHECKING:
    from invoke_sdk.invocation import BaseInvocation, BaseInvocationOutput

__all__ = [
    "InvocationCompleteEvent",
    "InvocationErrorEvent",
    "InvocationEventBase",
    "InvocationProgressEvent",
    "InvocationStartedEvent",
    "ProgressImage",
]


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
        timestamp: float | None = None,
    ) -> dict[str, Any]:
        info = invocation.invocation_info()
        fields: dict[str, Any] = {} if timestamp is None else {"timestamp": timestamp}
        return fields | {
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
        timestamp: float | None = None,
    ) -> InvocationStartedEvent:
        """The event for ``invocation`` of ``queue_item`` starting (``omit_inputs``: inputs left out of the payload;
        ``timestamp``: when it happened, if not now)."""
        return cls(**cls._node_fields(queue_item, invocation, source_node_id, omit_inputs, timestamp))


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
        timestamp: float | None = None,
    ) -> InvocationProgressEvent:
        """The event for a progress report of a running node."""
        return cls(
            **cls._node_fields(queue_item, invocation, source_node_id, omit_inputs, timestamp),
            message=message,
            percentage=percentage,
            image=image,
        )


class InvocationCompleteEvent(InvocationEventBase):
    """A node finished and produced its output."""

    event_name: ClassVar[str] = "invocation_complete"

    result: dict[str, Any] = Field(description="The node's output")
    cached: bool = Field(
        default=False,
        description="True when the node did not run: its output came from the output cache (an earlier run of the "
        "same node type with the same inputs)",
    )

    @classmethod
    def build(
        cls,
        queue_item: QueueItemSummary,
        invocation: BaseInvocation,
        source_node_id: str,
        output: BaseInvocationOutput,
        *,
        omit_inputs: Collection[str] = (),
        cached: bool = False,
        timestamp: float | None = None,
    ) -> InvocationCompleteEvent:
        """The event for a node that returned ``output`` (``cached``: taken from the output cache, not run)."""
        return cls(
            **cls._node_fields(queue_item, invocation, source_node_id, omit_inputs, timestamp),
            result=output.model_dump(mode="json"),
            cached=cached,
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
        timestamp: float | None = None,
    ) -> InvocationErrorEvent:
        """The event for a node error already recorded as type, message and traceback (no exception at hand)."""
        return cls(
            **cls._node_fields(queue_item, invocation, source_node_id, omit_inputs, timestamp),
            error_type=error_type,
            error_message=error_message,
            error_traceback=error_traceback,
        )
