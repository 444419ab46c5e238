"""InvokeAI's metadata items and outputs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from invokeai.app.invocations.baseinvocation import BaseInvocationOutput, invocation_output
from invokeai.app.invocations.fields import MetadataField, OutputField

__all__ = ["LoRAMetadataField", "MetadataItemField", "MetadataItemOutput", "MetadataOutput"]


class MetadataItemField(BaseModel):
    """One metadata entry."""

    label: str = Field(description="Label for this metadata item")
    value: Any = Field(description="The value for this metadata item (may be any type)")


class LoRAMetadataField(BaseModel):
    """A LoRA as generation metadata records it."""

    model: Any = Field(description="The LoRA model")
    weight: float = Field(description="The weight of the LoRA model")


# Prefixed, as the model loader outputs are: the host's own metadata nodes (core_nodes' core_metadata ...) register
# InvokeAI's plain ids for their outputs, and an output id names one class. Graphs never name output ids.
@invocation_output("invokeai.metadata_item_output")
class MetadataItemOutput(BaseInvocationOutput):
    """One metadata entry."""

    item: MetadataItemField = OutputField(description="Metadata Item")


@invocation_output("invokeai.metadata_output")
class MetadataOutput(BaseInvocationOutput):
    """Generation metadata."""

    metadata: MetadataField = OutputField(description="Metadata Dict")
