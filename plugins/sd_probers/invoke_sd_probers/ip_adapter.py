"""IP adapters (single file, or InvokeAI's folder) and the CLIP vision encoders they need."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised, TensorInfo

from invoke_sd_probers.architecture import base_from_context_dim, context_dim

__all__ = ["CLIPVisionProber", "IPAdapterCheckpointProber", "IPAdapterFolderProber", "ip_adapter_base"]

_BASES = (BaseModelType.StableDiffusion1, BaseModelType.StableDiffusion2, BaseModelType.StableDiffusionXL)


def ip_adapter_base(tensors: Mapping[str, TensorInfo]) -> BaseModelType | None:
    """The base from the image key projection's input width (the UNet's context dim)."""
    if not (any(k.startswith("image_proj.") for k in tensors) and any(k.startswith("ip_adapter.") for k in tensors)):
        return None
    return base_from_context_dim(context_dim(tensors, ["to_k_ip.weight"], prefix="ip_adapter."))


class IPAdapterCheckpointProber:
    name = "sd.ip_adapter.checkpoint"
    order = 40
    recognises = (Recognised(ModelType.IPAdapter, ModelFormat.Checkpoint, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        base = ip_adapter_base(model.tensors)
        if base is None:
            return None
        return {"type": ModelType.IPAdapter, "format": ModelFormat.Checkpoint, "base": base}


class IPAdapterFolderProber:
    """InvokeAI's layout: ``ip_adapter.safetensors`` (or ``.bin``) and ``image_encoder.txt`` naming the encoder."""

    name = "sd.ip_adapter.invokeai"
    order = 40
    recognises = (Recognised(ModelType.IPAdapter, ModelFormat.InvokeAI, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        for file in ("ip_adapter.safetensors", "ip_adapter.bin"):
            if model.has(file):
                base = ip_adapter_base(model.header_of(Path(model.path, file))[0])
                if base is None:
                    return None
                encoder = Path(model.path, "image_encoder.txt")
                encoder_id = encoder.read_text(encoding="utf-8").strip() if encoder.is_file() else None
                return {
                    "type": ModelType.IPAdapter,
                    "format": ModelFormat.InvokeAI,
                    "base": base,
                    "image_encoder_model_id": encoder_id,
                }
        return None


class CLIPVisionProber:
    """A transformers CLIP vision encoder folder (config.json names the architecture)."""

    name = "sd.clip_vision.diffusers"
    order = 45
    recognises = (Recognised(ModelType.CLIPVision, ModelFormat.Diffusers, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        config = model.json("config.json")
        if config is None:
            return None
        architectures = config.get("architectures") or []
        if "CLIPVisionModelWithProjection" in architectures or config.get("model_type") == "clip_vision_model":
            return {"type": ModelType.CLIPVision, "format": ModelFormat.Diffusers, "base": BaseModelType.Any}
        return None
