"""FLUX.1 files for the tests: real key names and shapes, written the way BFL, ComfyUI and kohya write them.

The real-size layouts come from the real configs instantiated on torch's meta device (no memory, no
weights) and renamed here into the original key names; the small files hold random weights of a tiny
config. The renaming below is written independently of the plugin's converter (it walks diffusers'
modules and fuses them), so a test that loads what it writes checks the converter, not a copy of it.
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from typing import Any

__all__ = [
    "TINY_TRANSFORMER",
    "bfl_linears",
    "bfl_lora",
    "bfl_sources",
    "diffusers_to_bfl",
    "diffusers_vae_to_ldm",
    "meta_state_dict",
    "shapes_of",
    "tiny_transformer",
    "transformer_out",
    "write_header",
    "write_t5_tokenizer",
]

TINY_TRANSFORMER: dict[str, Any] = {
    # One head of FLUX.1's real head width (128), so its rotary axes (16, 56, 56) fit unchanged.
    "patch_size": 1, "in_channels": 64, "num_layers": 1, "num_single_layers": 2, "attention_head_dim": 128,
    "num_attention_heads": 1, "joint_attention_dim": 32, "pooled_projection_dim": 16, "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}


def write_header(path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None = None) -> Path:
    """A safetensors file's header for ``shapes`` (bf16), without the tensor data: what probing reads."""
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, shape in shapes.items():
        size = math.prod(shape) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


