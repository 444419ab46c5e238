"""FLUX.1 single files: the transformer (BFL, ComfyUI or diffusers key names), the 16-channel VAE, T5 and CLIP.

Each loader gives the class a FLUX diffusers folder gives (``FluxTransformer2DModel``, ``AutoencoderKL``,
``T5EncoderModel``, ``CLIPTextModel`` and their tokenizers), so the FLUX nodes never ask where a model
came from. Nothing is fetched: the architecture's config is the one shipped in ``flux_configs/`` with
every size the file's tensor shapes fix read from the file (so a pruned or distilled file loads too),
or, when the model's ``config_path`` names a folder holding a ``config.json``, that config.

A single file carries no tokenizer. ``config_path`` names where it is: a folder with the tokenizer files,
or a FLUX.1 diffusers folder (its ``tokenizer`` for CLIP, ``tokenizer_2`` for T5).

torch, diffusers and transformers are imported inside the functions, so loading the plugin stays light.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from invoke_sdk.models.loading import ModelConfigLike, ModelLoader, config_field
from invoke_sdk.models.probing import detect_file_format

from invoke_diffusers_nodes.flux_bfl_names import BFL_NORM_SCALES, bfl_module, split_sizes
from invoke_diffusers_nodes.torch_support import TorchLoader, torch_dtype

__all__ = [
    "FLUX_MAIN_SUBMODELS",
    "CLIPEmbedCheckpointLoader",
    "T5EncoderCheckpointLoader",
    "bfl_to_diffusers",
    "clip_text_prefix",
    "flux_file_loaders",
    "flux_transformer_config",
    "flux_vae_config",
    "load_flux_main_file",
    "load_flux_vae_file",
    "shipped_config",
]

FLUX_MAIN_SUBMODELS = ("transformer",)
_COMFY_PREFIXES = ("model.diffusion_model.", "diffusion_model.")
_VAE_PREFIXES = ("first_stage_model.", "vae.")
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "spiece.model", "vocab.json")


def shipped_config(name: str) -> dict[str, Any]:
    """One of the configs shipped in ``flux_configs/`` (``transformer-dev``, ``vae``, ``t5-xxl``, ``clip-l``)."""
    text = resources.files("invoke_diffusers_nodes").joinpath("flux_configs", f"{name}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _local_config(config: ModelConfigLike, *subfolders: str) -> dict[str, Any] | None:
    # A config.json in config_path (or its submodel folder) is the user's word and wins over the shipped one.
    config_path = config_field(config, "config_path")
    if not config_path:
        return None
    root = Path(config_path)
    for folder in (*(root / s for s in subfolders), root):
        if (folder / "config.json").is_file():
            data: dict[str, Any] = json.loads((folder / "config.json").read_text("utf-8"))
            return data
    return None


def _read_state_dict(config: ModelConfigLike) -> dict[str, Any]:
    path = Path(config.path)
    # By content, not by name: BFL's first releases were named .sft.
    if detect_file_format(path) == "safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    import torch

    # Pickles only reach a loader after the model manager's scan; weights_only refuses code anyway.
    loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    return dict(loaded)


def _strip(state_dict: dict[str, Any], prefixes: tuple[str, ...]) -> dict[str, Any]:
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return state_dict


def _count(keys: Any, pattern: str) -> int:
    found = re.compile(pattern)
    indices = {int(m.group(1)) for k in keys if (m := found.match(k))}
    return max(indices) + 1 if indices else 0


def _shape(state_dict: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise ValueError(f"this is not a FLUX.1 {what} file: it has no tensor {key!r}")
    return tuple(state_dict[key].shape)


def _build(cls: Any, model_config: Any, state_dict: dict[str, Any], what: str) -> Any:
    from accelerate import init_empty_weights

    # Parameters are created empty and the file's tensors put in their place: no random init of 12B weights.
    with init_empty_weights():
        model = cls.from_config(model_config) if hasattr(cls, "from_config") else cls(model_config)
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        raise ValueError(f"the {what} file does not fit its config ({str(exc).splitlines()[0]} ...)") from exc
    return model.eval()


# --- the transformer -------------------------------------------------------------------------------------

def bfl_to_diffusers(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A FLUX.1 transformer state dict in BFL key names, renamed and split into diffusers' names."""
    import torch

    out: dict[str, Any] = {}
    for key, tensor in state_dict.items():
        block = re.match(r"^((?:double|single)_blocks)\.(\d+)\.(.+)$", key)
        if block is not None and block.group(3) in BFL_NORM_SCALES:
            kind = "transformer_blocks" if block.group(1) == "double_blocks" else "single_transformer_blocks"
            out[f"{kind}.{block.group(2)}.{BFL_NORM_SCALES[block.group(3)]}"] = tensor
            continue
        module, _, param = key.rpartition(".")
        entry = bfl_module(module) if param in ("weight", "bias") else None
        if entry is None:
            raise ValueError(f"this FLUX.1 transformer file has a tensor no FLUX.1 layer holds: {key!r}")
        in_features = state_dict[f"{module}.weight"].shape[1]
        if entry.swap_halves:
            shift, scale = tensor.chunk(2, dim=0)
            tensor = torch.cat([scale, shift], dim=0)
        parts = torch.split(tensor, split_sizes(entry, tensor.shape[0], in_features), dim=0)
        for target, part in zip(entry.targets, parts, strict=True):
            out[f"{target}.{param}"] = part.contiguous()
    return out


