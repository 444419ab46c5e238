"""Turn a (tiny) diffusers pipeline folder into one original-layout (LDM / SGM) ``.safetensors`` checkpoint.

The key names are the ones the original Stable Diffusion code writes and diffusers' ``from_single_file``
reads back (``src/diffusers/loaders/single_file_utils.py``): the UNet under ``model.diffusion_model.``, the
VAE under ``first_stage_model.``, and the text encoders as

- SD1: OpenAI CLIP in transformers naming under ``cond_stage_model.transformer.text_model.``;
- SD2: OpenCLIP naming (``resblocks``, fused ``in_proj``) under ``cond_stage_model.model.``;
- SDXL: CLIP under ``conditioner.embedders.0.transformer.text_model.`` and the second encoder in OpenCLIP
  naming, with its ``text_projection`` stored transposed, under ``conditioner.embedders.1.model.``.

Block indices are computed from the folder's own configs (``layers_per_block``, which blocks have attention),
so the tiny shapes convert the same way a full-size model does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["clip_to_ldm", "open_clip_to_ldm", "unet_to_ldm", "vae_to_ldm", "write_checkpoint"]

_UNET_TOP = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}
_UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "time_emb_proj.": "emb_layers.1.",
    "conv_shortcut.": "skip_connection.",
}


def _resnet(rest: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old):]
    raise KeyError(f"unexpected resnet key {rest!r}")


def unet_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers ``UNet2DConditionModel`` state dict in LDM names (without the ``model.diffusion_model.`` prefix)."""
    per = int(config["layers_per_block"]) + 1  # LDM input blocks per level: the resnets, then the downsampler
    up_has_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    out: dict[str, Any] = {}
    rules: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)",
         lambda m: f"input_blocks.{per * int(m[1]) + int(m[2]) + 1}.0.{_resnet(m[3], _UNET_RESNET)}"),
        (r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)",
         lambda m: f"input_blocks.{per * int(m[1]) + int(m[2]) + 1}.1.{m[3]}"),
        (r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)",
         lambda m: f"input_blocks.{per * (int(m[1]) + 1)}.0.op.{m[2]}"),
        (r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)",
         lambda m: f"output_blocks.{per * int(m[1]) + int(m[2])}.0.{_resnet(m[3], _UNET_RESNET)}"),
        (r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)",
         lambda m: f"output_blocks.{per * int(m[1]) + int(m[2])}.1.{m[3]}"),
        # The upsampler follows the last resnet (and its attention, where the level has one).
        (r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)",
         lambda m: f"output_blocks.{per * int(m[1]) + per - 1}.{2 if up_has_attention[int(m[1])] else 1}.{m[2]}"),
        (r"mid_block\.attentions\.0\.(.*)", lambda m: f"middle_block.1.{m[1]}"),
        (r"mid_block\.resnets\.(\d+)\.(.*)", lambda m: f"middle_block.{2 * int(m[1])}.{_resnet(m[2], _UNET_RESNET)}"),
    ]
    compiled = [(re.compile(pattern), build) for pattern, build in rules]
    for key, value in state.items():
        for old, new in _UNET_TOP.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            for pattern, build in compiled:
                match = pattern.fullmatch(key)
                if match:
                    out[build(match)] = value
                    break
            else:
                raise KeyError(f"no LDM name for UNet key {key!r}")
    return out


_VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def vae_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers ``AutoencoderKL`` state dict in LDM names (without ``first_stage_model.``)."""
    levels = len(config["up_block_types"])
    out: dict[str, Any] = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out.", "norm_out.")
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", key):
            new = f"encoder.down.{m[1]}.downsample.{m[2]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
            new = f"decoder.up.{levels - 1 - int(m[1])}.upsample.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
            rest = m[2]
            for old, ldm in _VAE_ATTENTION.items():
                if rest.startswith(old):
                    rest = ldm + rest[len(old):]
                    break
            new = f"{m[1]}.mid.attn_1.{rest}"
            if value.ndim == 2:
                value = value[:, :, None, None]  # the original attention projections are 1x1 convolutions
        new = new.replace(".conv_shortcut.", ".nin_shortcut.")
        out[new] = value
    return out


def _text_keys(state: dict[str, Any]) -> dict[str, Any]:
    # transformers 5 flattens CLIPTextModel (no ``text_model.``); CLIPTextModelWithProjection keeps it.
    return {key.removeprefix("text_model."): value for key, value in state.items()}


def clip_to_ldm(state: dict[str, Any]) -> dict[str, Any]:
    """A transformers ``CLIPTextModel`` state dict as the original code keeps it (below ``text_model.``)."""
    return {f"text_model.{key}": value for key, value in _text_keys(state).items() if not key.endswith("position_ids")}


def open_clip_to_ldm(state: dict[str, Any]) -> dict[str, Any]:
    """A transformers CLIP text encoder state dict in OpenCLIP names (``resblocks``, fused q/k/v ``in_proj``)."""
    import torch

    flat = _text_keys(state)
    out: dict[str, Any] = {}
    fused: dict[tuple[str, str], dict[str, Any]] = {}
    for key, value in flat.items():
        if key.endswith("position_ids"):
            continue
        if key == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key == "embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif key.startswith("final_layer_norm."):
            out["ln_final." + key.split(".")[-1]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            fused.setdefault((m[1], m[3]), {})[m[2]] = value
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.*)", key):
            rest = (m[2].replace("layer_norm1.", "ln_1.").replace("layer_norm2.", "ln_2.")
                    .replace("self_attn.", "attn.").replace("mlp.fc1.", "mlp.c_fc.").replace("mlp.fc2.", "mlp.c_proj."))
            out[f"transformer.resblocks.{m[1]}.{rest}"] = value
        else:
            raise KeyError(f"no OpenCLIP name for text encoder key {key!r}")
    for (layer, kind), parts in fused.items():
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def _load(folder: Path, part: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors.torch import load_file

    [weights] = sorted((folder / part).glob("*.safetensors"))
    return load_file(str(weights)), json.loads((folder / part / "config.json").read_text())


def write_checkpoint(folder: Path, path: Path) -> Path:
    """Write the pipeline in ``folder`` (SD1, SD2 or SDXL, told apart by its text encoders) as one checkpoint."""
    from safetensors.torch import save_file

    unet, unet_config = _load(folder, "unet")
    vae, vae_config = _load(folder, "vae")
    text, _ = _load(folder, "text_encoder")
    tensors: dict[str, Any] = {}
    tensors.update({f"model.diffusion_model.{k}": v for k, v in unet_to_ldm(unet, unet_config).items()})
    tensors.update({f"first_stage_model.{k}": v for k, v in vae_to_ldm(vae, vae_config).items()})
    if (folder / "text_encoder_2").is_dir():
        text_2, _ = _load(folder, "text_encoder_2")
        tensors.update({f"conditioner.embedders.0.transformer.{k}": v for k, v in clip_to_ldm(text).items()})
        tensors.update({f"conditioner.embedders.1.model.{k}": v for k, v in open_clip_to_ldm(text_2).items()})
    elif unet_config.get("use_linear_projection"):  # SD2: OpenCLIP ViT-H, linear transformer projections
        tensors.update({f"cond_stage_model.model.{k}": v for k, v in open_clip_to_ldm(text).items()})
    else:
        tensors.update({f"cond_stage_model.transformer.{k}": v for k, v in clip_to_ldm(text).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path
