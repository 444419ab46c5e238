"""How Black Forest Labs' FLUX.1 module names map onto diffusers' ``FluxTransformer2DModel``.

One table serves two readers: the single-file transformer loader (whole weights) and the LoRA
converter (low-rank factors). BFL fuses layers diffusers keeps apart (``img_attn.qkv`` is diffusers'
``to_q``/``to_k``/``to_v``; a single block's ``linear1`` is q, k, v and the MLP's input), and orders the
final modulation (shift, scale) where diffusers reads (scale, shift). Names are looked up in their
underscored form (``double_blocks_0_img_attn_qkv``) because kohya LoRAs spell them so and a dotted name
converts to it without ambiguity.

This module is pure Python: it never imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["BFL_NORM_SCALES", "FluxModuleMap", "bfl_module", "split_sizes"]

Split = Literal["none", "equal", "linear1"]


@dataclass(frozen=True)
class FluxModuleMap:
    """The diffusers module(s) one BFL linear layer becomes, and how its output rows divide among them."""

    targets: tuple[str, ...]
    split: Split = "none"
    """``equal``: the rows split evenly (fused q/k/v); ``linear1``: q, k, v of ``in_features`` rows each and
    the MLP input taking the rest."""
    swap_halves: bool = False
    """The two halves of the output rows change places (BFL's shift, scale to diffusers' scale, shift)."""


_DOUBLE = {
    "img_attn_qkv": FluxModuleMap(("attn.to_q", "attn.to_k", "attn.to_v"), "equal"),
    "img_attn_proj": FluxModuleMap(("attn.to_out.0",)),
    "img_mlp_0": FluxModuleMap(("ff.net.0.proj",)),
    "img_mlp_2": FluxModuleMap(("ff.net.2",)),
    "img_mod_lin": FluxModuleMap(("norm1.linear",)),
    "txt_attn_qkv": FluxModuleMap(("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"), "equal"),
    "txt_attn_proj": FluxModuleMap(("attn.to_add_out",)),
    "txt_mlp_0": FluxModuleMap(("ff_context.net.0.proj",)),
    "txt_mlp_2": FluxModuleMap(("ff_context.net.2",)),
    "txt_mod_lin": FluxModuleMap(("norm1_context.linear",)),
}
_SINGLE = {
    "linear1": FluxModuleMap(("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), "linear1"),
    "linear2": FluxModuleMap(("proj_out",)),
    "modulation_lin": FluxModuleMap(("norm.linear",)),
    # XLabs LoRAs patch only the attention part of linear1 (its q, k, v rows).
    "linear1_qkv": FluxModuleMap(("attn.to_q", "attn.to_k", "attn.to_v"), "equal"),
}
_GLOBAL = {
    "img_in": FluxModuleMap(("x_embedder",)),
    "txt_in": FluxModuleMap(("context_embedder",)),
    "time_in_in_layer": FluxModuleMap(("time_text_embed.timestep_embedder.linear_1",)),
    "time_in_out_layer": FluxModuleMap(("time_text_embed.timestep_embedder.linear_2",)),
    "vector_in_in_layer": FluxModuleMap(("time_text_embed.text_embedder.linear_1",)),
    "vector_in_out_layer": FluxModuleMap(("time_text_embed.text_embedder.linear_2",)),
    "guidance_in_in_layer": FluxModuleMap(("time_text_embed.guidance_embedder.linear_1",)),
    "guidance_in_out_layer": FluxModuleMap(("time_text_embed.guidance_embedder.linear_2",)),
    "final_layer_linear": FluxModuleMap(("proj_out",)),
    "final_layer_adaLN_modulation_1": FluxModuleMap(("norm_out.linear",), swap_halves=True),
}
_BLOCK = re.compile(r"^(double|single)_blocks_(\d+)_(\w+)$")

BFL_NORM_SCALES = {
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
    "norm.query_norm.scale": "attn.norm_q.weight",
    "norm.key_norm.scale": "attn.norm_k.weight",
}
"""The RMS-norm scales inside a block (BFL name after ``<kind>_blocks.N.``, diffusers name after the block)."""


def bfl_module(name: str) -> FluxModuleMap | None:
    """The diffusers modules (full names) for a BFL linear layer, dotted or underscored; None if not one."""
    underscored = name.replace(".", "_")
    found = _BLOCK.match(underscored)
    if found is None:
        return _GLOBAL.get(underscored)
    kind, index, part = found.groups()
    table, block = (_DOUBLE, "transformer_blocks") if kind == "double" else (_SINGLE, "single_transformer_blocks")
    entry = table.get(part)
    if entry is None:
        return None
    return FluxModuleMap(tuple(f"{block}.{index}.{t}" for t in entry.targets), entry.split, entry.swap_halves)


def split_sizes(entry: FluxModuleMap, rows: int, in_features: int) -> list[int]:
    """How many output rows each target takes from a fused layer with ``rows`` outputs."""
    count = len(entry.targets)
    if entry.split == "none":
        return [rows]
    if entry.split == "equal":
        if rows % count:
            raise ValueError(f"a fused layer of {rows} rows does not split into {count} equal parts")
        return [rows // count] * count
    attention = 3 * in_features
    if rows <= attention:
        raise ValueError(f"a single block's linear1 has {rows} rows, not more than 3 x {in_features} (q, k, v)")
    return [in_features, in_features, in_features, rows - attention]
