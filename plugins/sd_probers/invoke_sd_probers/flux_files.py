"""FLUX.1 single files: the transformer (BFL, ComfyUI and diffusers key names), the VAE, CLIP-L and T5-XXL.

What tells them apart, read from the header only:

* the BFL transformer (``flux1-dev.safetensors``) has ``double_blocks.N.img_attn.qkv.weight`` and
  ``single_blocks.N.linear1.weight``, under ComfyUI's ``model.diffusion_model.`` prefix in its bundles;
  the diffusers-named one has ``transformer_blocks.N.attn.to_q.weight`` and ``single_transformer_blocks``
  (SD3's transformer has no single blocks). ``guidance_in`` / ``guidance_embedder`` present: dev (guidance
  distilled), absent: schnell; an image input of 384 features (64 latent + 320 masked image and mask): Fill.
* the VAE (``ae.safetensors``) has the LDM key names with 16 latent channels: ``decoder.conv_in`` reads 16
  channels and ``encoder.conv_out`` writes 32 (mean and log-variance); SD's VAE has 4 and 8.
* CLIP-L (``clip_l.safetensors``): ``text_model.encoder.layers...`` and no vision tower.
* T5-XXL's encoder (``t5xxl_fp16.safetensors``): ``encoder.block.N.layer...`` and ``shared.weight``.

The text encoders are recorded with base ``any``, as InvokeAI records them: one CLIP-L or T5 serves every
model that reads it.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType, ModelVariantType
from invoke_sdk.models.probing import ModelOnDisk, Recognised

__all__ = [
    "FLUX_LATENT_CHANNELS",
    "CLIPEmbedCheckpointProber",
    "FluxTransformerCheckpointProber",
    "FluxVAECheckpointProber",
    "T5EncoderCheckpointProber",
    "flux_latent_channels",
    "flux_variant",
]

FLUX_LATENT_CHANNELS = 16
_FILL_IN_FEATURES = 384
_TRANSFORMER_PREFIXES = ("", "model.diffusion_model.", "diffusion_model.")
_VAE_PREFIXES = ("", "first_stage_model.", "vae.")


def flux_latent_channels(model: ModelOnDisk, prefix: str = "") -> int | None:
    """The latent channels a VAE file's decoder reads (``decoder.conv_in``), or None without one."""
    shape = model.shape(f"{prefix}decoder.conv_in.weight")
    return shape[1] if shape is not None and len(shape) == 4 else None


def flux_variant(image_in_features: int | None, guidance: bool) -> ModelVariantType:
    """Fill when the image input takes 384 features, else dev with a guidance input and schnell without: one rule
    for a file's tensor shapes and a folder's transformer config."""
    if image_in_features == _FILL_IN_FEATURES:
        return ModelVariantType.FluxDevFill
    return ModelVariantType.FluxDev if guidance else ModelVariantType.FluxSchnell


def _variant(model: ModelOnDisk, image_in: str, guidance: str) -> ModelVariantType:
    shape = model.shape(image_in) or ()
    return flux_variant(shape[1] if len(shape) == 2 else None, guidance in model.tensors)


class FluxTransformerCheckpointProber:
    name = "flux.main.checkpoint"
    order = 40
    recognises = (Recognised(ModelType.Main, ModelFormat.Checkpoint, (BaseModelType.Flux,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        keys = model.tensors
        for prefix in _TRANSFORMER_PREFIXES:
            if f"{prefix}double_blocks.0.img_attn.qkv.weight" in keys and f"{prefix}single_blocks.0.linear1.weight" \
                    in keys:
                variant = _variant(model, f"{prefix}img_in.weight", f"{prefix}guidance_in.in_layer.weight")
                break
        else:
            if not ("transformer_blocks.0.attn.to_q.weight" in keys and "single_transformer_blocks.0.attn.to_q.weight"
                    in keys and "x_embedder.weight" in keys):
                return None
            variant = _variant(model, "x_embedder.weight", "time_text_embed.guidance_embedder.linear_1.weight")
        return {"type": ModelType.Main, "format": ModelFormat.Checkpoint, "base": BaseModelType.Flux,
                "variant": variant}


class FluxVAECheckpointProber:
    name = "flux.vae.checkpoint"
    order = 40
    recognises = (Recognised(ModelType.VAE, ModelFormat.Checkpoint, (BaseModelType.Flux,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        for prefix in _VAE_PREFIXES:
            if flux_latent_channels(model, prefix) != FLUX_LATENT_CHANNELS:
                continue
            moments = model.shape(f"{prefix}encoder.conv_out.weight")
            if moments is None or moments[0] != 2 * FLUX_LATENT_CHANNELS or model.any_key("model.diffusion_model."):
                return None
            return {"type": ModelType.VAE, "format": ModelFormat.Checkpoint, "base": BaseModelType.Flux}
        return None


class CLIPEmbedCheckpointProber:
    name = "flux.clip_embed.checkpoint"
    order = 40
    recognises = (Recognised(ModelType.CLIPEmbed, ModelFormat.Checkpoint, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder or "text_model.embeddings.token_embedding.weight" not in model.tensors:
            return None
        if not model.any_key("text_model.encoder.layers.") or model.any_key("vision_model."):
            return None
        return {"type": ModelType.CLIPEmbed, "format": ModelFormat.Checkpoint, "base": BaseModelType.Any}


class T5EncoderCheckpointProber:
    name = "flux.t5_encoder.checkpoint"
    order = 40
    recognises = (Recognised(ModelType.T5Encoder, ModelFormat.Checkpoint, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder or "shared.weight" not in model.tensors:
            return None
        if "encoder.block.0.layer.0.SelfAttention.q.weight" not in model.tensors:
            return None
        return {"type": ModelType.T5Encoder, "format": ModelFormat.Checkpoint, "base": BaseModelType.Any}
