"""What flows between FLUX.1 nodes, under InvokeAI 6's names and type ids: the transformer, the T5 encoder and the
conditioning.

Every pack that loads, encodes for or denoises with FLUX uses these classes, so that one pack's FLUX loader
connects to another's denoise node and an InvokeAI pack's FLUX prompt node (through the compatibility layer)
returns the same ``flux_conditioning_output`` as the first-party one: the registry holds one class per type id
and refuses a second.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from invoke_sdk.fields import LoRAField, ModelIdentifierField, OutputField, TensorField
from invoke_sdk.invocation import BaseInvocationOutput, invocation_output

__all__ = ["FluxConditioningField", "FluxConditioningOutput", "T5EncoderField", "TransformerField"]


class TransformerField(BaseModel):
    """A FLUX transformer, with the LoRAs to patch into it while denoising."""

    transformer: ModelIdentifierField = Field(description="The transformer submodel")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply while denoising")


class T5EncoderField(BaseModel):
    """A T5 tokenizer and encoder pair, with the LoRAs to patch into the encoder while encoding."""

    tokenizer: ModelIdentifierField = Field(description="The T5 tokenizer")
    text_encoder: ModelIdentifierField = Field(description="The T5 encoder")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply while encoding")


class FluxConditioningField(BaseModel):
    """A FLUX prompt's embeddings (CLIP's pooled embedding and T5's tokens), stored by name through
    ``context.conditioning``.

    ``mask`` is InvokeAI's regional-prompt mask (True where the prompt applies); a denoise node that cannot apply
    regions should refuse a conditioning that carries one rather than apply it everywhere.
    """

    conditioning_name: str = Field(description="The name of the conditioning")
    mask: TensorField | None = Field(
        default=None, description="The region this conditioning applies to (True inside), or None for everywhere"
    )


@invocation_output("flux_conditioning_output")
class FluxConditioningOutput(BaseInvocationOutput):
    """A FLUX conditioning."""

    conditioning: FluxConditioningField = OutputField(description="Conditioning tensor")

    @classmethod
    def build(cls, conditioning_name: str) -> FluxConditioningOutput:
        """The output for a conditioning saved under ``conditioning_name`` (InvokeAI's constructor)."""
        return cls(conditioning=FluxConditioningField(conditioning_name=conditioning_name))
