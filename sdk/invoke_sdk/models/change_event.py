"""The event a model edit or delete sends: how every node (workers too, through a relay) hears of it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from invoke_sdk.event_base import BaseEvent

__all__ = ["ModelChangedEvent"]


class ModelChangedEvent(BaseEvent):
    """A model's record was changed or removed (an edit, a delete, a sync that found its files changed or gone):
    what any node loaded or computed with it no longer holds. Goes to every client (no room)."""

    event_name: ClassVar[str] = "model_changed"

    model_key: str = Field(description="The model's key")
    change: Literal["changed"] = Field(
        default="changed", description="What happened to the record; one kind today, a field so more can follow"
    )

    @classmethod
    def build(cls, model_key: str) -> ModelChangedEvent:
        """The event for a change of the model ``model_key``."""
        return cls(model_key=model_key)
