"""The base of every event: a typed model with a name clients see and a room that says who gets it.

Each event is a pydantic model with a class-level :attr:`BaseEvent.event_name` and a ``build(...)``
classmethod that takes the few objects it needs and decides the payload; services emit
``SomeEvent.build(...)`` and never assemble dicts. Clients receive ``{"event": name, "data": payload}``.
"""

from __future__ import annotations

import time
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BaseEvent"]


class BaseEvent(BaseModel):
    """Base of every event. Subclasses set ``event_name`` and write a ``build(...)`` classmethod."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_name: ClassVar[str] = ""
    """The name clients see in ``{"event": name, ...}``; unique across all plugins."""

    timestamp: float = Field(default_factory=time.time, description="When the event happened (Unix seconds)")

    def room(self) -> str | None:
        """Which subscribers get this event: ``queue:<id>`` for a queue's events; None means every client."""
        return None
