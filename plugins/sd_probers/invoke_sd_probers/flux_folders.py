"""FLUX.1 in the diffusers/transformers folder layouts: pipelines, T5 and CLIP text-encoder folders, the 16-channel VAE.

What tells them apart is in the configs: ``model_index.json`` names the pipeline class; the transformer's
``guidance_embeds`` says dev (a guidance input) or schnell (none), and ``in_channels`` 384 says Fill (64 latent
features + 320 of masked image and mask); a VAE with 16 latent channels is FLUX's (SD's have 4).
"""

from __future__ import annotations

from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType, ModelVariantType
from invoke_sdk.models.probing import ModelOnDisk, Recognised

__all__ = ["FLUX_VAE_LATENT_CHANNELS", "CLIPEmbedFolderProber", "FluxPipelineProber", "FluxVAEFolderProber",
           "T5EncoderFolderProber"]

FLUX_PIPELINES = {"FluxPipeline", "FluxFillPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline"}
FLUX_VAE_LATENT_CHANNELS = 16
_FILL_IN_CHANNELS = 384
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json", "vocab.json")


def _has_tokenizer(model: ModelOnDisk, folder: str) -> bool:
    prefix = f"{folder}/" if folder else ""
    return any(model.has(prefix + name) for name in _TOKENIZER_FILES)


def _architectures(config: dict[str, Any] | None) -> set[str]:
    if config is None:
        return set()
    names = config.get("architectures") or []
    return {str(n) for n in names} if isinstance(names, list) else set()


class FluxPipelineProber:
    """A diffusers FLUX pipeline folder: dev, schnell or Fill, from the transformer's config."""

    name = "flux.main.diffusers"
    order = 55
    recognises = (Recognised(ModelType.Main, ModelFormat.Diffusers, (BaseModelType.Flux,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        index = model.json("model_index.json")
        if index is None or index.get("_class_name") not in FLUX_PIPELINES:
            return None
        transformer = model.json("transformer/config.json")
        if transformer is None or transformer.get("_class_name") != "FluxTransformer2DModel":
            return None
        if transformer.get("in_channels") == _FILL_IN_CHANNELS:
            variant = ModelVariantType.FluxDevFill
        elif transformer.get("guidance_embeds"):
            variant = ModelVariantType.FluxDev
        else:
            variant = ModelVariantType.FluxSchnell
        return {"type": ModelType.Main, "format": ModelFormat.Diffusers, "base": BaseModelType.Flux,
                "variant": variant}


class T5EncoderFolderProber:
    """A transformers T5 encoder with its tokenizer: the folder itself, or InvokeAI's text_encoder_2 + tokenizer_2."""

    name = "flux.t5_encoder.diffusers"
    order = 42
    recognises = (Recognised(ModelType.T5Encoder, ModelFormat.Diffusers, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.has("model_index.json"):
            return None  # a whole pipeline, whose T5 is one part
        for encoder, tokenizer in (("", ""), ("text_encoder_2", "tokenizer_2")):
            config = model.json(f"{encoder}/config.json" if encoder else "config.json")
            is_t5 = config is not None and config.get("model_type") == "t5" and (
                _architectures(config) & {"T5EncoderModel", "T5ForConditionalGeneration"})
            if is_t5 and _has_tokenizer(model, tokenizer):
                return {"type": ModelType.T5Encoder, "format": ModelFormat.Diffusers, "base": BaseModelType.Any}
        return None


class CLIPEmbedFolderProber:
    """A CLIP text encoder (``CLIPTextModel``) with its tokenizer: the folder itself, or text_encoder + tokenizer."""

    name = "flux.clip_embed.diffusers"
    order = 42
    recognises = (Recognised(ModelType.CLIPEmbed, ModelFormat.Diffusers, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.has("model_index.json"):
            return None
        for encoder, tokenizer in (("", ""), ("text_encoder", "tokenizer")):
            config = model.json(f"{encoder}/config.json" if encoder else "config.json")
            is_clip_text = config is not None and (
                "CLIPTextModel" in _architectures(config) or config.get("model_type") == "clip_text_model")
            if is_clip_text and _has_tokenizer(model, tokenizer):
                return {"type": ModelType.CLIPEmbed, "format": ModelFormat.Diffusers, "base": BaseModelType.Any}
        return None


class FluxVAEFolderProber:
    """A standalone diffusers ``AutoencoderKL`` folder with 16 latent channels: FLUX's VAE."""

    name = "flux.vae.diffusers"
    order = 48
    recognises = (Recognised(ModelType.VAE, ModelFormat.Diffusers, (BaseModelType.Flux,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        config = model.json("config.json")
        if config is None or config.get("_class_name") != "AutoencoderKL":
            return None
        if config.get("latent_channels") != FLUX_VAE_LATENT_CHANNELS:
            return None
        return {"type": ModelType.VAE, "format": ModelFormat.Diffusers, "base": BaseModelType.Flux}
