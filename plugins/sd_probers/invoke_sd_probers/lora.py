"""LoRAs: kohya / LyCORIS key names (``lora_unet_*``) and diffusers / peft key names (``unet.*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised, TensorInfo

from invoke_sd_probers.architecture import base_from_context_dim, context_dim

__all__ = ["LoRADiffusersProber", "LoRAFileProber", "lora_fields"]

_BASES = (BaseModelType.StableDiffusion1, BaseModelType.StableDiffusion2, BaseModelType.StableDiffusionXL)
_KOHYA = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
_DIFFUSERS = ("unet.", "text_encoder.", "text_encoder_2.")
_DOWN_SUFFIXES = ("attn2_to_k.lora_down.weight", "attn2_to_k.lokr_w2", "attn2_to_k.hada_w1_b")
_PEFT_SUFFIXES = ("attn2.to_k.lora_A.weight",)
_OLD_DIFFUSERS_SUFFIXES = ("attn2.to_k.lora.down.weight", "attn2.processor.to_k_lora.down.weight")


def lora_fields(tensors: dict[str, TensorInfo] | Any) -> tuple[str, BaseModelType] | None:
    """(layout, base) of a LoRA state dict's keys, or None when it is not a LoRA."""
    keys = list(tensors)
    if any(k.startswith(_KOHYA) for k in keys):
        layout = "lycoris" if any((".hada_" in k or ".lokr_" in k) for k in keys) else "kohya"
        if any(k.startswith("lora_te2_") for k in keys):
            return layout, BaseModelType.StableDiffusionXL
        base = base_from_context_dim(context_dim(tensors, _DOWN_SUFFIXES, prefix="lora_unet_"))
        return (layout, base) if base is not None else None
    if any(k.startswith(_DIFFUSERS) and (".lora" in k or "_lora" in k) for k in keys):
        layout = "peft" if any(".lora_A." in k for k in keys) else "diffusers"
        if any(k.startswith("text_encoder_2.") for k in keys):
            return layout, BaseModelType.StableDiffusionXL
        base = base_from_context_dim(context_dim(tensors, _PEFT_SUFFIXES + _OLD_DIFFUSERS_SUFFIXES, prefix="unet."))
        return (layout, base) if base is not None else None
    return None


class LoRAFileProber:
    name = "sd.lora.file"
    order = 10
    recognises = (Recognised(ModelType.LoRA, ModelFormat.LyCORIS, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        found = lora_fields(model.tensors)
        if found is None:
            return None
        layout, base = found
        return {"type": ModelType.LoRA, "format": ModelFormat.LyCORIS, "base": base, "layout": layout}


class LoRADiffusersProber:
    """A folder holding ``pytorch_lora_weights.safetensors`` (what diffusers' ``save_lora_weights`` writes)."""

    name = "sd.lora.diffusers"
    order = 10
    recognises = (Recognised(ModelType.LoRA, ModelFormat.Diffusers, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        for file in ("pytorch_lora_weights.safetensors", "pytorch_lora_weights.bin"):
            if model.has(file):
                tensors, _ = model.header_of(Path(model.path, file))
                found = lora_fields(tensors)
                if found is not None:
                    return {"type": ModelType.LoRA, "format": ModelFormat.Diffusers, "base": found[1]}
        return None
