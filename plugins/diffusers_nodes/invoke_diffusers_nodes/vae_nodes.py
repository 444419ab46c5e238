"""VAE nodes: latents to image (tiled for large images) and image to latents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from invoke_sdk import BaseInvocation, ImageField, Input, InputField, InvocationContext, LatentsField, invocation

from invoke_diffusers_nodes.generation_metadata import decoded_metadata
from invoke_diffusers_nodes.model_fields import VAEField
from invoke_diffusers_nodes.noise_node import LATENT_SCALE
from invoke_diffusers_nodes.outputs import ImageOutput, LatentsOutput

__all__ = ["ImageToLatentsInvocation", "LatentsToImageInvocation", "vae_mode"]

AUTO_TILE_PIXELS = 2048 * 2048
"""Images this large or larger are decoded in tiles even when ``tiled`` is off, to bound VAE memory."""


@contextmanager
def _vae_mode(vae: Any, *, tiled: bool, tile_size: int, fp32: bool) -> Iterator[Any]:
    import torch

    dtype = vae.dtype
    if fp32 and dtype != torch.float32:
        vae.to(dtype=torch.float32)
    if tiled:
        vae.enable_tiling()
        if tile_size:
            vae.tile_sample_min_size = tile_size
            vae.tile_latent_min_size = tile_size // LATENT_SCALE
    try:
        yield vae
    finally:
        if tiled:
            vae.disable_tiling()
            vae.tile_sample_min_size = vae.config.sample_size
            vae.tile_latent_min_size = int(vae.config.sample_size / (2 ** (len(vae.config.block_out_channels) - 1)))
        if vae.dtype != dtype:
            vae.to(dtype=dtype)


vae_mode = _vae_mode
"""The VAE switched to tiling and/or float32 inside the block (other nodes that run the VAE use it too)."""


@invocation("l2i", title="Latents to Image", tags=["latents", "image", "vae", "l2i"], category="latents",
            version="1.0.0")
class LatentsToImageInvocation(BaseInvocation):
    """Decodes latents to an image with a VAE and saves it."""

    latents: LatentsField = InputField(description="Latents tensor", input=Input.Connection)
    vae: VAEField = InputField(description="VAE", input=Input.Connection, title="VAE")
    tiled: bool = InputField(default=False, description="Decode latents by overlapping tiles (less memory)")
    tile_size: int = InputField(default=0, multiple_of=8, ge=0, description="Tile size in pixels; 0 for the default")
    fp32: bool = InputField(default=False, description="Decode in full precision")
    metadata: dict[str, Any] | None = InputField(
        default=None, description="Generation metadata to save with it (wire a core_metadata node); without it, the "
        "metadata the latents carry")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        import torch
        from PIL import Image

        latents = context.tensors.load(self.latents.latents_name)
        height, width = latents.shape[2] * LATENT_SCALE, latents.shape[3] * LATENT_SCALE
        tiled = self.tiled or height * width >= AUTO_TILE_PIXELS
        with context.models.load(self.vae.vae) as vae, _vae_mode(
            vae, tiled=tiled, tile_size=self.tile_size, fp32=self.fp32
        ), torch.inference_mode():
            scaled = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor
            image = vae.decode(scaled, return_dict=False)[0]
            pixels = ((image[0].float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            array = pixels.permute(1, 2, 0).cpu().numpy()
        pil = Image.fromarray(array, mode="RGB")
        # A wired metadata node wins; without one, the metadata the latents carry from denoise.
        metadata = self.metadata if self.metadata is not None else decoded_metadata(
            context, self.latents.metadata, self.vae.vae, pil.width, pil.height)
        saved = context.images.save(pil, metadata=metadata)
        return ImageOutput(image=saved, width=pil.width, height=pil.height)


@invocation("i2l", title="Image to Latents", tags=["latents", "image", "vae", "i2l"], category="latents",
            version="1.0.0")
class ImageToLatentsInvocation(BaseInvocation):
    """Encodes an image into latents with a VAE (the distribution's mean, so it is deterministic)."""

    image: ImageField = InputField(description="The image to encode")
    vae: VAEField = InputField(description="VAE", input=Input.Connection, title="VAE")
    tiled: bool = InputField(default=False, description="Encode by overlapping tiles (less memory)")
    tile_size: int = InputField(default=0, multiple_of=8, ge=0, description="Tile size in pixels; 0 for the default")
    fp32: bool = InputField(default=False, description="Encode in full precision")

    def invoke(self, context: InvocationContext) -> LatentsOutput:
        import numpy as np
        import torch

        pil = context.images.get_pil(self.image.image_name, "RGB")
        width, height = pil.width // LATENT_SCALE * LATENT_SCALE, pil.height // LATENT_SCALE * LATENT_SCALE
        if (width, height) != pil.size:
            pil = pil.crop((0, 0, width, height))
        pixels = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        with context.models.load(self.vae.vae) as vae, _vae_mode(
            vae, tiled=self.tiled, tile_size=self.tile_size, fp32=self.fp32
        ), torch.inference_mode():
            dist = vae.encode(pixels.to(vae.device, vae.dtype), return_dict=False)[0]
            latents = (dist.mode() * vae.config.scaling_factor).float().cpu()
        name = context.tensors.save(latents)
        return LatentsOutput(latents=LatentsField(latents_name=name), width=width, height=height)
