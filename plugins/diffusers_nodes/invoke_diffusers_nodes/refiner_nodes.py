"""The SDXL refiner: its model loader (UNet, second CLIP, VAE) and its prompt (aesthetic-score conditioning)."""

from __future__ import annotations

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    ConditioningField,
    Input,
    InputField,
    InvocationContext,
    ModelIdentifierField,
    OutputField,
    invocation,
    invocation_output,
)

from invoke_diffusers_nodes.model_fields import CLIPField, UNetField, VAEField, submodel
from invoke_diffusers_nodes.model_nodes import checked_model
from invoke_diffusers_nodes.outputs import ConditioningOutput
from invoke_diffusers_nodes.prompt_nodes import encode_with_clip

__all__ = ["SDXLRefinerCompelPromptInvocation", "SDXLRefinerModelLoaderInvocation", "SDXLRefinerModelLoaderOutput"]


@invocation_output("sdxl_refiner_model_loader_output")
class SDXLRefinerModelLoaderOutput(BaseInvocationOutput):
    """SDXL refiner model loader output"""

    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")
    clip2: CLIPField = OutputField(description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
                                   title="CLIP 2")
    vae: VAEField = OutputField(description="VAE", title="VAE")


@invocation("sdxl_refiner_model_loader", title="Refiner Model - SDXL", tags=["model", "sdxl", "refiner"],
            category="model", version="1.0.4")
class SDXLRefinerModelLoaderInvocation(BaseInvocation):
    """Loads an sdxl refiner model, outputting its submodels."""

    model: ModelIdentifierField = InputField(description="SDXL Refiner Main Modde (UNet, VAE, CLIP2) to load")

    def invoke(self, context: InvocationContext) -> SDXLRefinerModelLoaderOutput:
        checked_model(context, self.model, "main model", types={"main"}, bases={"sdxl-refiner"},
                      hint=" (use the SDXL main model node for an SDXL base model)")
        m = self.model
        return SDXLRefinerModelLoaderOutput(
            unet=UNetField(unet=submodel(m, "unet"), scheduler=submodel(m, "scheduler")),
            clip2=CLIPField(tokenizer=submodel(m, "tokenizer_2"), text_encoder=submodel(m, "text_encoder_2")),
            vae=VAEField(vae=submodel(m, "vae")),
        )


@invocation("sdxl_refiner_compel_prompt", title="Prompt - SDXL Refiner", tags=["sdxl", "compel", "prompt"],
            category="prompt", version="1.1.2")
class SDXLRefinerCompelPromptInvocation(BaseInvocation):
    """Parse prompt using compel package to conditioning."""

    style: str = InputField(default="", description="Prompt to be parsed by Compel to create a conditioning tensor")
    original_width: int = InputField(default=1024, description="")
    original_height: int = InputField(default=1024, description="")
    crop_top: int = InputField(default=0, description="")
    crop_left: int = InputField(default=0, description="")
    aesthetic_score: float = InputField(default=6.0, description="The aesthetic score to apply to the conditioning "
                                        "tensor")
    clip2: CLIPField = InputField(description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
                                  input=Input.Connection)

    def invoke(self, context: InvocationContext) -> ConditioningOutput:
        import torch

        embeds, pooled, pad = encode_with_clip(context, self.clip2, "text_encoder_2", self.style, penultimate=True)
        if pooled is None:
            raise ValueError("CLIP 2 of an SDXL refiner must be a text encoder with projection (pooled embeddings)")
        # The refiner's size conditioning has no target size: an aesthetic score takes its place.
        add_time_ids = torch.tensor([[self.original_height, self.original_width, self.crop_top, self.crop_left,
                                      self.aesthetic_score]], dtype=torch.float32)
        name = context.conditioning.save({"embeds": embeds, "pad": pad, "pooled_embeds": pooled,
                                          "add_time_ids": add_time_ids})
        return ConditioningOutput(conditioning=ConditioningField(conditioning_name=name))