def flux_transformer_config(state_dict: Mapping[str, Any], variant: str | None) -> dict[str, Any]:
    """The diffusers config of a FLUX.1 transformer state dict (diffusers names): shipped, sized by the file."""
    shipped = shipped_config(f"transformer-{variant}" if variant in ("dev", "schnell", "dev_fill") else
                             "transformer-dev")
    hidden, in_channels = _shape(state_dict, "x_embedder.weight", "transformer")
    (head_dim,) = _shape(state_dict, "transformer_blocks.0.attn.norm_q.weight", "transformer")
    out_channels = _shape(state_dict, "proj_out.weight", "transformer")[0]
    mlp = _shape(state_dict, "transformer_blocks.0.ff.net.0.proj.weight", "transformer")[0]
    if mlp != 4 * hidden:
        raise ValueError(f"FLUX.1 transformer with an MLP of {mlp} for width {hidden}: diffusers' FLUX has 4 x width")
    if sum(shipped["axes_dims_rope"]) != head_dim:
        raise ValueError(
            f"FLUX.1 transformer with attention heads of {head_dim} (FLUX.1 has {sum(shipped['axes_dims_rope'])}): "
            f"set the model's config_path to a folder whose config.json gives its axes_dims_rope"
        )
    keys = list(state_dict)
    return {
        **shipped,
        "in_channels": in_channels,
        "out_channels": None if out_channels == in_channels else out_channels,
        "num_layers": _count(keys, r"^transformer_blocks\.(\d+)\."),
        "num_single_layers": _count(keys, r"^single_transformer_blocks\.(\d+)\."),
        "attention_head_dim": head_dim,
        "num_attention_heads": hidden // head_dim,
        "joint_attention_dim": _shape(state_dict, "context_embedder.weight", "transformer")[1],
        "pooled_projection_dim": _shape(state_dict, "time_text_embed.text_embedder.linear_1.weight", "transformer")[1],
        "guidance_embeds": "time_text_embed.guidance_embedder.linear_1.weight" in state_dict,
    }


