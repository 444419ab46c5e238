"""The events the host itself emits: their names are reserved, and they are always in the event union."""

from __future__ import annotations

from invoke_sdk.events import CORE_EVENTS, BaseEvent
from invoke_sdk.images import IMAGE_EVENTS
from invoke_sdk.models.change_event import ModelChangedEvent

__all__ = ["HOST_EVENTS"]

HOST_EVENTS: tuple[type[BaseEvent], ...] = (*CORE_EVENTS, *IMAGE_EVENTS, ModelChangedEvent)
"""The events the host itself emits (queue, nodes, images, model changes): always in the OpenAPI document, names
reserved."""
