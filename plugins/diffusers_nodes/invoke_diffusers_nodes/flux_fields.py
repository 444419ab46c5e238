"""What flows between the FLUX nodes (InvokeAI 6's names and shapes): the transformer, T5 and the conditioning."""

from __future__ import annotations

from typing import Literal

from invoke_sdk import BaseInvocationOutput, ModelIdentifierField, OutputField, invocation_output
from pydantic import BaseModel, Field

from invoke_diffusers_nodes.model_fields import CLIPField, LoRAField, VAEField

__all__ = ["FluxConditioningField", "FluxConditioningOutput", "FluxModelLoaderOutput", "T5EncoderField",
           "TransformerField"]


class TransformerField(BaseModel):
    """A FLUX transformer, with the LoRAs to patch into it."""

    transformer: ModelIdentifierField = Field(description="The transformer submodel")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply while denoising")


class T5EncoderField(BaseModel):
    """A T5 tokenizer and encoder pair."""

    tokenizer: ModelIdentifierField = Field(description="The T5 tokenizer")
    text_encoder: ModelIdentifierField = Field(description="The T5 encoder")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply while encoding")


class FluxConditioningField(BaseModel):
    """A FLUX prompt's embeddings (CLIP pooled + T5 tokens), stored by name through ``context.conditioning``."""

    conditioning_name: str = Field(description="The name of the conditioning")


@invocation_output("flux_model_loader_output")
class FluxModelLoaderOutput(BaseInvocationOutput):
    """The parts of a FLUX model."""

    transformer: TransformerField = OutputField(description="Transformer", title="Transformer")
    clip: CLIPField = OutputField(description="CLIP (tokenizer and text encoder)", title="CLIP")
    t5_encoder: T5EncoderField = OutputField(description="T5 tokenizer and encoder", title="T5 Encoder")
    vae: VAEField = OutputField(description="VAE", title="VAE")
    max_seq_len: Literal[256, 512] = OutputField(
        description="The max sequence length to used for the T5 encoder. (256 for schnell transformer, 512 for dev "
        "transformer)", title="Max Seq Length")


@invocation_output("flux_conditioning_output")
class FluxConditioningOutput(BaseInvocationOutput):
    """A FLUX conditioning."""

    conditioning: FluxConditioningField = OutputField(description="Conditioning tensor")
