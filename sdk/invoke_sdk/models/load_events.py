"""Model load events: a model (or one of its submodels) started loading from disk, or finished.

InvokeAI's names (``model_load_started``, ``model_load_complete``), so its clients feel at home.
A load happens inside a node, but the model cache serves every session, so these go to every
client (no room). They are among the host's own events (:data:`invoke_sdk.events.CORE_EVENTS`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from invoke_sdk.event_base import BaseEvent

__all__ = ["MODEL_LOAD_EVENTS", "ModelLoadCompleteEvent", "ModelLoadEventBase", "ModelLoadStartedEvent"]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


class ModelLoadEventBase(BaseEvent):
    """Which model is being loaded."""

    model_key: str = Field(description="The model's key")
    model_name: str | None = Field(default=None, description="The model's name")
    base: str | None = Field(default=None, description="The model's base architecture")
    type: str | None = Field(default=None, description="The model's type")
    submodel_type: str | None = Field(default=None, description="The submodel loaded, if only one part is")

    @classmethod
    def _fields(cls, config: Any, submodel: str | None) -> dict[str, Any]:
        return {
            "model_key": str(config.key),
            "model_name": _text(getattr(config, "name", None)),
            "base": _text(getattr(config, "base", None)),
            "type": _text(getattr(config, "type", None)),
            "submodel_type": submodel,
        }


class ModelLoadStartedEvent(ModelLoadEventBase):
    """A model began loading from disk into the RAM cache."""

    event_name: ClassVar[str] = "model_load_started"

    @classmethod
    def build(cls, config: Any, submodel: str | None) -> ModelLoadStartedEvent:
        """The event for ``config`` (a model config with at least ``key``) and the submodel being loaded."""
        return cls(**cls._fields(config, submodel))


class ModelLoadCompleteEvent(ModelLoadEventBase):
    """A model finished loading; ``size_bytes`` is what it holds in memory."""

    event_name: ClassVar[str] = "model_load_complete"

    size_bytes: int | None = Field(default=None, description="Bytes the loaded model holds, measured from its tensors")

    @classmethod
    def build(cls, config: Any, submodel: str | None, size_bytes: int | None) -> ModelLoadCompleteEvent:
        """The event for ``config``'s load having finished."""
        return cls(**cls._fields(config, submodel), size_bytes=size_bytes)


MODEL_LOAD_EVENTS: tuple[type[BaseEvent], ...] = (ModelLoadCompleteEvent, ModelLoadStartedEvent)
"""Every model load event; part of the host's own events."""
