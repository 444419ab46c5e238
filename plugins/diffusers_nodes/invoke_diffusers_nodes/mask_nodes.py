"""Nodes that make denoise masks from mask images: ``create_denoise_mask`` and ``create_gradient_mask``.

A mask image is white where the image is kept and black where it is repainted (InvokeAI's convention); the
tensors they save hold that as 1 and 0.
"""

from __future__ import annotations

from typing import Any, Literal

from invoke_sdk import BaseInvocation, ImageField, Input, InputField, InvocationContext, invocation

from invoke_diffusers_nodes.denoise_mask import DenoiseMaskField, DenoiseMaskOutput, GradientMaskOutput
from invoke_diffusers_nodes.model_fields import UNetField, VAEField
from invoke_diffusers_nodes.noise_node import LATENT_SCALE
from invoke_diffusers_nodes.vae_nodes import vae_mode

__all__ = ["CreateDenoiseMaskInvocation", "CreateGradientMaskInvocation", "gradient_mask"]


def _to_grid(image: Any) -> Any:
    """The image cropped down to a multiple of 8 pixels each way, as the VAE needs."""
    width, height = image.width // LATENT_SCALE * LATENT_SCALE, image.height // LATENT_SCALE * LATENT_SCALE
    return image if (width, height) == image.size else image.crop((0, 0, width, height))


def _mask_tensor(mask_image: Any) -> Any:
    """``(1, 1, H, W)`` float32 in 0..1 from an 8-bit mask image."""
    import numpy as np
    import torch

    array = np.asarray(_to_grid(mask_image.convert("L")), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy())[None, None]


def _masked_latents(context: InvocationContext, vae_field: VAEField, image_field: ImageField, mask: Any, *,
                    tiled: bool, fp32: bool) -> str:
    """The VAE latents of the image with the area to repaint (mask below 0.5) blacked out."""
    import numpy as np
    import torch

    image = _to_grid(context.images.get_pil(image_field.image_name, "RGB"))
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    if tuple(mask.shape[-2:]) != tuple(pixels.shape[-2:]):
        mask = torch.nn.functional.interpolate(mask, size=tuple(pixels.shape[-2:]), mode="bilinear",
                                               align_corners=False, antialias=False)
    # Black in the VAE's -1..1 range is -1; InvokeAI multiplies the 0..1 image by the mask: the same black.
    masked = torch.where(mask < 0.5, -1.0, pixels)
    context.util.signal_progress("Running VAE encoder")
    with context.models.load(vae_field.vae) as vae, vae_mode(vae, tiled=tiled, tile_size=0, fp32=fp32), \
            torch.inference_mode():
        dist = vae.encode(masked.to(vae.device, vae.dtype), return_dict=False)[0]
        latents = (dist.mode() * vae.config.scaling_factor).float().cpu()
    return context.tensors.save(latents)


@invocation("create_denoise_mask", title="Create Denoise Mask", tags=["mask", "denoise"], category="mask",
            version="1.0.2")
class CreateDenoiseMaskInvocation(BaseInvocation):
    """Creates mask for denoising model run."""

    vae: VAEField = InputField(description="VAE", input=Input.Connection, ui_order=0)
    image: ImageField | None = InputField(default=None, description="Image which will be masked", ui_order=1)
    mask: ImageField = InputField(description="The mask to use when pasting", ui_order=2)
    tiled: bool = InputField(default=False, description="Processing using overlapping tiles (reduce memory "
                             "consumption)", ui_order=3)
    fp32: bool = InputField(default=False, description="Whether or not to use full float32 precision", ui_order=4)

    def invoke(self, context: InvocationContext) -> DenoiseMaskOutput:
        mask = _mask_tensor(context.images.get_pil(self.mask.image_name))
        masked = None
        if self.image is not None:
            masked = _masked_latents(context, self.vae, self.image, mask, tiled=self.tiled, fp32=self.fp32)
        return DenoiseMaskOutput(denoise_mask=DenoiseMaskField(
            mask_name=context.tensors.save(mask), masked_latents_name=masked, gradient=False))


def _kernel(radius: int, mode: str) -> Any:
    """A round kernel of ``radius``: a cone (``Box Blur``) or a Gaussian peaking at 1 (the other modes)."""
    import numpy as np

    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    distance = np.sqrt(offsets[:, None] ** 2 + offsets[None, :] ** 2)
    if mode == "Box Blur":
        kernel = np.where(distance <= radius, 1.0 - distance / radius, 0.0)
    else:
        sigma = radius / 2.5  # InvokeAI's choice: the kernel's edge sits 2.5 standard deviations out
        line = np.exp(-(offsets**2) / (2 * sigma**2))
        kernel = np.outer(line, line)
        kernel = np.where(distance <= radius, kernel / kernel.max(), 0.0)
    return kernel.astype(np.float32)


