"""Loaders for ControlNets, T2I-Adapters, IP-Adapters and the CLIP vision encoders IP-Adapters read images with.

Folders load with diffusers/transformers ``from_pretrained``. Single files are read here (safetensors directly,
pickles only through torch's ``weights_only`` loader) and converted from their published key layouts:

- ControlNet: the original ``control_model.*`` (or bare ``input_blocks.*``) names via diffusers' own converter, or
  diffusers names; the config from ``config_path`` (a folder with ``config.json``), else the standard SD 1.x / 2.x
  ControlNet config for the base (SDXL ControlNets come in several sizes: they need ``config_path``).
- T2I-Adapter: TencentARC's names (``conv_in``, ``body.<n>.block1`` ...) or diffusers' (``adapter.*``); the config
  follows from the tensor shapes (full adapters; light adapters need a diffusers folder).
- IP-Adapter: ``image_proj.*`` + ``ip_adapter.<n>.to_k_ip`` / ``to_v_ip`` (flat, or nested as in the ``.bin`` files).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from invoke_sdk.models.loading import ModelConfigLike, ModelLoader, config_field

from invoke_diffusers_nodes.torch_support import TorchLoader, torch_dtype

__all__ = [
    "CLIPVisionLoader",
    "ControlNetCheckpointLoader",
    "ControlNetDiffusersLoader",
    "IPAdapterLoader",
    "T2IAdapterCheckpointLoader",
    "T2IAdapterDiffusersLoader",
    "control_loaders",
    "read_state_dict",
    "t2i_adapter_config",
    "t2i_adapter_to_diffusers",
]

# The published SD 1.x / 2.x ControlNet configs (lllyasviel/control_v11*, thibaud/controlnet-sd21): diffusers'
# ControlNetModel defaults with the base's text width (and SD 2's head widths and linear projections).
_CONTROLNET_DEFAULTS: dict[str, dict[str, Any]] = {
    "sd-1": {"cross_attention_dim": 768},
    "sd-2": {"cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": True},
}


def read_state_dict(path: Path, what: str) -> dict[str, Any]:
    """The tensors of one file: safetensors directly; ``.bin``/``.pth``/``.pt``/``.ckpt`` with ``weights_only``."""
    if not path.is_file():
        raise ValueError(f"{what}: no file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    if path.suffix in (".bin", ".pth", ".pt", ".ckpt"):
        import torch

        # weights_only refuses anything but tensors and plain containers: no code from the file runs.
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
            loaded = loaded["state_dict"]
        if not isinstance(loaded, dict):
            raise ValueError(f"{what}: {path} does not hold a state dict")
        return dict(loaded)
    raise ValueError(f"{what}: {path.suffix or 'no suffix'} is not a weights file (.safetensors, .bin, .pth)")


def _config_json(config: ModelConfigLike, what: str) -> dict[str, Any] | None:
    config_dir = config_field(config, "config_path")
    if not config_dir:
        return None
    path = Path(config_dir)
    file = path / "config.json" if path.is_dir() else path
    if file.suffix != ".json" or not file.is_file():
        raise ValueError(f"{what} {config.key}: config_path {config_dir} is neither a config.json nor a folder "
                         f"holding one")
    loaded: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return loaded


def _base(config: ModelConfigLike) -> str:
    return str(getattr(config.base, "value", config.base))


class ControlNetDiffusersLoader(TorchLoader):
    """``controlnet/diffusers``: a ``ControlNetModel`` folder."""

    model_type = "controlnet"
    model_format = "diffusers"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from diffusers import ControlNetModel

        model = ControlNetModel.from_pretrained(str(config.path), torch_dtype=torch_dtype(dtype),
                                                local_files_only=True)
        return model.eval()


class ControlNetCheckpointLoader(TorchLoader):
    """``controlnet/checkpoint``: one file, original or diffusers key names."""

    model_type = "controlnet"
    model_format = "checkpoint"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from diffusers import ControlNetModel
        from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

        what = "ControlNet"
        model_config = _config_json(config, what)
        if model_config is None:
            model_config = _CONTROLNET_DEFAULTS.get(_base(config))
            if model_config is None:
                raise ValueError(f"single-file ControlNet {config.key} ({_base(config)}): set its config_path to "
                                 f"a folder with the ControlNet's config.json (SDXL ControlNets come in several "
                                 f"sizes)")
        state = read_state_dict(Path(config.path), f"{what} {config.key}")
        if not any(k in state for k in ("control_model.time_embed.0.weight", "time_embed.0.weight",
                                        "time_embedding.linear_1.weight")):
            raise ValueError(f"{what} {config.key}: {config.path} has neither original (control_model.*) nor "
                             f"diffusers ControlNet key names")
        model = ControlNetModel.from_config({k: v for k, v in model_config.items() if not k.startswith("_")})
        converted = convert_controlnet_checkpoint(state, dict(model.config))
        missing, unexpected = model.load_state_dict(converted, strict=False)
        if missing or unexpected:
            raise ValueError(f"{what} {config.key}: the file does not match its config "
                             f"({len(missing)} missing keys such as {missing[:3]}, {len(unexpected)} unexpected "
                             f"such as {unexpected[:3]}); check config_path")
        return model.to(torch_dtype(dtype)).eval()


class T2IAdapterDiffusersLoader(TorchLoader):
    """``t2i_adapter/diffusers``: a ``T2IAdapter`` folder."""

    model_type = "t2i_adapter"
    model_format = "diffusers"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from diffusers import T2IAdapter

        return T2IAdapter.from_pretrained(str(config.path), torch_dtype=torch_dtype(dtype),
                                          local_files_only=True).eval()


_ORIGINAL_BODY = re.compile(r"body\.(\d+)\.(.*)")


def t2i_adapter_to_diffusers(state: dict[str, Any], num_res_blocks: int) -> dict[str, Any]:
    """TencentARC's full-adapter names (``body`` a flat list of resnets) in diffusers' (per-level blocks)."""
    if any(k.startswith("adapter.") for k in state):
        return state
    out: dict[str, Any] = {}
    for key, value in state.items():
        match = _ORIGINAL_BODY.fullmatch(key)
        if match is None:
            out[f"adapter.{key}"] = value
            continue
        index, rest = int(match[1]), match[2]
        level, resnet = divmod(index, num_res_blocks)
        if rest.startswith("in_conv."):
            out[f"adapter.body.{level}.{rest}"] = value
        else:
            out[f"adapter.body.{level}.resnets.{resnet}.{rest}"] = value
    return out


def t2i_adapter_config(state: dict[str, Any]) -> dict[str, Any]:
    """A full adapter's config from its tensors (either key layout): input channels, widths, resnets per level."""
    prefix = "adapter." if any(k.startswith("adapter.") for k in state) else ""
    conv_in = state.get(f"{prefix}conv_in.weight")
    if conv_in is None or not any(k.startswith(f"{prefix}body.") for k in state):
        raise ValueError("not a full T2I-Adapter (no conv_in / body tensors): light adapters load from a "
                         "diffusers folder")
    # conv_in reads the pixel-unshuffled image: 3 (or 1, sketch) channels times 8 x 8 (SD 1.x) or 16 x 16 (SDXL).
    unshuffled = int(conv_in.shape[1])
    found = [(d, c) for d in (8, 16) for c in (3, 1) if unshuffled == c * d * d]
    if not found:
        raise ValueError(f"conv_in takes {unshuffled} channels: not 1 or 3 image channels unshuffled by 8 or 16")
    downscale, in_channels = found[0]
    xl = downscale == 16
    if prefix:
        levels = sorted({int(m[1]) for k in state if (m := re.match(r"adapter\.body\.(\d+)\.resnets\.", k))})
        per_level = len({m[1] for k in state if (m := re.match(r"adapter\.body\.0\.resnets\.(\d+)\.", k))})
        channels = [int(state[f"adapter.body.{lv}.resnets.0.block1.weight"].shape[0]) for lv in levels]
    else:
        blocks = sorted({int(m[1]) for k in state if (m := re.match(r"body\.(\d+)\.block1\.", k))})
        widths = [int(state[f"body.{b}.block1.weight"].shape[0]) for b in blocks]
        # Resnets of one level share a width; a level ends where the width changes or an in_conv starts one.
        starts = [0] + [b for b in blocks[1:] if f"body.{b}.in_conv.weight" in state or widths[b] != widths[b - 1]]
        per_level = starts[1] - starts[0] if len(starts) > 1 else len(blocks)
        if per_level < 1 or len(blocks) % per_level:
            raise ValueError("the T2I-Adapter's body does not split into levels of equal size")
        channels = widths[::per_level]
    return {"in_channels": in_channels, "channels": channels, "num_res_blocks": per_level,
            "downscale_factor": downscale, "adapter_type": "full_adapter_xl" if xl else "full_adapter"}


