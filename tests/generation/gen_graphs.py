"""Generation graphs as the API receives them (JSON-shaped dicts), for the engine tests and the benchmark."""

from __future__ import annotations

from typing import Any

__all__ = ["edge", "txt2latents_graph"]


def edge(src: str, src_field: str, dst: str, dst_field: str) -> dict[str, Any]:
    return {"source": {"node_id": src, "field": src_field}, "destination": {"node_id": dst, "field": dst_field}}


def txt2latents_graph(key: str, *, sdxl: bool = False, seed: int = 1, steps: int = 2, size: int = 64,
                      prompt: str = "a photo of a cat", cfg_scale: float = 5.0, scheduler: str = "euler",
                      ) -> dict[str, Any]:
    """main (or SDXL) model loader -> prompt encoders (positive, negative) -> noise -> denoise_latents.

    The final decode and save are left out: they need the image store. Node ids: ``model``, ``positive``,
    ``negative``, ``noise``, ``denoise``.
    """
    model = {"key": key}
    nodes: dict[str, Any] = {
        "noise": {"type": "noise", "seed": seed, "width": size, "height": size},
        "denoise": {"type": "denoise_latents", "steps": steps, "cfg_scale": cfg_scale, "scheduler": scheduler},
    }
    edges = [
        edge("model", "unet", "denoise", "unet"),
        edge("positive", "conditioning", "denoise", "positive_conditioning"),
        edge("negative", "conditioning", "denoise", "negative_conditioning"),
        edge("noise", "noise", "denoise", "noise"),
    ]
    if sdxl:
        nodes["model"] = {"type": "sdxl_model_loader", "model": model}
        sizes = {"original_width": size, "original_height": size, "target_width": size, "target_height": size}
        nodes["positive"] = {"type": "sdxl_compel_prompt", "prompt": prompt, **sizes}
        nodes["negative"] = {"type": "sdxl_compel_prompt", "prompt": "", **sizes}
        for prompt_node in ("positive", "negative"):
            edges += [edge("model", "clip", prompt_node, "clip"), edge("model", "clip2", prompt_node, "clip2")]
    else:
        nodes["model"] = {"type": "main_model_loader", "model": model}
        nodes["positive"] = {"type": "compel", "prompt": prompt}
        nodes["negative"] = {"type": "compel", "prompt": ""}
        edges += [edge("model", "clip", "positive", "clip"), edge("model", "clip", "negative", "clip")]
    return {"nodes": nodes, "edges": edges}
