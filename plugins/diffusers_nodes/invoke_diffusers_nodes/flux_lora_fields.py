"""The FLUX transformer reference that flows between nodes, with the LoRAs to patch into it (InvokeAI's shape)."""

from __future__ import annotations

from invoke_sdk import ModelIdentifierField
from pydantic import BaseModel, Field

from invoke_diffusers_nodes.model_fields import LoRAField

__all__ = ["TransformerField"]


class TransformerField(BaseModel):
    """A FLUX main model's transformer submodel and the LoRAs to apply while denoising."""

    transformer: ModelIdentifierField = Field(description="The transformer submodel")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply to the transformer")
