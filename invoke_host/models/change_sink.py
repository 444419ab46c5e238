"""Model changes on the event bus: whichever node changed a model, every node drops what it holds of it.

The model manager only tells its ``on_change`` listener; the composition root makes that listener emit a
:class:`~invoke_sdk.models.change_event.ModelChangedEvent`, and this sink, on the same bus, calls the node's
invalidation for it. A change made here reaches it on the loop before the request that made it answers; a change
made on another node arrives through a relay sink (``invoke-postgres-events``), workers included.
"""

from __future__ import annotations

from collections.abc import Callable

from invoke_sdk.events import BaseEvent
from invoke_sdk.models.change_event import ModelChangedEvent

__all__ = ["ModelChangeSink"]


class ModelChangeSink:
    """An event sink (a selective one: model changes only) that hands each changed key to ``invalidate``."""

    name = "model_changes"

    def __init__(self, invalidate: Callable[[str], None]) -> None:
        self.invalidate = invalidate

    async def start(self) -> None:
        """Nothing to start: delivery is a call."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def wants(self, event_name: str) -> bool:
        return event_name == ModelChangedEvent.event_name

    def deliver(self, event: BaseEvent) -> None:
        if isinstance(event, ModelChangedEvent):
            self.invalidate(event.model_key)
