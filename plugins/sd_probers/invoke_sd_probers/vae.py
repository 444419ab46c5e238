"""VAEs: single files with encoder/decoder keys, and diffusers AutoencoderKL folders."""

from __future__ import annotations

from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised

__all__ = ["VAECheckpointProber", "VAEDiffusersProber"]

_BASES = (BaseModelType.StableDiffusion1, BaseModelType.StableDiffusionXL)
_SDXL_SCALING = 0.13025
_SD_LATENT_CHANNELS = 4


def _base_from_hints(model: ModelOnDisk) -> BaseModelType:
    # The SD and SDXL VAEs have the same shapes; only metadata or the name can tell them apart.
    arch = model.metadata.get("modelspec.architecture", "").lower()
    if "xl" in arch or "xl" in model.name.lower():
        return BaseModelType.StableDiffusionXL
    return BaseModelType.StableDiffusion1


class VAECheckpointProber:
    name = "sd.vae.checkpoint"
    order = 50
    recognises = (Recognised(ModelType.VAE, ModelFormat.Checkpoint, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        keys = model.tensors
        for prefix in ("", "first_stage_model."):
            if f"{prefix}encoder.conv_in.weight" in keys and f"{prefix}decoder.conv_in.weight" in keys:
                if model.any_key("model.diffusion_model."):
                    return None  # a whole checkpoint, not a VAE
                latent = model.shape(f"{prefix}decoder.conv_in.weight") or (0, _SD_LATENT_CHANNELS)
                if len(latent) > 1 and latent[1] != _SD_LATENT_CHANNELS:
                    return None  # FLUX's VAE (16 latent channels) or another family's
                return {"type": ModelType.VAE, "format": ModelFormat.Checkpoint, "base": _base_from_hints(model)}
        return None


class VAEDiffusersProber:
    name = "sd.vae.diffusers"
    order = 50
    recognises = (Recognised(ModelType.VAE, ModelFormat.Diffusers, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        config = model.json("config.json")
        if config is None or config.get("_class_name") != "AutoencoderKL":
            return None
        if config.get("latent_channels", 4) != 4:
            return None  # FLUX's 16-channel VAE (flux_folders) or another family's: not an SD VAE
        scaling = config.get("scaling_factor")
        if isinstance(scaling, float) and abs(scaling - _SDXL_SCALING) < 1e-6:
            base = BaseModelType.StableDiffusionXL
        else:
            base = _base_from_hints(model)
        return {"type": ModelType.VAE, "format": ModelFormat.Diffusers, "base": base}
