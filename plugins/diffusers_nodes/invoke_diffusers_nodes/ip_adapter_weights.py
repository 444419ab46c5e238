"""An IP-Adapter's weights as one torch module: the image projection and one key/value pair per cross-attention.

The published files (h94/IP-Adapter, InvokeAI's folders) hold ``image_proj.proj`` / ``image_proj.norm`` (the
plain projection: CLIP image embeds to ``tokens`` context tokens) and ``ip_adapter.<n>.to_k_ip`` / ``to_v_ip``,
where ``n`` counts the UNet's attention processors in diffusers' order (self- and cross-attention alike, so
the cross-attentions are the odd ones). Built on torch only when a loader runs.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["IPAdapterWeights"]


class IPAdapterWeights(torch.nn.Module):
    """``image_proj`` (Linear + LayerNorm) and ``to_k_ip`` / ``to_v_ip`` by processor index (as strings)."""

    def __init__(self, embed_dim: int, context_dim: int, tokens: int, kv: dict[int, tuple[int, int]]) -> None:
        super().__init__()
        self.tokens = tokens
        self.context_dim = context_dim
        self.proj = torch.nn.Linear(embed_dim, tokens * context_dim)
        self.norm = torch.nn.LayerNorm(context_dim)
        self.to_k_ip = torch.nn.ModuleDict(
            {str(n): torch.nn.Linear(ctx, hidden, bias=False) for n, (ctx, hidden) in kv.items()})
        self.to_v_ip = torch.nn.ModuleDict(
            {str(n): torch.nn.Linear(ctx, hidden, bias=False) for n, (ctx, hidden) in kv.items()})

    def project(self, image_embeds: Any) -> Any:
        """CLIP image embeds ``(batch, embed_dim)`` to context tokens ``(batch, tokens, context_dim)``."""
        tokens = self.proj(image_embeds).reshape(-1, self.tokens, self.context_dim)
        return self.norm(tokens)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> IPAdapterWeights:
        """From flat (``image_proj.*``, ``ip_adapter.*``) or nested (``{"image_proj": ..., "ip_adapter": ...}``)."""
        if isinstance(state.get("image_proj"), dict) and isinstance(state.get("ip_adapter"), dict):
            state = {**{f"image_proj.{k}": v for k, v in state["image_proj"].items()},
                     **{f"ip_adapter.{k}": v for k, v in state["ip_adapter"].items()}}
        if "image_proj.latents" in state or "image_proj.proj_in.weight" in state:
            raise ValueError("IP-Adapter Plus / FaceID (resampler projection) files are not supported yet; use a "
                             "plain IP-Adapter")
        if "image_proj.proj.weight" not in state or "image_proj.norm.weight" not in state:
            raise ValueError("no image_proj.proj / image_proj.norm tensors: not an IP-Adapter file")
        proj = state["image_proj.proj.weight"]
        context_dim = int(state["image_proj.norm.weight"].shape[0])
        kv: dict[int, tuple[int, int]] = {}
        for key, value in state.items():
            parts = key.split(".")
            if len(parts) == 4 and parts[0] == "ip_adapter" and parts[2] == "to_k_ip" and parts[1].isdigit():
                kv[int(parts[1])] = (int(value.shape[1]), int(value.shape[0]))
        if not kv:
            raise ValueError("no ip_adapter.<n>.to_k_ip tensors: not an IP-Adapter file")
        module = cls(int(proj.shape[1]), context_dim, int(proj.shape[0]) // context_dim, kv)
        renamed = {
            k.replace("image_proj.", "", 1) if k.startswith("image_proj.")
            else f"{k.split('.')[2]}.{k.split('.')[1]}.{k.split('.')[3]}": v
            for k, v in state.items()
        }
        module.load_state_dict(renamed, strict=True)
        return module