class T2IAdapterCheckpointLoader(TorchLoader):
    """``t2i_adapter/checkpoint``: one file of a full adapter, TencentARC or diffusers key names."""

    model_type = "t2i_adapter"
    model_format = "checkpoint"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from diffusers import T2IAdapter

        state = read_state_dict(Path(config.path), f"T2I-Adapter {config.key}")
        try:
            adapter_config = t2i_adapter_config(state)
        except ValueError as exc:
            raise ValueError(f"T2I-Adapter {config.key}: {exc}") from None
        model = T2IAdapter(**adapter_config)
        converted = t2i_adapter_to_diffusers(state, adapter_config["num_res_blocks"])
        missing, unexpected = model.load_state_dict(converted, strict=False)
        if missing or unexpected:
            kind = adapter_config["adapter_type"]
            raise ValueError(f"T2I-Adapter {config.key}: the file's tensors do not fit a {kind}"
                             f" ({len(missing)} missing such as {missing[:3]}, {len(unexpected)} unexpected such as "
                             f"{unexpected[:3]})")
        return model.to(torch_dtype(dtype)).eval()


class IPAdapterLoader(TorchLoader):
    """``ip_adapter/checkpoint`` (one file) and ``ip_adapter/invokeai`` (a folder with ``ip_adapter.*``)."""

    model_type = "ip_adapter"

    def __init__(self, model_format: str) -> None:
        self.model_format = model_format

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        path = Path(config.path)
        if path.is_dir():
            files = [path / name for name in ("ip_adapter.safetensors", "ip_adapter.bin") if (path / name).is_file()]
            if not files:
                raise ValueError(f"IP-Adapter {config.key}: {path} holds neither ip_adapter.safetensors nor "
                                 f"ip_adapter.bin")
            path = files[0]
        # Imported here, not at the top: the module is torch, and this plugin's start-up stays free of it.
        from invoke_diffusers_nodes.ip_adapter_weights import IPAdapterWeights

        state = read_state_dict(path, f"IP-Adapter {config.key}")
        try:
            weights = IPAdapterWeights.from_state_dict(state)
        except ValueError as exc:
            raise ValueError(f"IP-Adapter {config.key}: {exc}") from None
        return weights.to(torch_dtype(dtype)).eval()


class CLIPVisionLoader(TorchLoader):
    """``clip_vision/diffusers``: a transformers ``CLIPVisionModelWithProjection`` folder."""

    model_type = "clip_vision"
    model_format = "diffusers"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from transformers import CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection.from_pretrained(str(config.path), dtype=torch_dtype(dtype),
                                                             local_files_only=True).eval()


def control_loaders() -> list[ModelLoader]:
    """One loader per control / adapter type and format."""
    return [
        ControlNetDiffusersLoader(),
        ControlNetCheckpointLoader(),
        T2IAdapterDiffusersLoader(),
        T2IAdapterCheckpointLoader(),
        IPAdapterLoader("checkpoint"),
        IPAdapterLoader("invokeai"),
        CLIPVisionLoader(),
    ]