def load_flux_main_file(config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
    """``main/checkpoint`` with base flux: the transformer (the file holds nothing else FLUX reads)."""
    from diffusers import FluxTransformer2DModel

    if submodel not in (None, *FLUX_MAIN_SUBMODELS):
        raise ValueError(
            f"FLUX.1 single-file model {config.key} holds only the transformer, not {submodel!r}: the VAE, T5 and "
            f"CLIP encoders are models of their own (install ae.safetensors, a T5 encoder and a CLIP-L encoder)"
        )
    target = torch_dtype(dtype)
    state_dict = _strip(_read_state_dict(config), _COMFY_PREFIXES)
    if "double_blocks.0.img_attn.qkv.weight" in state_dict:
        state_dict = bfl_to_diffusers(state_dict)
    state_dict = {k: v.to(target) for k, v in state_dict.items()}
    model_config = _local_config(config, "transformer") or flux_transformer_config(
        state_dict, config_field(config, "variant")
    )
    return _build(FluxTransformer2DModel, model_config, state_dict, f"FLUX.1 transformer ({config.key})")


# --- the VAE ---------------------------------------------------------------------------------------------

def flux_vae_config(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The diffusers config of a FLUX VAE state dict (LDM names): the shipped one, sized by the file."""
    shipped = shipped_config("vae")
    keys = list(state_dict)
    blocks = _count(keys, r"^encoder\.down\.(\d+)\.")
    channels = [_shape(state_dict, f"encoder.down.{i}.block.0.conv1.weight", "VAE")[0] for i in range(blocks)]
    return {
        **shipped,
        "in_channels": _shape(state_dict, "encoder.conv_in.weight", "VAE")[1],
        "out_channels": _shape(state_dict, "decoder.conv_out.weight", "VAE")[0],
        "latent_channels": _shape(state_dict, "decoder.conv_in.weight", "VAE")[1],
        "block_out_channels": channels,
        "down_block_types": ["DownEncoderBlock2D"] * blocks,
        "up_block_types": ["UpDecoderBlock2D"] * blocks,
        "layers_per_block": _count(keys, r"^encoder\.down\.0\.block\.(\d+)\."),
        "use_quant_conv": "quant_conv.weight" in state_dict,
        "use_post_quant_conv": "post_quant_conv.weight" in state_dict,
    }


def load_flux_vae_file(config: ModelConfigLike, *, dtype: str) -> Any:
    """``vae/checkpoint`` with base flux: ``ae.safetensors`` (LDM key names, 16 latent channels)."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    state_dict = _strip(_read_state_dict(config), _VAE_PREFIXES)
    model_config = _local_config(config, "vae") or flux_vae_config(state_dict)
    converted = convert_ldm_vae_checkpoint(state_dict, model_config)
    target = torch_dtype(dtype)
    converted = {k: v.to(target) for k, v in converted.items()}
    return _build(AutoencoderKL, model_config, converted, f"FLUX.1 VAE ({config.key})")


# --- the text encoders -----------------------------------------------------------------------------------

def _tokenizer_folder(config: ModelConfigLike, subfolder: str, what: str) -> Path:
    config_path = config_field(config, "config_path")
    wanted = (
        f"set the model's config_path to a folder holding the {what} tokenizer files, or to an installed FLUX.1 "
        f"diffusers folder (its {subfolder}/ is used)"
    )
    if not config_path:
        raise ValueError(f"{what} single file {config.key} carries no tokenizer: {wanted}")
    root = Path(config_path)
    for folder in (root / subfolder, root):
        if any((folder / name).is_file() for name in _TOKENIZER_FILES):
            return folder
    raise ValueError(f"{what} model {config.key}: no tokenizer in {root} or {root / subfolder}: {wanted}")


def _one_of(config: ModelConfigLike, submodel: str | None, encoders: tuple[str | None, ...],
            tokenizers: tuple[str, ...]) -> bool:
    """True for the tokenizer, False for the encoder; a ValueError for anything else."""
    if submodel in tokenizers:
        return True
    if submodel in encoders:
        return False
    raise ValueError(f"model {config.key} holds a text encoder and its tokenizer: ask for one of "
                     f"{', '.join(str(s) for s in (*encoders, *tokenizers) if s)}, not {submodel!r}")


class T5EncoderCheckpointLoader(TorchLoader):
    """``t5_encoder/checkpoint``: ``t5xxl_fp16.safetensors`` and the like, as a ``T5EncoderModel``."""

    model_type = "t5_encoder"
    model_format = "checkpoint"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        if _one_of(config, submodel, (None, "text_encoder_2", "text_encoder"), ("tokenizer_2", "tokenizer")):
            from transformers import T5Tokenizer

            return T5Tokenizer.from_pretrained(str(_tokenizer_folder(config, "tokenizer_2", "T5")),
                                               local_files_only=True)
        from transformers import T5Config, T5EncoderModel

        target = torch_dtype(dtype)
        state_dict = {k: v.to(target) for k, v in _read_state_dict(config).items()
                      if not k.startswith(("decoder.", "lm_head."))}
        if "encoder.embed_tokens.weight" not in state_dict and "shared.weight" in state_dict:
            state_dict["encoder.embed_tokens.weight"] = state_dict["shared.weight"]
        model_config = _local_config(config, "text_encoder_2") or _t5_config(state_dict)
        return _build(T5EncoderModel, T5Config(**model_config), state_dict, f"T5 encoder ({config.key})")


def _t5_config(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    vocab, width = _shape(state_dict, "shared.weight", "T5 encoder")
    heads = _shape(state_dict, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", "T5 encoder")[1]
    inner = _shape(state_dict, "encoder.block.0.layer.0.SelfAttention.q.weight", "T5 encoder")[0]
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in state_dict
    ff_key = "wi_0" if gated else "wi"
    layers = _count(list(state_dict), r"^encoder\.block\.(\d+)\.")
    return {
        **shipped_config("t5-xxl"),
        "vocab_size": vocab,
        "d_model": width,
        "num_heads": heads,
        "d_kv": inner // heads,
        "d_ff": _shape(state_dict, f"encoder.block.0.layer.1.DenseReluDense.{ff_key}.weight", "T5 encoder")[0],
        "num_layers": layers,
        "num_decoder_layers": layers,
        "feed_forward_proj": "gated-gelu" if gated else "relu",
        "is_gated_act": gated,
    }


class CLIPEmbedCheckpointLoader(TorchLoader):
    """``clip_embed/checkpoint``: ``clip_l.safetensors`` and the like, as a ``CLIPTextModel``."""

    model_type = "clip_embed"
    model_format = "checkpoint"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        if _one_of(config, submodel, (None, "text_encoder"), ("tokenizer",)):
            from transformers import CLIPTokenizer

            return CLIPTokenizer.from_pretrained(str(_tokenizer_folder(config, "tokenizer", "CLIP")),
                                                 local_files_only=True)
        from transformers import CLIPTextConfig, CLIPTextModel

        target = torch_dtype(dtype)
        state_dict = {k: v.to(target) for k, v in _read_state_dict(config).items()
                      if k.startswith("text_model.") and not k.endswith("position_ids")}
        model_config = _local_config(config, "text_encoder") or _clip_config(state_dict)
        text_config = CLIPTextConfig(**model_config)
        return _build(CLIPTextModel, text_config, _clip_names(state_dict), f"CLIP encoder ({config.key})")


@functools.cache
def clip_text_prefix() -> str:
    """``"text_model."`` where the installed transformers' ``CLIPTextModel`` names its modules so, else ``""``.

    Files (and LoRAs) always say ``text_model.*``; transformers 5 dropped that level from ``CLIPTextModel``.
    """
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel

    with init_empty_weights():
        probe = CLIPTextModel(CLIPTextConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                             num_attention_heads=1, vocab_size=8, max_position_embeddings=4))
    return "text_model." if any(name.startswith("text_model.") for name, _ in probe.named_parameters()) else ""


def _clip_names(state_dict: dict[str, Any]) -> dict[str, Any]:
    prefix = clip_text_prefix()
    return {prefix + k.removeprefix("text_model."): v for k, v in state_dict.items()}


def _clip_config(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    shipped = shipped_config("clip-l")
    vocab, width = _shape(state_dict, "text_model.embeddings.token_embedding.weight", "CLIP text encoder")
    if width % shipped["num_attention_heads"]:
        raise ValueError(
            f"CLIP text encoder of width {width}, which CLIP-L's {shipped['num_attention_heads']} heads do not divide: "
            f"set the model's config_path to a folder whose config.json gives its num_attention_heads"
        )
    return {
        **shipped,
        "vocab_size": vocab,
        "hidden_size": width,
        "projection_dim": width,
        "intermediate_size": _shape(state_dict, "text_model.encoder.layers.0.mlp.fc1.weight", "CLIP text encoder")[0],
        "max_position_embeddings": _shape(
            state_dict, "text_model.embeddings.position_embedding.weight", "CLIP text encoder")[0],
        "num_hidden_layers": _count(list(state_dict), r"^text_model\.encoder\.layers\.(\d+)\."),
    }


def flux_file_loaders() -> list[ModelLoader]:
    """The loaders of FLUX's single-file text encoders (the transformer and VAE go through main/vae checkpoint)."""
    return [T5EncoderCheckpointLoader(), CLIPEmbedCheckpointLoader()]
