"""``flux_lora_loader``: adds a FLUX LoRA to the transformer, CLIP-L and T5 (InvokeAI's id, fields and output)."""

from __future__ import annotations

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    Input,
    InputField,
    InvocationContext,
    ModelIdentifierField,
    OutputField,
    invocation,
    invocation_output,
)

from invoke_diffusers_nodes.flux_fields import T5EncoderField, TransformerField
from invoke_diffusers_nodes.model_fields import CLIPField, LoRAField
from invoke_diffusers_nodes.model_nodes import checked_model, with_lora

__all__ = ["FluxLoRALoaderInvocation", "FluxLoRALoaderOutput"]


@invocation_output("flux_lora_loader_output")
class FluxLoRALoaderOutput(BaseInvocationOutput):
    """A FLUX transformer, CLIP and T5 encoder with one more LoRA."""

    transformer: TransformerField | None = OutputField(default=None, description="Transformer with the LoRA",
                                                       title="FLUX Transformer")
    clip: CLIPField | None = OutputField(default=None, description="CLIP with the LoRA", title="CLIP")
    t5_encoder: T5EncoderField | None = OutputField(default=None, description="T5 encoder with the LoRA",
                                                    title="T5 Encoder")


@invocation("flux_lora_loader", title="Apply LoRA - FLUX", tags=["lora", "model", "flux"], category="model",
            version="1.2.1")
class FluxLoRALoaderInvocation(BaseInvocation):
    """Adds a FLUX LoRA to the transformer, CLIP and/or T5 encoder; chain several to apply several LoRAs."""

    lora: ModelIdentifierField = InputField(description="LoRA model to apply", title="LoRA")
    weight: float = InputField(default=0.75, description="How strongly to apply the LoRA")
    transformer: TransformerField | None = InputField(default=None, description="Transformer",
                                                      input=Input.Connection, title="FLUX Transformer")
    clip: CLIPField | None = InputField(default=None, description="CLIP (CLIP-L)", input=Input.Connection,
                                        title="CLIP")
    t5_encoder: T5EncoderField | None = InputField(default=None, description="T5 encoder", input=Input.Connection,
                                                   title="T5 Encoder")

    def invoke(self, context: InvocationContext) -> FluxLoRALoaderOutput:
        checked_model(context, self.lora, "LoRA", types={"lora"}, bases={"flux"},
                      hint=" (use the SD1.5 or SDXL LoRA node for other bases)")
        lora = LoRAField(lora=self.lora, weight=self.weight)
        return FluxLoRALoaderOutput(
            transformer=with_lora(self.transformer, lora, "the transformer"),
            clip=with_lora(self.clip, lora, "CLIP"),
            t5_encoder=with_lora(self.t5_encoder, lora, "the T5 encoder"),
        )
