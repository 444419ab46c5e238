"""ControlNets and T2I adapters, single files and diffusers folders."""

from __future__ import annotations

from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised

from invoke_sd_probers.architecture import base_from_context_dim, context_dim

__all__ = [
    "ControlNetCheckpointProber",
    "ControlNetDiffusersProber",
    "T2IAdapterCheckpointProber",
    "T2IAdapterDiffusersProber",
]

_BASES = (BaseModelType.StableDiffusion1, BaseModelType.StableDiffusion2, BaseModelType.StableDiffusionXL)
_T2I_BASES = (BaseModelType.StableDiffusion1, BaseModelType.StableDiffusionXL)
_HINT_KEYS = ("control_model.input_hint_block.0.weight", "input_hint_block.0.weight")
_DIFFUSERS_HINT = "controlnet_cond_embedding.conv_in.weight"
_T2I_BASE_BY_UNSHUFFLED = {
    192: BaseModelType.StableDiffusion1, 64: BaseModelType.StableDiffusion1,
    768: BaseModelType.StableDiffusionXL, 256: BaseModelType.StableDiffusionXL,
}


class ControlNetCheckpointProber:
    """Original (``control_model.*``) or diffusers key names in one file; base from cross-attention width."""

    name = "sd.controlnet.checkpoint"
    order = 30
    recognises = (Recognised(ModelType.ControlNet, ModelFormat.Checkpoint, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        if not any(k in model.tensors for k in (*_HINT_KEYS, _DIFFUSERS_HINT)):
            return None
        base = base_from_context_dim(context_dim(model.tensors, ["attn2.to_k.weight"]))
        if base is None:
            return None
        return {"type": ModelType.ControlNet, "format": ModelFormat.Checkpoint, "base": base}


class ControlNetDiffusersProber:
    name = "sd.controlnet.diffusers"
    order = 30
    recognises = (Recognised(ModelType.ControlNet, ModelFormat.Diffusers, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        config = model.json("config.json")
        if config is None or config.get("_class_name") != "ControlNetModel":
            return None
        dim = config.get("cross_attention_dim")
        base = base_from_context_dim(dim if isinstance(dim, int) else None)
        if base is None:
            return None
        return {"type": ModelType.ControlNet, "format": ModelFormat.Diffusers, "base": base}


class T2IAdapterDiffusersProber:
    name = "sd.t2i_adapter.diffusers"
    order = 35
    recognises = (Recognised(ModelType.T2IAdapter, ModelFormat.Diffusers, _T2I_BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        config = model.json("config.json")
        if config is None or config.get("_class_name") != "T2IAdapter":
            return None
        adapter_type = str(config.get("adapter_type", ""))
        base = BaseModelType.StableDiffusionXL if adapter_type.endswith("_xl") else BaseModelType.StableDiffusion1
        return {"type": ModelType.T2IAdapter, "format": ModelFormat.Diffusers, "base": base}


class T2IAdapterCheckpointProber:
    """One file with the adapter's ``conv_in`` and ``body.*`` keys; the base follows from the pixel-unshuffle
    width of ``conv_in`` (3 x 8 x 8 = 192 for SD 1.x, 3 x 16 x 16 = 768 for SDXL; the one-channel canny and
    sketch adapters have 64 and 256)."""

    name = "sd.t2i_adapter.checkpoint"
    order = 35
    recognises = (Recognised(ModelType.T2IAdapter, ModelFormat.Checkpoint, _T2I_BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        for prefix in ("adapter.", ""):
            shape = model.shape(f"{prefix}conv_in.weight")
            if shape is not None and model.any_key(f"{prefix}body.") and len(shape) == 4:
                base = _T2I_BASE_BY_UNSHUFFLED.get(shape[1])
                if base is not None:
                    return {"type": ModelType.T2IAdapter, "format": ModelFormat.Checkpoint, "base": base}
        return None
