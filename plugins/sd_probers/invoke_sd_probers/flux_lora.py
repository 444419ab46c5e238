"""FLUX.1 LoRAs in their four common layouts, told from SD LoRAs by the FLUX module names they patch.

* kohya / sd-scripts: ``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight`` (``lora_te1_`` for CLIP-L)
* diffusers / PEFT: ``transformer.transformer_blocks.0.attn.to_q.lora_A.weight``
* XLabs: ``double_blocks.0.processor.qkv_lora1.down.weight``
* BFL / ComfyUI: ``diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight``
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised

__all__ = ["FluxLoRADiffusersProber", "FluxLoRAFileProber", "flux_lora_layout"]

_LAYOUTS = (
    ("kohya", re.compile(r"^lora_unet_(double|single)_blocks_\d+_")),
    ("peft", re.compile(r"^transformer\.(single_)?transformer_blocks\.\d+\..*\.lora_[AB]\.")),
    ("kohya", re.compile(r"^lora_transformer_(single_)?transformer_blocks_\d+_")),
    ("diffusers", re.compile(r"^(diffusion_model\.)?(double|single)_blocks\.\d+\.processor\.")),
    ("peft", re.compile(r"^(model\.)?(diffusion_model\.)?(double|single)_blocks\.\d+\..*\.lora_[AB]\.")),
)


def flux_lora_layout(keys: Iterable[str]) -> str | None:
    """The ``layout`` of a FLUX.1 LoRA's keys (kohya, peft, diffusers for XLabs), or None when not FLUX's."""
    for key in keys:
        for layout, pattern in _LAYOUTS:
            if pattern.match(key):
                return layout
    return None


class FluxLoRAFileProber:
    name = "flux.lora.file"
    order = 5
    recognises = (Recognised(ModelType.LoRA, ModelFormat.LyCORIS, (BaseModelType.Flux,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        layout = flux_lora_layout(model.tensors)
        if layout is None:
            return None
        return {"type": ModelType.LoRA, "format": ModelFormat.LyCORIS, "base": BaseModelType.Flux, "layout": layout}


class FluxLoRADiffusersProber:
    """A folder holding ``pytorch_lora_weights.safetensors`` with FLUX.1 keys (diffusers' ``save_lora_weights``)."""

    name = "flux.lora.diffusers"
    order = 5
    recognises = (Recognised(ModelType.LoRA, ModelFormat.Diffusers, (BaseModelType.Flux,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if not model.has("pytorch_lora_weights.safetensors"):
            return None
        tensors, _ = model.header_of(Path(model.path, "pytorch_lora_weights.safetensors"))
        if flux_lora_layout(tensors) is None:
            return None
        return {"type": ModelType.LoRA, "format": ModelFormat.Diffusers, "base": BaseModelType.Flux}
