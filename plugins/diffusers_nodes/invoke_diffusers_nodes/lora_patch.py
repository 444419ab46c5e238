"""Applying LoRAs as weight patches that are removed afterwards, several at once with weights.

Each patched layer's original weight is kept and copied back on exit, so unloading restores the
model bit for bit (subtracting the delta again would drift in float16).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["LORA_PREFIXES", "lora_layers", "patched_with_loras"]

logger = logging.getLogger("invoke_diffusers_nodes.lora")

# Which key prefixes of a LoRA file patch which submodel: kohya (underscored module paths) and PEFT/diffusers.
LORA_PREFIXES: dict[str, tuple[str, ...]] = {
    "unet": ("lora_unet_", "unet."),
    "text_encoder": ("lora_te_", "lora_te1_", "text_encoder."),
    "text_encoder_2": ("lora_te2_", "text_encoder_2."),
    "transformer": ("transformer.", "lora_transformer_"),
}
_DOWN = (".lora_down.weight", ".lora_A.weight")
_UP = (".lora_up.weight", ".lora_B.weight")


def lora_layers(state_dict: Mapping[str, Any], target: str) -> dict[str, dict[str, Any]]:
    """The LoRA's layers for one submodel: ``{module name: {"down", "up", "alpha"}}``.

    Kohya names are underscored (``down_blocks_0_attentions_0_...``); PEFT names are dotted.
    """
    layers: dict[str, dict[str, Any]] = {}
    prefixes = LORA_PREFIXES[target]
    for key, tensor in state_dict.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            continue
        rest = key[len(prefix):]
        for suffixes, slot in ((_DOWN, "down"), (_UP, "up"), ((".alpha",), "alpha")):
            suffix = next((s for s in suffixes if rest.endswith(s)), None)
            if suffix is not None:
                layers.setdefault(rest[: -len(suffix)], {})[slot] = tensor
                break
    return {name: parts for name, parts in layers.items() if "down" in parts and "up" in parts}


def _delta(parts: dict[str, Any], weight: float, shape: Any) -> Any:
    down, up = parts["down"].float(), parts["up"].float()
    rank = down.shape[0]
    alpha = float(parts["alpha"]) if "alpha" in parts else float(rank)
    delta = up.flatten(1) @ down.flatten(1)
    return (delta * (alpha / rank) * weight).reshape(shape)


@contextmanager
def patched_with_loras(
    model: Any, target: str, loras: Sequence[tuple[Mapping[str, Any], float, str]]
) -> Iterator[None]:
    """Inside the block, ``model`` (the ``target`` submodel) carries every LoRA's patch; outside it is restored.

    ``loras`` holds ``(state_dict, weight, name)``. A LoRA with layers for this submodel of which none
    match the model is refused: it was made for another architecture.
    """
    import torch

    if not loras:
        yield
        return
    modules: dict[str, Any] = {}
    # LoRA files name CLIP's modules below ``text_model.`` (kohya: ``lora_te_text_model_encoder_...``), as the
    # original code and transformers 4 do; transformers 5's CLIPTextModel dropped that level, so both spellings
    # must find the module.
    flattened = hasattr(model, "encoder") and hasattr(model, "embeddings") and not hasattr(model, "text_model")
    for name, module in model.named_modules():
        for spelled in (name, f"text_model.{name}" if name else "text_model") if flattened else (name,):
            modules[spelled] = module
            modules[spelled.replace(".", "_")] = module
    saved: dict[int, tuple[Any, Any]] = {}
    try:
        with torch.no_grad():
            for state_dict, weight, lora_name in loras:
                layers = lora_layers(state_dict, target)
                missing = [name for name in layers if name not in modules]
                if layers and len(missing) == len(layers):
                    raise ValueError(
                        f"LoRA {lora_name} does not fit this model's {target}: none of its {len(layers)} layers "
                        f"exist here (first: {missing[0]}); is it made for another base model?"
                    )
                if missing:
                    logger.warning("LoRA %s: %d layers not in the %s were skipped", lora_name, len(missing), target)
                for name, parts in layers.items():
                    module = modules.get(name)
                    if module is None:
                        continue
                    param = module.weight
                    if id(module) not in saved:
                        saved[id(module)] = (module, param.detach().clone())
                    delta = _delta({k: v.to(param.device) for k, v in parts.items()}, weight, param.shape)
                    param.add_(delta.to(param.dtype))
        yield
    finally:
        with torch.no_grad():
            for module, original in saved.values():
                module.weight.copy_(original)
