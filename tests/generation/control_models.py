"""Tiny ControlNets, T2I-Adapters, IP-Adapters and a CLIP vision encoder with random weights, saved as users have them.

Folders are what diffusers/transformers ``save_pretrained`` write. Single files use the published key layouts:
ControlNet in the original ``control_model.*`` names (``controlnet_to_ldm``), T2I-Adapter in TencentARC's flat
``body.<n>`` names, IP-Adapter as h94's ``image_proj.*`` / ``ip_adapter.<n>.to_k_ip`` file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ldm_checkpoint import unet_to_ldm

__all__ = [
    "build_clip_vision",
    "build_controlnet",
    "build_t2i_adapter",
    "controlnet_to_ldm",
    "t2i_adapter_to_original",
    "write_controlnet_checkpoint",
    "write_ip_adapter",
    "write_t2i_checkpoint",
]


_ZERO_INIT = ("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")


def build_controlnet(pipeline: Path, folder: Path, seed: int) -> Path:
    """A ControlNet shaped like the pipeline's UNet; its zero convolutions get random weights, or it does nothing."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(str(pipeline), subfolder="unet")
    controlnet = ControlNetModel.from_unet(unet)
    with torch.no_grad():
        for name, param in controlnet.named_parameters():
            if name.startswith(_ZERO_INIT):
                param.normal_(0, 0.3)
    controlnet.save_pretrained(str(folder), safe_serialization=True)
    return folder


def controlnet_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers ControlNet state dict in the original names (``control_model.*``), as lllyasviel's files have."""
    blocks = len(config["conditioning_embedding_out_channels"]) * 2 - 2
    shared: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for key, value in state.items():
        if m := re.fullmatch(r"controlnet_down_blocks\.(\d+)\.(.*)", key):
            out[f"zero_convs.{m[1]}.0.{m[2]}"] = value
        elif m := re.fullmatch(r"controlnet_mid_block\.(.*)", key):
            out[f"middle_block_out.0.{m[1]}"] = value
        elif m := re.fullmatch(r"controlnet_cond_embedding\.conv_in\.(.*)", key):
            out[f"input_hint_block.0.{m[1]}"] = value
        elif m := re.fullmatch(r"controlnet_cond_embedding\.blocks\.(\d+)\.(.*)", key):
            out[f"input_hint_block.{2 * (int(m[1]) + 1)}.{m[2]}"] = value
        elif m := re.fullmatch(r"controlnet_cond_embedding\.conv_out\.(.*)", key):
            out[f"input_hint_block.{2 * (blocks + 1)}.{m[1]}"] = value
        else:
            shared[key] = value
    out.update(unet_to_ldm(shared, {"layers_per_block": config["layers_per_block"], "up_block_types": []}))
    return {f"control_model.{k}": v for k, v in out.items()}


def write_controlnet_checkpoint(folder: Path, path: Path) -> Path:
    import json

    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    save_file({k: v.contiguous() for k, v in controlnet_to_ldm(state, config).items()}, str(path))
    return path


def build_t2i_adapter(folder: Path, seed: int) -> Path:
    """A full T2I-Adapter for the tiny UNets: widths (32, 64), two resnets per level.

    The tiny UNets' first block has no attention, so the UNet adds its adapter residual after that block's
    downsampler, at 1/16 of the image: the layout of SDXL's adapter (16x unshuffle, no downsampling in its
    first two levels), not SD 1.5's (whose UNet starts with an attention block).
    """
    import torch
    from diffusers import T2IAdapter

    torch.manual_seed(seed)
    adapter = T2IAdapter(in_channels=3, channels=[32, 64], num_res_blocks=2, downscale_factor=16,
                         adapter_type="full_adapter_xl")
    adapter.save_pretrained(str(folder), safe_serialization=True)
    return folder


def t2i_adapter_to_original(state: dict[str, Any], num_res_blocks: int) -> dict[str, Any]:
    """diffusers' ``adapter.body.<level>.resnets.<r>`` names as TencentARC's flat ``body.<level * n + r>``."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        key = key.removeprefix("adapter.")
        if m := re.fullmatch(r"body\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            out[f"body.{int(m[1]) * num_res_blocks + int(m[2])}.{m[3]}"] = value
        elif m := re.fullmatch(r"body\.(\d+)\.in_conv\.(.*)", key):
            out[f"body.{int(m[1]) * num_res_blocks}.in_conv.{m[2]}"] = value
        else:
            out[key] = value
    return out


def write_t2i_checkpoint(folder: Path, path: Path) -> Path:
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    save_file({k: v.contiguous() for k, v in t2i_adapter_to_original(state, 2).items()}, str(path))
    return path


def build_clip_vision(folder: Path, seed: int, projection_dim: int = 16) -> Path:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=projection_dim)
    CLIPVisionModelWithProjection(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def write_ip_adapter(pipeline: Path, path: Path, seed: int, *, embed_dim: int = 16, tokens: int = 4) -> Path:
    """An IP-Adapter for the pipeline's UNet: ``ip_adapter.<n>`` for every cross-attention processor ``n``."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(str(pipeline), subfolder="unet")
    context = int(unet.config.cross_attention_dim)
    tensors: dict[str, Any] = {
        "image_proj.proj.weight": torch.randn(tokens * context, embed_dim, generator=generator) * 0.3,
        "image_proj.proj.bias": torch.randn(tokens * context, generator=generator) * 0.3,
        "image_proj.norm.weight": torch.ones(context),
        "image_proj.norm.bias": torch.zeros(context),
    }
    modules = dict(unet.named_modules())
    for index, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            hidden = modules[name.removesuffix(".processor")].to_k.out_features
            for proj in ("to_k_ip", "to_v_ip"):
                tensors[f"ip_adapter.{index}.{proj}.weight"] = torch.randn(hidden, context, generator=generator)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