def _max_filter(image: Any, kernel: Any) -> Any:
    """Grey dilation with a weighted kernel: each pixel takes the largest neighbour times its kernel weight."""
    import torch

    h, w = kernel.shape
    padded = torch.nn.functional.pad(image, (w // 2, w // 2, h // 2, h // 2), mode="constant", value=0)
    result = torch.zeros_like(image)
    for i in range(h):
        for j in range(w):
            weight = float(kernel[i, j])
            if weight > 0:
                result = torch.maximum(result, padded[i:i + image.shape[0], j:j + image.shape[1]] * weight)
    return result


def gradient_mask(mask: Any, edge_radius: int, mode: str, minimum_denoise: float) -> tuple[Any, Any]:
    """``(soft, expanded)`` at latent resolution from an ``L`` mask image (white keeps): both 0..255 uint8 arrays.

    The repainted (black) area grows by ``edge_radius`` pixels with a falloff; the grown ring is denoised at
    least ``minimum_denoise``. ``expanded`` is 0 wherever anything is denoised, 255 where nothing is.
    """
    import numpy as np
    import torch
    from PIL import Image

    small = mask.resize((mask.width // LATENT_SCALE, mask.height // LATENT_SCALE), resample=Image.Resampling.BILINEAR)
    original = np.asarray(small, dtype=np.float32)
    radius = edge_radius // LATENT_SCALE
    if radius > 0:
        inverted = torch.from_numpy(255 - original)  # higher = more denoising
        dilated = 255 - _max_filter(inverted, _kernel(radius, mode)).numpy()
        threshold = (1 - minimum_denoise) * 255
        if mode == "Staged":
            # The grown ring drops straight to the minimum denoise instead of fading.
            dilated = np.where((dilated < original) & (original > threshold), threshold, original)
        dilated = np.where((dilated > threshold) & (dilated < 255), threshold, dilated)
    else:
        dilated = original.copy()
    soft = np.clip(dilated, 0, 255).astype(np.uint8)
    expanded = np.where(soft < 255, 0, 255).astype(np.uint8)
    return soft, expanded


@invocation("create_gradient_mask", title="Create Gradient Mask", tags=["mask", "denoise"], category="mask",
            version="1.3.0")
class CreateGradientMaskInvocation(BaseInvocation):
    """Creates mask for denoising."""

    mask: ImageField = InputField(description="Image which will be masked", ui_order=1)
    edge_radius: int = InputField(default=16, ge=0, description="How far to expand the edges of the mask", ui_order=2)
    coherence_mode: Literal["Gaussian Blur", "Box Blur", "Staged"] = InputField(default="Gaussian Blur", ui_order=3)
    minimum_denoise: float = InputField(default=0.0, ge=0, le=1,
                                        description="Minimum denoise level for the coherence region", ui_order=4)
    image: ImageField | None = InputField(
        default=None, title="[OPTIONAL] Image", ui_order=6,
        description="OPTIONAL: Only connect for specialized Inpainting models, masked_latents will be generated from "
        "the image with the VAE")
    unet: UNetField | None = InputField(
        default=None, input=Input.Connection, title="[OPTIONAL] UNet", ui_order=5,
        description="OPTIONAL: If the Unet is a specialized Inpainting model, masked_latents will be generated from "
        "the image with the VAE")
    vae: VAEField | None = InputField(
        default=None, input=Input.Connection, title="[OPTIONAL] VAE", ui_order=7,
        description="OPTIONAL: Only connect for specialized Inpainting models, masked_latents will be generated from "
        "the image with the VAE")
    tiled: bool = InputField(default=False, description="Processing using overlapping tiles (reduce memory "
                             "consumption)", ui_order=8)
    fp32: bool = InputField(default=False, description="Whether or not to use full float32 precision", ui_order=9)

    def invoke(self, context: InvocationContext) -> GradientMaskOutput:
        import torch
        from PIL import Image

        mask_image = _to_grid(context.images.get_pil(self.mask.image_name, "L"))
        soft, expanded = gradient_mask(mask_image, self.edge_radius, self.coherence_mode, self.minimum_denoise)
        full = (mask_image.width, mask_image.height)
        expanded_image = Image.fromarray(expanded, mode="L").resize(full, resample=Image.Resampling.NEAREST)
        expanded_field = context.images.save(expanded_image, category="mask")
        soft_full = Image.fromarray(soft, mode="L").resize(full, resample=Image.Resampling.NEAREST)
        mask = _mask_tensor(soft_full)
        masked = None
        if self.unet is not None and self.vae is not None and self.image is not None:
            # Only an inpaint model reads masked latents; encoding them for a normal model would waste a VAE pass.
            variant = getattr(context.models.get_config(self.unet.unet), "variant", None)
            if str(getattr(variant, "value", variant)) == "inpaint":
                masked = _masked_latents(context, self.vae, self.image, mask, tiled=self.tiled, fp32=self.fp32)
        name = context.tensors.save(torch.as_tensor(mask))
        return GradientMaskOutput(
            denoise_mask=DenoiseMaskField(mask_name=name, masked_latents_name=masked, gradient=True),
            expanded_mask_area=expanded_field,
        )
