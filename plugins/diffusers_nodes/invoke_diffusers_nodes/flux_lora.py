"""FLUX.1 LoRAs in every common key layout, converted when loaded to PEFT names on diffusers' modules.

The layouts: kohya / sd-scripts (``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight``), diffusers and
PEFT (``transformer.transformer_blocks.0.attn.to_q.lora_A.weight``), XLabs
(``double_blocks.0.processor.qkv_lora1.down.weight``) and BFL / ComfyUI
(``diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight``). The result patches the transformer
through ``patched_with_loras(model, "transformer", ...)``, the CLIP-L encoder through ``"text_encoder"``
(its keys, kohya ``lora_te1_*`` or dotted, renamed onto the installed ``CLIPTextModel``'s module names) and the T5
encoder through ``"text_encoder_2"`` (kohya ``lora_te2_*``, as InvokeAI reads them; sd-scripts' ``lora_te3_*``).

diffusers' own converters assume FLUX.1's full size (19 + 38 blocks of width 3072) and fold alpha into
the factors; this one reads every size from the factors and keeps alpha, so a fused layer splits exactly:
the down factor goes to each part and the up factor's rows divide as the layer's outputs do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from invoke_diffusers_nodes.flux_bfl_names import bfl_module, split_sizes
from invoke_diffusers_nodes.flux_file_loaders import clip_text_prefix

__all__ = ["convert_flux_lora"]

logger = logging.getLogger("invoke_diffusers_nodes.flux_lora")

# Already diffusers module names: the patcher reads them as they are.
_KEPT = ("transformer.", "lora_transformer_")
# CLIP-L's: kohya (underscored), PEFT and ComfyUI (dotted); renamed onto the installed CLIPTextModel's modules.
_CLIP_KOHYA = re.compile(r"^lora_te1?_text_model_encoder_layers_(\d+)_(self_attn_[qkvout]+_proj|mlp_fc[12])\."
                         r"(lora_down\.weight|lora_up\.weight|alpha)$")
_CLIP_DOTTED = ("text_encoder.", "text_encoders.clip_l.transformer.")
# T5's, kohya-named on T5EncoderModel's modules (encoder_block_0_layer_0_SelfAttention_q): kept under lora_te2_,
# the prefix the patcher reads for text_encoder_2 (InvokeAI's); sd-scripts' FLUX trainer writes lora_te3_.
_T5, _T5_SD_SCRIPTS = "lora_te2_", "lora_te3_"
_KOHYA = re.compile(r"^lora_unet_(\w+?)\.(lora_down\.weight|lora_up\.weight|alpha)$")
_BFL = re.compile(r"^(?:model\.)?(?:diffusion_model\.)?((?:double_blocks|single_blocks|img_in|txt_in|time_in|vector_in|"
                  r"guidance_in|final_layer)[\w.]*?)\.(lora_A\.weight|lora_B\.weight|lora_down\.weight|"
                  r"lora_up\.weight|alpha)$")
_XLABS = re.compile(r"^(?:diffusion_model\.)?(double|single)_blocks\.(\d+)\.processor\.(qkv|proj)_lora(\d?)\."
                    r"(down|up)\.weight$")
_XLABS_PARTS = {("double", "qkv", "1"): "img_attn_qkv", ("double", "proj", "1"): "img_attn_proj",
                ("double", "qkv", "2"): "txt_attn_qkv", ("double", "proj", "2"): "txt_attn_proj",
                ("single", "qkv", ""): "linear1_qkv", ("single", "proj", ""): "linear2"}
_SLOTS = {"lora_down.weight": "down", "lora_A.weight": "down", "down": "down",
          "lora_up.weight": "up", "lora_B.weight": "up", "up": "up", "alpha": "alpha"}


def _bfl_factor(key: str) -> tuple[str, str] | None:
    """(BFL module name, underscored; ``down``/``up``/``alpha``) of a BFL-named LoRA key."""
    if (found := _KOHYA.match(key)) is not None:
        return found.group(1), _SLOTS[found.group(2)]
    if (found := _XLABS.match(key)) is not None:
        kind, index, what, stream, slot = found.groups()
        part = _XLABS_PARTS.get((kind, what, stream))
        return (f"{kind}_blocks_{index}_{part}", slot) if part else None
    if (found := _BFL.match(key)) is not None:
        return found.group(1).replace(".", "_"), _SLOTS[found.group(2)]
    return None


def _clip_key(key: str) -> str | None:
    """A CLIP-L LoRA key as ``text_encoder.<module>.lora_A/lora_B.weight`` or ``.alpha``; None if not CLIP's."""
    if (found := _CLIP_KOHYA.match(key)) is not None:
        index, part, slot = found.groups()
        module = f"encoder.layers.{index}." + part.replace("self_attn_", "self_attn.").replace("mlp_", "mlp.")
        suffix = {"down": "lora_A.weight", "up": "lora_B.weight", "alpha": "alpha"}[_SLOTS[slot]]
        return f"text_encoder.{clip_text_prefix()}{module}.{suffix}"
    prefix = next((p for p in _CLIP_DOTTED if key.startswith(p)), None)
    if prefix is None:
        return None
    rest = key[len(prefix):].removeprefix("text_model.")
    rest = rest.replace(".lora_down.weight", ".lora_A.weight").replace(".lora_up.weight", ".lora_B.weight")
    return f"text_encoder.{clip_text_prefix()}{rest}"


def convert_flux_lora(state_dict: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A FLUX.1 LoRA in PEFT names (``transformer.<module>.lora_A/lora_B.weight``, ``.alpha``) plus its CLIP and
    T5 keys.

    A ``ValueError`` when nothing in it patches FLUX.1: a LoRA made for another base.
    """
    import torch

    out: dict[str, Any] = {}
    layers: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    for key, tensor in state_dict.items():
        if key.startswith((*_KEPT, _T5)):
            out[key] = tensor
        elif (clip := _clip_key(key)) is not None:
            out[clip] = tensor
        elif key.startswith(_T5_SD_SCRIPTS):
            out[_T5 + key.removeprefix(_T5_SD_SCRIPTS)] = tensor
        elif (found := _bfl_factor(key)) is not None:
            layers.setdefault(found[0], {})[found[1]] = tensor
        else:
            unknown.append(key)
    for module, parts in layers.items():
        entry = bfl_module(module)
        if entry is None or "down" not in parts or "up" not in parts:
            unknown.append(module)
            continue
        down, up = parts["down"], parts["up"]
        if entry.swap_halves:
            shift, scale = up.chunk(2, dim=0)
            up = torch.cat([scale, shift], dim=0)
        pieces = torch.split(up, split_sizes(entry, up.shape[0], down.shape[1]), dim=0)
        for target, piece in zip(entry.targets, pieces, strict=True):
            out[f"transformer.{target}.lora_A.weight"] = down
            out[f"transformer.{target}.lora_B.weight"] = piece.contiguous()
            if "alpha" in parts:
                out[f"transformer.{target}.alpha"] = parts["alpha"]
    # T5 keys alone prove nothing: an SDXL LoRA's second CLIP is lora_te2_ too.
    if not any(k.startswith(("transformer.", "lora_transformer_")) for k in out) and unknown:
        raise ValueError(
            f"LoRA {name} has no FLUX.1 layers (first key: {unknown[0]}): is it made for another base model? "
            f"Install it with the base it was trained for"
        )
    if unknown:
        logger.warning("LoRA %s: %d keys that patch no FLUX.1 layer were skipped (first: %s)", name, len(unknown),
                       unknown[0])
    return out