def shapes_of(state_dict: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def meta_state_dict(kind: str, **config: Any) -> dict[str, Any]:
    """The state dict (meta tensors) of a real-size model: ``transformer``, ``vae``, ``t5`` or ``clip``."""
    import torch
    from invoke_diffusers_nodes.flux_file_loaders import shipped_config

    with torch.device("meta"):
        if kind == "transformer":
            from diffusers import FluxTransformer2DModel

            model: Any = FluxTransformer2DModel.from_config({**shipped_config("transformer-dev"), **config})
        elif kind == "vae":
            from diffusers import AutoencoderKL

            model = AutoencoderKL.from_config({**shipped_config("vae"), **config})
        elif kind == "t5":
            from transformers import T5Config, T5EncoderModel

            model = T5EncoderModel(T5Config(**{**shipped_config("t5-xxl"), **config}))
        else:
            from transformers import CLIPTextConfig, CLIPTextModel

            model = CLIPTextModel(CLIPTextConfig(**{**shipped_config("clip-l"), **config}))
    return dict(model.state_dict())


def tiny_transformer(seed: int = 0, **overrides: Any) -> Any:
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    model = FluxTransformer2DModel(**{**TINY_TRANSFORMER, **overrides})
    with torch.no_grad():
        for param in model.parameters():  # random everywhere: zero-initialised layers would hide a wrong mapping
            param.normal_(0, 0.05)
    return model.eval()


def transformer_out(model: Any, guidance: bool) -> Any:
    """The tiny transformer's output on fixed inputs (16 image tokens, 8 text tokens)."""
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        return model(
            hidden_states=torch.randn(1, 16, 64, generator=generator),
            encoder_hidden_states=torch.randn(1, 8, 32, generator=generator),
            pooled_projections=torch.randn(1, 16, generator=generator), timestep=torch.tensor([0.5]),
            img_ids=torch.rand(16, 3, generator=generator), txt_ids=torch.zeros(8, 3),
            guidance=torch.tensor([3.5]) if guidance else None, return_dict=False,
        )[0]


def _swap(tensor: Any) -> Any:
    import torch

    scale, shift = tensor.chunk(2, dim=0)
    return torch.cat([shift, scale], dim=0)


def diffusers_to_bfl(sd: dict[str, Any]) -> dict[str, Any]:
    """A diffusers ``FluxTransformer2DModel`` state dict in BFL's names (fused q/k/v, shift before scale)."""
    import torch

    out: dict[str, Any] = {}
    plain = {
        "x_embedder": "img_in", "context_embedder": "txt_in",
        "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
        "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
        "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
        "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
        "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
        "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
        "proj_out": "final_layer.linear",
    }
    for p in ("weight", "bias"):
        for src, dst in plain.items():
            if f"{src}.{p}" in sd:
                out[f"{dst}.{p}"] = sd[f"{src}.{p}"]
        out[f"final_layer.adaLN_modulation.1.{p}"] = _swap(sd[f"norm_out.linear.{p}"])
    doubles = {int(m.group(1)) for k in sd if (m := re.match(r"transformer_blocks\.(\d+)\.", k))}
    for i in sorted(doubles):
        d, b = f"transformer_blocks.{i}.", f"double_blocks.{i}."
        for p in ("weight", "bias"):
            out[f"{b}img_attn.qkv.{p}"] = torch.cat([sd[f"{d}attn.to_{x}.{p}"] for x in "qkv"])
            out[f"{b}txt_attn.qkv.{p}"] = torch.cat([sd[f"{d}attn.add_{x}_proj.{p}"] for x in "qkv"])
            for src, dst in (("attn.to_out.0", "img_attn.proj"), ("attn.to_add_out", "txt_attn.proj"),
                             ("ff.net.0.proj", "img_mlp.0"), ("ff.net.2", "img_mlp.2"),
                             ("ff_context.net.0.proj", "txt_mlp.0"), ("ff_context.net.2", "txt_mlp.2"),
                             ("norm1.linear", "img_mod.lin"), ("norm1_context.linear", "txt_mod.lin")):
                out[f"{b}{dst}.{p}"] = sd[f"{d}{src}.{p}"]
        for src, dst in (("norm_q", "img_attn.norm.query_norm"), ("norm_k", "img_attn.norm.key_norm"),
                         ("norm_added_q", "txt_attn.norm.query_norm"), ("norm_added_k", "txt_attn.norm.key_norm")):
            out[f"{b}{dst}.scale"] = sd[f"{d}attn.{src}.weight"]
    singles = {int(m.group(1)) for k in sd if (m := re.match(r"single_transformer_blocks\.(\d+)\.", k))}
    for i in sorted(singles):
        d, b = f"single_transformer_blocks.{i}.", f"single_blocks.{i}."
        for p in ("weight", "bias"):
            out[f"{b}linear1.{p}"] = torch.cat([*(sd[f"{d}attn.to_{x}.{p}"] for x in "qkv"), sd[f"{d}proj_mlp.{p}"]])
            out[f"{b}linear2.{p}"] = sd[f"{d}proj_out.{p}"]
            out[f"{b}modulation.lin.{p}"] = sd[f"{d}norm.linear.{p}"]
        out[f"{b}norm.query_norm.scale"] = sd[f"{d}attn.norm_q.weight"]
        out[f"{b}norm.key_norm.scale"] = sd[f"{d}attn.norm_k.weight"]
    fused = 8 * len(doubles) + 6 * len(singles)  # q, k, v (and the MLP input) become one tensor per block
    assert len(out) == len(sd) - fused, f"{len(sd) - fused - len(out)} diffusers tensors have no BFL name here"
    return out


_VAE_RULES = [
    (r"^(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out."),
    (r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.conv_shortcut\.", r"encoder.down.\1.block.\2.nin_shortcut."),
    (r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2."),
    (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.", r"encoder.down.\1.downsample.conv."),
    (r"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.", lambda m: f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}."),
    (r"^(encoder|decoder)\.mid_block\.attentions\.0\.group_norm\.", r"\1.mid.attn_1.norm."),
    (r"^(encoder|decoder)\.mid_block\.attentions\.0\.to_([qkv])\.", r"\1.mid.attn_1.\2."),
    (r"^(encoder|decoder)\.mid_block\.attentions\.0\.to_out\.0\.", r"\1.mid.attn_1.proj_out."),
]


def diffusers_vae_to_ldm(sd: dict[str, Any], blocks: int) -> dict[str, Any]:
    """A diffusers ``AutoencoderKL`` state dict in the LDM names ``ae.safetensors`` uses (attention as 1x1 convs)."""
    out: dict[str, Any] = {}
    for key, tensor in sd.items():
        name = key
        up = re.match(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(conv_shortcut\.|conv\.|)(.*)$", key)
        if up is not None:
            level = blocks - 1 - int(up.group(1))  # LDM numbers the decoder's levels from the bottom
            if up.group(2) == "upsamplers":
                name = f"decoder.up.{level}.upsample.conv.{up.group(5)}"
            else:
                part = "nin_shortcut." if up.group(4) == "conv_shortcut." else up.group(4)
                name = f"decoder.up.{level}.block.{up.group(3)}.{part}{up.group(5)}"
        else:
            for pattern, repl in _VAE_RULES:
                name, hits = re.subn(pattern, repl, name)  # type: ignore[call-overload]
                if hits:
                    break
        if ".mid.attn_1." in name and name.endswith(".weight") and tensor.dim() == 2:
            tensor = tensor[:, :, None, None]
        out[name] = tensor
    return out


def write_t5_tokenizer(folder: Path, vocab_size: int) -> Path:
    """A T5 tokenizer folder (tokenizers' Unigram in tokenizer.json): pad 0, eos 1, unk 2, the word mark, letters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(chr(ord("a") + i % 26) * (1 + i // 26), -2.0 - i) for i in range(vocab_size - 4)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "model_max_length": 512, "extra_ids": 0,
    }))
    return folder


def bfl_linears(bfl: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Every linear layer of a BFL-named transformer: module name to (out, in) features."""
    return {k[: -len(".weight")]: tuple(v.shape) for k, v in bfl.items() if k.endswith(".weight") and v.dim() == 2}


_XLABS = {"img_attn.qkv": "processor.qkv_lora1", "img_attn.proj": "processor.proj_lora1",
          "txt_attn.qkv": "processor.qkv_lora2", "txt_attn.proj": "processor.proj_lora2"}


def bfl_lora(linears: dict[str, tuple[int, int]], layout: str, rank: int, seed: int = 0, *,
             alpha: float | None = None, meta: bool = False,
             factors: dict[str, tuple[Any, Any, float]] | None = None) -> dict[str, Any]:
    """A LoRA over ``linears`` (BFL module names) in ``layout``: kohya, bfl (ComfyUI) or xlabs.

    XLabs patches only the attention layers (and a single block's attention part of linear1, its q/k/v rows).
    ``factors`` receives each BFL module's (down, up, alpha / rank) as written.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    device = "meta" if meta else "cpu"

    def rand(*shape: int) -> Any:
        if meta:
            return torch.empty(shape, device=device)
        return torch.randn(shape, generator=generator) * 0.1

    out: dict[str, Any] = {}
    for module, (rows, cols) in linears.items():
        if layout == "kohya":
            name = "lora_unet_" + module.replace(".", "_")
            down, up = f"{name}.lora_down.weight", f"{name}.lora_up.weight"
            alpha_key = f"{name}.alpha"
        elif layout == "bfl":
            down, up = f"diffusion_model.{module}.lora_A.weight", f"diffusion_model.{module}.lora_B.weight"
            alpha_key = f"diffusion_model.{module}.alpha"
        else:
            parts = module.split(".")
            prefix, rest = ".".join(parts[:2]), ".".join(parts[2:])
            if parts[0] == "single_blocks" and rest == "linear1":
                part, rows = "processor.qkv_lora", 3 * cols  # only the attention's q, k, v rows
            elif parts[0] == "single_blocks" and rest == "linear2":
                part = "processor.proj_lora"
            elif parts[0] == "double_blocks" and rest in _XLABS:
                part = _XLABS[rest]
            else:
                continue
            down, up = f"{prefix}.{part}.down.weight", f"{prefix}.{part}.up.weight"
            alpha_key = ""
        out[down] = rand(rank, cols)
        out[up] = rand(rows, rank)
        if alpha is not None and alpha_key:
            out[alpha_key] = torch.tensor(alpha)
        if factors is not None:
            factors[module] = (out[down], out[up], alpha / rank if alpha is not None and alpha_key else 1.0)
    return out


def bfl_sources(sd: dict[str, Any]) -> dict[str, tuple[list[str], bool]]:
    """Each BFL linear layer: the diffusers modules whose weights it stacks (in order), and whether halves swap."""
    out: dict[str, tuple[list[str], bool]] = {
        "img_in": (["x_embedder"], False), "txt_in": (["context_embedder"], False),
        "time_in.in_layer": (["time_text_embed.timestep_embedder.linear_1"], False),
        "guidance_in.in_layer": (["time_text_embed.guidance_embedder.linear_1"], False),
        "final_layer.linear": (["proj_out"], False),
        "final_layer.adaLN_modulation.1": (["norm_out.linear"], True),
    }
    doubles = {int(m.group(1)) for k in sd if (m := re.match(r"transformer_blocks\.(\d+)\.", k))}
    for i in doubles:
        d = f"transformer_blocks.{i}."
        out[f"double_blocks.{i}.img_attn.qkv"] = ([f"{d}attn.to_q", f"{d}attn.to_k", f"{d}attn.to_v"], False)
        out[f"double_blocks.{i}.txt_attn.qkv"] = ([f"{d}attn.add_q_proj", f"{d}attn.add_k_proj",
                                                   f"{d}attn.add_v_proj"], False)
        out[f"double_blocks.{i}.img_attn.proj"] = ([f"{d}attn.to_out.0"], False)
        out[f"double_blocks.{i}.txt_attn.proj"] = ([f"{d}attn.to_add_out"], False)
        out[f"double_blocks.{i}.img_mlp.0"] = ([f"{d}ff.net.0.proj"], False)
        out[f"double_blocks.{i}.txt_mlp.2"] = ([f"{d}ff_context.net.2"], False)
        out[f"double_blocks.{i}.txt_mod.lin"] = ([f"{d}norm1_context.linear"], False)
    singles = {int(m.group(1)) for k in sd if (m := re.match(r"single_transformer_blocks\.(\d+)\.", k))}
    for i in singles:
        s = f"single_transformer_blocks.{i}."
        out[f"single_blocks.{i}.linear1"] = ([f"{s}attn.to_q", f"{s}attn.to_k", f"{s}attn.to_v", f"{s}proj_mlp"],
                                             False)
        out[f"single_blocks.{i}.linear2"] = ([f"{s}proj_out"], False)
        out[f"single_blocks.{i}.modulation.lin"] = ([f"{s}norm.linear"], False)
    return out
