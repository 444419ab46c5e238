"""FLUX's latent layout and schedule, as diffusers' FluxPipeline lays them out.

The transformer reads latents as a sequence of 2x2 patches (16 channels x 4 = 64 features each), with a
(0, row, column) position id per patch for its rotary embedding and all-zero ids for the text tokens. The
schedule is flow matching: sigma falls from 1 to 0 and each Euler step moves the latents by
``(sigma_next - sigma) * velocity``. FLUX.1 dev shifts its sigmas towards the noisy end by an amount that grows
with the image's token count; schnell, distilled for a few steps, uses them unshifted.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LATENT_CHANNELS", "VAE_SCALE", "flux_schedule", "image_ids", "latent_size", "pack", "text_ids",
           "unpack"]

LATENT_CHANNELS = 16
VAE_SCALE = 8
"""Pixels per latent along each side (the VAE's downscale); packing takes 2x2 latents more, so sizes go by 16."""

# The scheduler configs of black-forest-labs/FLUX.1-dev and FLUX.1-schnell.
_DEV_SCHEDULER = {"shift": 3.0, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15,
                  "base_image_seq_len": 256, "max_image_seq_len": 4096}
_SCHNELL_SCHEDULER = {"shift": 1.0, "use_dynamic_shifting": False}


def latent_size(width: int, height: int) -> tuple[int, int]:
    """(latent height, latent width) of an image: even, so the latents pack into 2x2 patches."""
    return 2 * (height // (VAE_SCALE * 2)), 2 * (width // (VAE_SCALE * 2))


def pack(latents: Any) -> Any:
    """``(B, C, H, W)`` latents to the transformer's ``(B, H/2 * W/2, C * 4)`` patch sequence."""
    b, c, h, w = latents.shape
    patches = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(sequence: Any, height: int, width: int) -> Any:
    """The patch sequence back to ``(B, C, H, W)`` latents of ``height`` x ``width`` latent pixels."""
    b, _, features = sequence.shape
    grid = sequence.view(b, height // 2, width // 2, features // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(b, features // 4, height, width)


def image_ids(height: int, width: int) -> Any:
    """``(H/2 * W/2, 3)`` position ids of the patches: (0, row, column)."""
    import torch

    ids = torch.zeros(height // 2, width // 2, 3)
    ids[..., 1] += torch.arange(height // 2)[:, None]
    ids[..., 2] += torch.arange(width // 2)[None, :]
    return ids.reshape(-1, 3)


def text_ids(length: int) -> Any:
    """``(length, 3)`` zero position ids of the T5 tokens."""
    import torch

    return torch.zeros(length, 3)


def flux_schedule(steps: int, image_seq_len: int, *, shifted: bool, device: Any) -> tuple[Any, Any]:
    """``(timesteps, sigmas)``: ``steps`` timesteps (sigma x 1000) and ``steps + 1`` sigmas ending at 0.

    The sigmas and shift are computed by diffusers' FlowMatchEulerDiscreteScheduler with the published
    configs, so a run matches ``FluxPipeline`` step for step.
    """
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(**(_DEV_SCHEDULER if shifted else _SCHNELL_SCHEDULER))
    sigmas = np.linspace(1.0, 1 / steps, steps)
    kwargs: dict[str, Any] = {}
    if shifted:
        config = scheduler.config
        slope = (config.max_shift - config.base_shift) / (config.max_image_seq_len - config.base_image_seq_len)
        kwargs["mu"] = image_seq_len * slope + config.base_shift - slope * config.base_image_seq_len
    scheduler.set_timesteps(sigmas=sigmas, device=device, **kwargs)
    return scheduler.timesteps, scheduler.sigmas
