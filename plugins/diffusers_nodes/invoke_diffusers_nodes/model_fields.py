"""The model references that flow between nodes (InvokeAI's names and shapes)."""

from __future__ import annotations

from invoke_sdk import ModelIdentifierField
from invoke_sdk.fields import LoRAField
from pydantic import BaseModel, Field

__all__ = ["CLIPField", "LoRAField", "UNetField", "VAEField", "submodel"]


class UNetField(BaseModel):
    """The UNet and scheduler of a main model, with the LoRAs to patch into the UNet."""

    unet: ModelIdentifierField = Field(description="The UNet submodel")
    scheduler: ModelIdentifierField = Field(description="The scheduler submodel")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply while denoising")


class CLIPField(BaseModel):
    """A tokenizer and text encoder pair, with the LoRAs to patch into the encoder."""

    tokenizer: ModelIdentifierField = Field(description="The tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="The text encoder submodel")
    skipped_layers: int = Field(default=0, ge=0, description="How many final encoder layers to skip (CLIP skip)")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply while encoding")


class VAEField(BaseModel):
    """A VAE: a main model's VAE submodel or a standalone VAE."""

    vae: ModelIdentifierField = Field(description="The VAE model")


def submodel(model: ModelIdentifierField, name: str) -> ModelIdentifierField:
    """A reference to one submodel of ``model``."""
    return model.model_copy(update={"submodel_type": name})
