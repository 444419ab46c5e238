"""Nodes that pick models: main (SD1/SD2), SDXL, VAE, LoRA, and the scheduler."""

from __future__ import annotations

from typing import Any

from invoke_sdk import BaseInvocation, Input, InputField, InvocationContext, ModelIdentifierField, invocation

from invoke_diffusers_nodes.model_fields import CLIPField, LoRAField, UNetField, VAEField, submodel
from invoke_diffusers_nodes.outputs import (
    LoRALoaderOutput,
    ModelLoaderOutput,
    SchedulerOutput,
    SDXLLoRALoaderOutput,
    SDXLModelLoaderOutput,
    VAEOutput,
)
from invoke_diffusers_nodes.schedulers import SchedulerName

__all__ = [
    "LoRALoaderInvocation",
    "MainModelLoaderInvocation",
    "SDXLLoRALoaderInvocation",
    "SDXLModelLoaderInvocation",
    "SchedulerInvocation",
    "VAELoaderInvocation",
    "checked_model",
    "with_lora",
]


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _checked(context: InvocationContext, model: ModelIdentifierField | None, what: str, *, types: set[str],
             bases: set[str] | None = None, hint: str = "") -> Any:
    if model is None:
        raise ValueError(f"no {what} chosen: pick an installed {what}")
    config = context.models.get_config(model)
    if _value(config.type) not in types:
        raise ValueError(f"model {model.key} is a {_value(config.type)} model, not a {what}")
    if bases is not None and _value(config.base) not in bases:
        raise ValueError(f"model {model.key} has base {_value(config.base)}, this node takes {'/'.join(sorted(bases))}"
                         f"{hint}")
    return config


checked_model = _checked
"""The model's config after checking its type (and base): a ``ValueError`` that says what to pick instead."""


@invocation("main_model_loader", title="Main Model - SD1.5, SD2", tags=["model"], category="model", version="1.0.0")
class MainModelLoaderInvocation(BaseInvocation):
    """Loads an SD 1.x or 2.x main model, giving its UNet, CLIP and VAE."""

    model: ModelIdentifierField = InputField(description="Main model (UNet, VAE, CLIP) to load")

    def invoke(self, context: InvocationContext) -> ModelLoaderOutput:
        _checked(context, self.model, "main model", types={"main"}, bases={"sd-1", "sd-2"},
                 hint=" (use the SDXL main model node for SDXL)")
        m = self.model
        return ModelLoaderOutput(
            unet=UNetField(unet=submodel(m, "unet"), scheduler=submodel(m, "scheduler")),
            clip=CLIPField(tokenizer=submodel(m, "tokenizer"), text_encoder=submodel(m, "text_encoder")),
            vae=VAEField(vae=submodel(m, "vae")),
        )


@invocation("sdxl_model_loader", title="Main Model - SDXL", tags=["model", "sdxl"], category="model", version="1.0.0")
class SDXLModelLoaderInvocation(BaseInvocation):
    """Loads an SDXL main model, giving its UNet, both CLIPs and VAE."""

    model: ModelIdentifierField = InputField(description="SDXL main model (UNet, VAE, CLIP1, CLIP2) to load")

    def invoke(self, context: InvocationContext) -> SDXLModelLoaderOutput:
        _checked(context, self.model, "main model", types={"main"}, bases={"sdxl"})
        m = self.model
        return SDXLModelLoaderOutput(
            unet=UNetField(unet=submodel(m, "unet"), scheduler=submodel(m, "scheduler")),
            clip=CLIPField(tokenizer=submodel(m, "tokenizer"), text_encoder=submodel(m, "text_encoder")),
            clip2=CLIPField(tokenizer=submodel(m, "tokenizer_2"), text_encoder=submodel(m, "text_encoder_2")),
            vae=VAEField(vae=submodel(m, "vae")),
        )


@invocation("vae_loader", title="VAE Model", tags=["vae", "model"], category="model", version="1.0.0")
class VAELoaderInvocation(BaseInvocation):
    """Loads a standalone VAE."""

    vae_model: ModelIdentifierField = InputField(description="VAE model to load", title="VAE")

    def invoke(self, context: InvocationContext) -> VAEOutput:
        _checked(context, self.vae_model, "VAE", types={"vae"})
        return VAEOutput(vae=VAEField(vae=self.vae_model))


def _with_lora(field: Any, lora: LoRAField, name: str) -> Any:
    if field is None:
        return None
    if any(existing.lora.key == lora.lora.key for existing in field.loras):
        raise ValueError(f"LoRA {lora.lora.key} is already applied to {name}: apply each LoRA once")
    return field.model_copy(update={"loras": [*field.loras, lora]})


with_lora = _with_lora
"""``field`` with ``lora`` appended to its LoRAs (None stays None); a ``ValueError`` when it is already there."""


@invocation("lora_loader", title="LoRA - SD1.5", tags=["model", "lora"], category="model", version="1.0.0")
class LoRALoaderInvocation(BaseInvocation):
    """Adds a LoRA to a UNet and/or CLIP; chain several loaders to apply several LoRAs."""

    lora: ModelIdentifierField = InputField(description="LoRA model to apply", title="LoRA")
    weight: float = InputField(default=0.75, description="How strongly to apply the LoRA")
    unet: UNetField | None = InputField(default=None, description="UNet", input=Input.Connection, title="UNet")
    clip: CLIPField | None = InputField(default=None, description="CLIP", input=Input.Connection, title="CLIP")

    def invoke(self, context: InvocationContext) -> LoRALoaderOutput:
        _checked(context, self.lora, "LoRA", types={"lora"})
        lora = LoRAField(lora=self.lora, weight=self.weight)
        return LoRALoaderOutput(unet=_with_lora(self.unet, lora, "the UNet"), clip=_with_lora(self.clip, lora, "CLIP"))


@invocation("sdxl_lora_loader", title="LoRA - SDXL", tags=["model", "lora", "sdxl"], category="model",
            version="1.0.0")
class SDXLLoRALoaderInvocation(BaseInvocation):
    """Adds a LoRA to an SDXL UNet and/or its CLIPs."""

    lora: ModelIdentifierField = InputField(description="LoRA model to apply", title="LoRA")
    weight: float = InputField(default=0.75, description="How strongly to apply the LoRA")
    unet: UNetField | None = InputField(default=None, description="UNet", input=Input.Connection, title="UNet")
    clip: CLIPField | None = InputField(default=None, description="CLIP 1", input=Input.Connection, title="CLIP 1")
    clip2: CLIPField | None = InputField(default=None, description="CLIP 2", input=Input.Connection, title="CLIP 2")

    def invoke(self, context: InvocationContext) -> SDXLLoRALoaderOutput:
        _checked(context, self.lora, "LoRA", types={"lora"})
        lora = LoRAField(lora=self.lora, weight=self.weight)
        return SDXLLoRALoaderOutput(
            unet=_with_lora(self.unet, lora, "the UNet"),
            clip=_with_lora(self.clip, lora, "CLIP 1"),
            clip2=_with_lora(self.clip2, lora, "CLIP 2"),
        )


@invocation("scheduler", title="Scheduler", tags=["scheduler"], category="latents", version="1.0.0")
class SchedulerInvocation(BaseInvocation):
    """Picks a scheduler for denoising."""

    scheduler: SchedulerName = InputField(default="euler", description="Scheduler to denoise with")

    def invoke(self, context: InvocationContext) -> SchedulerOutput:
        return SchedulerOutput(scheduler=self.scheduler)
