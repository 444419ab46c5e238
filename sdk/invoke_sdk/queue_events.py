"""Queue events: a batch was enqueued, an item changed status, items were canceled, a queue was cleared.

They go to the clients subscribed to the queue (room ``queue:<id>``). They are among the host's own
events (:data:`invoke_sdk.events.CORE_EVENTS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from invoke_sdk.event_base import BaseEvent
from invoke_sdk.session_queue import EnqueueResult, QueueItemStatus, QueueItemSummary

__all__ = [
    "BatchEnqueuedEvent",
    "QueueClearedEvent",
    "QueueEventBase",
    "QueueItemEventBase",
    "QueueItemStatusChangedEvent",
    "QueueItemsCanceledEvent",
]


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
