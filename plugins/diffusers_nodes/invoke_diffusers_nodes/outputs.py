"""Node outputs (InvokeAI's type ids and field names)."""

from __future__ import annotations

from invoke_sdk import (
    BaseInvocationOutput,
    LatentsField,
    OutputField,
    invocation_output,
)
from invoke_sdk.outputs import ConditioningOutput, ImageOutput, LatentsOutput

from invoke_diffusers_nodes.model_fields import CLIPField, UNetField, VAEField
from invoke_diffusers_nodes.schedulers import SchedulerName

__all__ = [
    "ConditioningOutput",
    "ImageOutput",
    "LatentsOutput",
    "LoRALoaderOutput",
    "ModelLoaderOutput",
    "NoiseOutput",
    "SDXLLoRALoaderOutput",
    "SDXLModelLoaderOutput",
    "SchedulerOutput",
    "VAEOutput",
]


@invocation_output("model_loader_output")
class ModelLoaderOutput(BaseInvocationOutput):
    """The parts of an SD 1.x / 2.x main model."""

    unet: UNetField = OutputField(description="UNet and scheduler", title="UNet")
    clip: CLIPField = OutputField(description="Tokenizer and text encoder", title="CLIP")
    vae: VAEField = OutputField(description="VAE", title="VAE")


@invocation_output("sdxl_model_loader_output")
class SDXLModelLoaderOutput(BaseInvocationOutput):
    """The parts of an SDXL main model."""

    unet: UNetField = OutputField(description="UNet and scheduler", title="UNet")
    clip: CLIPField = OutputField(description="First tokenizer and text encoder", title="CLIP 1")
    clip2: CLIPField = OutputField(description="Second tokenizer and text encoder", title="CLIP 2")
    vae: VAEField = OutputField(description="VAE", title="VAE")


@invocation_output("vae_output")
class VAEOutput(BaseInvocationOutput):
    """A VAE."""

    vae: VAEField = OutputField(description="VAE", title="VAE")


@invocation_output("lora_loader_output")
class LoRALoaderOutput(BaseInvocationOutput):
    """A UNet and CLIP with one more LoRA."""

    unet: UNetField | None = OutputField(default=None, description="UNet with the LoRA", title="UNet")
    clip: CLIPField | None = OutputField(default=None, description="CLIP with the LoRA", title="CLIP")


@invocation_output("sdxl_lora_loader_output")
class SDXLLoRALoaderOutput(BaseInvocationOutput):
    """An SDXL UNet and both CLIPs with one more LoRA."""

    unet: UNetField | None = OutputField(default=None, description="UNet with the LoRA", title="UNet")
    clip: CLIPField | None = OutputField(default=None, description="CLIP 1 with the LoRA", title="CLIP 1")
    clip2: CLIPField | None = OutputField(default=None, description="CLIP 2 with the LoRA", title="CLIP 2")


@invocation_output("scheduler_output")
class SchedulerOutput(BaseInvocationOutput):
    """A scheduler name."""

    scheduler: SchedulerName = OutputField(description="Scheduler to denoise with")


@invocation_output("noise_output")
class NoiseOutput(BaseInvocationOutput):
    """Initial noise for denoising."""

    noise: LatentsField = OutputField(description="Noise tensor")
    width: int = OutputField(description="Width of the image the noise makes, in pixels")
    height: int = OutputField(description="Height of the image the noise makes, in pixels")
