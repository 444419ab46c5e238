"""What flows between the FLUX nodes (InvokeAI 6's names and shapes): the SDK's transformer, T5 and conditioning
types (shared with every FLUX pack), and this plugin's loader output."""

from __future__ import annotations

from typing import Literal

from invoke_sdk import BaseInvocationOutput, OutputField, invocation_output
from invoke_sdk.flux_fields import FluxConditioningField, FluxConditioningOutput, T5EncoderField, TransformerField

from invoke_diffusers_nodes.model_fields import CLIPField, VAEField

__all__ = ["FluxConditioningField", "FluxConditioningOutput", "FluxModelLoaderOutput", "T5EncoderField",
           "TransformerField"]


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

