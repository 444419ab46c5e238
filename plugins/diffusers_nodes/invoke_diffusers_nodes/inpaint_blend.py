"""Inpainting inside the denoise loop, for normal models (masked blending) and inpaint models (9-channel UNet).

``denoise_latents`` calls :class:`InpaintBlend` at three points: before each UNet call (``blend_step``), on the
UNet input (``unet_input``) and after the loop (``finish``). The mask convention is InvokeAI's: 1 keeps the
starting latents, 0 is denoised fully.

Normal model: before every step the kept area is replaced by the starting latents noised to the current
timestep, so the model sees a consistent image and only invents the masked area; after the loop the kept area
is restored exactly (``latents * (1 - m) + original * m``, which is the original bit for bit where ``m`` is 1).

Inpaint model: the UNet takes 4 more channels than it denoises: the mask (1 where to paint, the inverse of
ours) and the latents of the image with the painted area blacked out; it does the blending itself.
"""

from __future__ import annotations

from typing import Any

from invoke_diffusers_nodes.denoise_mask import DenoiseMaskField

__all__ = ["INPAINT_CHANNELS", "InpaintBlend"]

INPAINT_CHANNELS = 9
"""An inpaint UNet's input: 4 latent channels + 1 mask + 4 masked-image latents."""


def _to_latent_size(mask: Any, latents: Any) -> Any:
    import torch

    mask = mask.to(dtype=torch.float32)
    while mask.dim() < 4:
        mask = mask.unsqueeze(0)
    if tuple(mask.shape[-2:]) != tuple(latents.shape[-2:]):
        # Bilinear without antialiasing, as InvokeAI resizes it: a soft edge stays soft, a hard one stays narrow.
        mask = torch.nn.functional.interpolate(mask, size=tuple(latents.shape[-2:]), mode="bilinear",
                                               align_corners=False, antialias=False)
    return mask.clamp(0, 1)


class InpaintBlend:
    """The inpainting state of one denoise run."""

    def __init__(self, *, mask: Any, original: Any, noise: Any, masked_latents: Any, gradient: bool,
                 inpaint_model: bool, num_train_timesteps: int) -> None:
        self.mask = mask
        self.original = original
        self.noise = noise
        self.masked_latents = masked_latents
        self.gradient = gradient
        self.inpaint_model = inpaint_model
        self._train_steps = num_train_timesteps

    @classmethod
    def start(cls, context: Any, field: DenoiseMaskField | None, *, unet: Any, latents: Any, noise: Any,
              seed: int, scheduler: Any) -> InpaintBlend | None:
        """The blend for this run, or None when there is nothing to blend (no mask and a normal model).

        ``latents`` are the starting latents (img2img's image, unnoised) or None for txt2img.
        """
        import torch

        in_channels = int(unet.config.in_channels)
        inpaint_model = in_channels == INPAINT_CHANNELS
        if field is None and not inpaint_model:
            return None
        if not inpaint_model and in_channels != 4:
            raise ValueError(f"this UNet takes {in_channels} input channels: only normal (4) and inpaint (9) "
                             f"models can denoise with a mask")
        device = unet.device
        reference = latents if latents is not None else noise
        mask = None
        masked_latents = None
        gradient = False
        if field is not None:
            if latents is None:
                raise ValueError("a denoise mask needs the latents of the image to inpaint: connect them to "
                                 "denoise_latents' latents input")
            mask = _to_latent_size(context.tensors.load(field.mask_name), latents).to(device)
            gradient = field.gradient
            if field.masked_latents_name is not None:
                masked_latents = context.tensors.load(field.masked_latents_name).to(device, torch.float32)
            elif inpaint_model:
                raise ValueError("this is an inpaint model (9-channel UNet): its mask needs masked-image latents; "
                                 "connect the image and VAE to create_denoise_mask (or the image, UNet and VAE "
                                 "to create_gradient_mask)")
        if inpaint_model:
            # No mask: the whole image is painted from nothing (txt2img with an inpaint model), as InvokeAI does.
            if mask is None:
                mask = torch.zeros_like(reference[:1, :1], dtype=torch.float32, device=device)
            if masked_latents is None:
                masked_latents = torch.zeros_like(reference[:1], dtype=torch.float32, device=device)
        if noise is None:
            # Blending needs the noise the kept area is noised with; without a noise input it comes from the seed.
            noise = torch.randn(reference.shape, dtype=torch.float32, device="cpu",
                                generator=torch.Generator(device="cpu").manual_seed(seed))
        return cls(mask=mask, original=latents.to(device, torch.float32) if latents is not None else None,
                   noise=noise.to(device, torch.float32), masked_latents=masked_latents, gradient=gradient,
                   inpaint_model=inpaint_model, num_train_timesteps=int(scheduler.config.num_train_timesteps))

    def blend_step(self, latents: Any, t: Any, scheduler: Any) -> Any:
        """Before a step (normal models): the kept area becomes the original noised to timestep ``t``."""
        import torch

        if self.inpaint_model or self.original is None:
            return latents
        noised = scheduler.add_noise(self.original, self.noise, t.reshape(1))
        if self.gradient:
            # A soft value v is kept while the schedule is above v, then denoised: softer edges change less.
            keep = self.mask >= 1 - float(t) / self._train_steps
            return torch.where(keep, noised, latents)
        return latents * (1 - self.mask) + noised * self.mask

    def unet_input(self, model_in: Any) -> Any:
        """The UNet input (inpaint models): the scaled latents with the mask and masked-image latents appended."""
        import torch

        if not self.inpaint_model:
            return model_in
        batch = model_in.shape[0]
        paint = (1 - self.mask).to(model_in.dtype)
        return torch.cat([model_in, paint.repeat(batch, 1, 1, 1), self.masked_latents.to(model_in.dtype).repeat(
            batch, 1, 1, 1)], dim=1)

    def finish(self, latents: Any) -> Any:
        """After the loop: the kept area is the original exactly (a soft mask blends it in)."""
        import torch

        if self.original is None or self.mask is None:
            return latents
        if self.gradient:
            return torch.where(self.mask >= 1, self.original, latents)
        return latents * (1 - self.mask) + self.original * self.mask
