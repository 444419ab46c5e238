"""InvokeAI's ``clip_skip`` node: encode prompts from an earlier layer of the text encoder."""

from __future__ import annotations

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    Input,
    InputField,
    InvocationContext,
    OutputField,
    invocation,
    invocation_output,
)

from invoke_diffusers_nodes.model_fields import CLIPField

__all__ = ["CLIPSkipInvocation", "CLIPSkipInvocationOutput"]


@invocation_output("clip_skip_output")
class CLIPSkipInvocationOutput(BaseInvocationOutput):
    """CLIP skip node output"""

    clip: CLIPField | None = OutputField(default=None, description="CLIP (tokenizer, text encoder, LoRAs) and "
                                         "skipped layer count", title="CLIP")


@invocation("clip_skip", title="Apply CLIP Skip - SD1.5, SDXL", tags=["clipskip", "clip", "skip"],
            category="prompt", version="1.1.1")
class CLIPSkipInvocation(BaseInvocation):
    """Skip layers in clip text_encoder model."""

    clip: CLIPField = InputField(description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
                                 input=Input.Connection, title="CLIP")
    skipped_layers: int = InputField(default=0, ge=0, description="Number of layers to skip in text encoder")

    def invoke(self, context: InvocationContext) -> CLIPSkipInvocationOutput:
        encoder = context.models.load(self.clip.text_encoder)
        with encoder as model:
            layers = int(model.config.num_hidden_layers)
        total = self.clip.skipped_layers + self.skipped_layers
        if total >= layers:
            raise ValueError(f"skipped_layers adds up to {total}, but this text encoder has {layers} layers: skip "
                             f"fewer than {layers}")
        # Skips add up, as in InvokeAI: two clip_skip nodes of 1 skip 2 layers.
        return CLIPSkipInvocationOutput(clip=self.clip.model_copy(update={"skipped_layers": total}))
