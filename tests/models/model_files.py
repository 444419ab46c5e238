"""Tiny real model files: the key layouts and the tensor shapes that probing reads, nothing more."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

__all__ = [
    "CONTEXT_DIMS",
    "write_clip_vision",
    "write_controlnet",
    "write_diffusers_main",
    "write_embedding",
    "write_embedding_folder",
    "write_ip_adapter",
    "write_lora_diffusers_folder",
    "write_lora_kohya",
    "write_lora_peft",
    "write_main_checkpoint",
    "write_t2i_checkpoint",
    "write_t2i_folder",
    "write_vae",
]

CONTEXT_DIMS = {"sd-1": 768, "sd-2": 1024, "sdxl": 2048, "sdxl-refiner": 1280}


def _save(path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros(s, dtype=np.float16) for k, s in shapes.items()}, str(path), metadata=metadata)
    return path


def write_main_checkpoint(
    path: Path, base: str, in_channels: int = 4, metadata: dict[str, str] | None = None, pad_bytes: int = 0
) -> Path:
    """``pad_bytes`` adds a tensor of about that size (probing ignores it) for tests that need a bigger file."""
    block = "input_blocks.4.1" if base.startswith("sdxl") else "input_blocks.1.1"
    shapes: dict[str, tuple[int, ...]] = {
        "model.diffusion_model.input_blocks.0.0.weight": (8, in_channels, 3, 3),
        f"model.diffusion_model.{block}.transformer_blocks.0.attn2.to_k.weight": (8, CONTEXT_DIMS[base]),
        "first_stage_model.encoder.conv_in.weight": (8, 3, 3, 3),
        "first_stage_model.decoder.conv_in.weight": (8, 4, 3, 3),
    }
    if pad_bytes:
        shapes["model.diffusion_model.out.2.weight"] = (pad_bytes // 2,)
    return _save(path, shapes, metadata)


def write_diffusers_main(folder: Path, base: str, prediction: str = "epsilon", in_channels: int = 4) -> Path:
    folder.mkdir(parents=True)
    pipeline = "StableDiffusionXLPipeline" if base.startswith("sdxl") else "StableDiffusionPipeline"
    (folder / "model_index.json").write_text(json.dumps({"_class_name": pipeline}))
    (folder / "unet").mkdir()
    (folder / "unet/config.json").write_text(
        json.dumps(
            {
                "_class_name": "UNet2DConditionModel",
                "cross_attention_dim": CONTEXT_DIMS[base],
                "in_channels": in_channels,
            }
        )
    )
    _save(folder / "unet/diffusion_pytorch_model.safetensors", {"conv_in.weight": (8, in_channels, 3, 3)})
    (folder / "scheduler").mkdir()
    (folder / "scheduler/scheduler_config.json").write_text(json.dumps({"prediction_type": prediction}))
    return folder


def write_vae(path: Path) -> Path:
    return _save(path, {"encoder.conv_in.weight": (8, 3, 3, 3), "decoder.conv_in.weight": (8, 4, 3, 3)})


def write_lora_kohya(path: Path, base: str) -> Path:
    shapes = {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
            4,
            CONTEXT_DIMS[base],
        ),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (320, 4),
    }
    if base == "sdxl":
        shapes["lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = (4, 1280)
    return _save(path, shapes)


def write_lora_peft(path: Path, base: str) -> Path:
    return _save(
        path,
        {
            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (4, CONTEXT_DIMS[base]),
            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": (640, 4),
        },
    )


def write_lora_diffusers_folder(folder: Path, base: str) -> Path:
    """What diffusers' ``save_lora_weights`` writes: one folder with ``pytorch_lora_weights.safetensors``."""
    shapes = {
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora.down.weight": (4, CONTEXT_DIMS[base]),
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora.up.weight": (640, 4),
    }
    if base == "sdxl":
        shapes["text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora.down.weight"] = (4, 1280)
    _save(folder / "pytorch_lora_weights.safetensors", shapes)
    return folder


def write_embedding_folder(folder: Path, base: str) -> Path:
    """A diffusers textual-inversion folder: ``learned_embeds.safetensors`` holding ``{"<token>": [dim]}``."""
    _save(folder / "learned_embeds.safetensors", {"<tok>": (CONTEXT_DIMS[base],)})
    return folder


def write_embedding(path: Path, base: str) -> Path:
    if base == "sdxl":
        return _save(path, {"clip_l": (2, 768), "clip_g": (2, 1280)})
    return _save(path, {"emb_params": (2, CONTEXT_DIMS[base])})


def write_controlnet(path: Path, base: str) -> Path:
    return _save(
        path,
        {
            "control_model.input_hint_block.0.weight": (16, 3, 3, 3),
            "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (8, CONTEXT_DIMS[base]),
        },
    )


def write_t2i_folder(folder: Path, adapter_type: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "T2IAdapter", "adapter_type": adapter_type}))
    _save(folder / "diffusion_pytorch_model.safetensors", {"adapter.conv_in.weight": (8, 192, 3, 3)})
    return folder


def write_t2i_checkpoint(path: Path, base: str, prefix: str = "adapter.") -> Path:
    """A single-file T2I adapter; ``conv_in`` takes the pixel-unshuffled image (3 x 8 x 8 for SD 1.x, 3 x 16 x 16
    for SDXL). Original TencentARC files have no ``adapter.`` prefix."""
    return _save(
        path,
        {
            f"{prefix}conv_in.weight": (8, 192 if base == "sd-1" else 768, 3, 3),
            f"{prefix}body.0.resnets.0.block1.weight": (8, 8, 3, 3),
        },
    )


def write_ip_adapter(path: Path, base: str) -> Path:
    return _save(
        path,
        {
            "image_proj.proj.weight": (8, 1024),
            "ip_adapter.1.to_k_ip.weight": (8, CONTEXT_DIMS[base]),
            "ip_adapter.1.to_v_ip.weight": (8, CONTEXT_DIMS[base]),
        },
    )


def write_clip_vision(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["CLIPVisionModelWithProjection"]}))
    _save(folder / "model.safetensors", {"vision_model.embeddings.patch_embedding.weight": (8, 3, 14, 14)})
    return folder
