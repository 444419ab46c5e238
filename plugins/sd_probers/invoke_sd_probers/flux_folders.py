"""FLUX.1 in the diffusers/transformers folder layouts: pipelines, T5 and CLIP text-encoder folders, the 16-channel VAE.

What tells them apart is in the configs: ``model_index.json`` names the pipeline class; the transformer's
``guidance_embeds`` says dev (a guidance input) or schnell (none), and ``in_channels`` 384 says Fill (64 latent
features + 320 of masked image and mask); a VAE with 16 latent channels is FLUX's (SD's have 4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised

from invoke_sd_probers.flux_files import FLUX_LATENT_CHANNELS, flux_variant

__all__ = ["CLIPEmbedFolderProber", "FluxPipelineProber", "FluxVAEFolderProber", "T5EncoderFolderProber"]

FLUX_PIPELINES = {"FluxPipeline", "FluxFillPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline"}
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json", "vocab.json")


def _has_tokenizer(model: ModelOnDisk, folder: str) -> bool:
    prefix = f"{folder}/" if folder else ""
    return any(model.has(prefix + name) for name in _TOKENIZER_FILES)


def _text_encoder_folder(model: ModelOnDisk, parts: tuple[str, str], is_encoder: Callable[[dict[str, Any]], bool]
                         ) -> bool:
    """Whether ``model`` is a text encoder with its tokenizer: the folder itself, or its ``parts`` (encoder and
    tokenizer subfolders, as a pipeline names them); never a whole pipeline, whose encoders are parts of it."""
    if model.has("model_index.json"):
        return False
    for encoder, tokenizer in (("", ""), parts):
        config = model.json(f"{encoder}/config.json" if encoder else "config.json")
        if config is not None and is_encoder(config) and _has_tokenizer(model, tokenizer):
            return True
    return False


def _is_t5(config: dict[str, Any]) -> bool:
    return config.get("model_type") == "t5" and bool(
        _architectures(config) & {"T5EncoderModel", "T5ForConditionalGeneration"})


def _is_clip_text(config: dict[str, Any]) -> bool:
    return "CLIPTextModel" in _architectures(config) or config.get("model_type") == "clip_text_model"


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
        variant = flux_variant(transformer.get("in_channels"), bool(transformer.get("guidance_embeds")))
        return {"type": ModelType.Main, "format": ModelFormat.Diffusers, "base": BaseModelType.Flux,
                "variant": variant}


class T5EncoderFolderProber:
    """A transformers T5 encoder with its tokenizer: the folder itself, or InvokeAI's text_encoder_2 + tokenizer_2."""

    name = "flux.t5_encoder.diffusers"
    order = 42
    recognises = (Recognised(ModelType.T5Encoder, ModelFormat.Diffusers, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if not _text_encoder_folder(model, ("text_encoder_2", "tokenizer_2"), _is_t5):
            return None
        return {"type": ModelType.T5Encoder, "format": ModelFormat.Diffusers, "base": BaseModelType.Any}


class CLIPEmbedFolderProber:
    """A CLIP text encoder (``CLIPTextModel``) with its tokenizer: the folder itself, or text_encoder + tokenizer."""

    name = "flux.clip_embed.diffusers"
    order = 42
    recognises = (Recognised(ModelType.CLIPEmbed, ModelFormat.Diffusers, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if not _text_encoder_folder(model, ("text_encoder", "tokenizer"), _is_clip_text):
            return None
        return {"type": ModelType.CLIPEmbed, "format": ModelFormat.Diffusers, "base": BaseModelType.Any}


class FluxVAEFolderProber:
    """A standalone diffusers ``AutoencoderKL`` folder with 16 latent channels: FLUX's VAE."""

    name = "flux.vae.diffusers"
    order = 48
    recognises = (Recognised(ModelType.VAE, ModelFormat.Diffusers, (BaseModelType.Flux,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        config = model.json("config.json")
        if config is None or config.get("_class_name") != "AutoencoderKL":
            return None
        if config.get("latent_channels") != FLUX_LATENT_CHANNELS:
            return None
        return {"type": ModelType.VAE, "format": ModelFormat.Diffusers, "base": BaseModelType.Flux}
