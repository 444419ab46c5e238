"""The inpainting mask that flows into ``denoise_latents`` (InvokeAI's DenoiseMaskField and its outputs)."""

from __future__ import annotations

from invoke_sdk import BaseInvocationOutput, ImageField, OutputField, invocation_output
from pydantic import BaseModel, Field

__all__ = ["DenoiseMaskField", "DenoiseMaskOutput", "GradientMaskOutput"]


class DenoiseMaskField(BaseModel):
    """A mask for denoising: 1 keeps the starting latents, 0 denoises fully; values between blend (soft masks).

    ``mask_name`` names a ``(1, 1, H, W)`` float tensor in pixel (or latent) resolution; ``masked_latents_name``
    names the VAE latents of the image with the area to repaint blacked out, which inpaint models (9-channel UNet)
    need. ``gradient`` marks a gradient mask: a value of v is denoised only in the steps after the fraction v of
    the schedule, so soft edges get gradually less change instead of a fixed blend.
    """

    mask_name: str = Field(description="The name of the mask image")
    masked_latents_name: str | None = Field(default=None, description="The name of the masked image latents")
    gradient: bool = Field(default=False, description="Used for gradient inpainting")


@invocation_output("denoise_mask_output")
class DenoiseMaskOutput(BaseInvocationOutput):
    """A denoise mask."""

    denoise_mask: DenoiseMaskField = OutputField(description="Mask for denoise model run")


@invocation_output("gradient_mask_output")
class GradientMaskOutput(BaseInvocationOutput):
    """A gradient denoise mask, and the image of the area it changes at all (for pasting the result back)."""

    denoise_mask: DenoiseMaskField = OutputField(
        description="Mask for denoise model run. Values of 0.0 represent the regions to be fully denoised, and 1.0 "
        "represent the regions to be preserved."
    )
    expanded_mask_area: ImageField = OutputField(
        description="Image representing the total gradient area of the mask. For paste-back purposes."
    )
