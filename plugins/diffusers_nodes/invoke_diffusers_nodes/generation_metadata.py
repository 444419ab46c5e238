"""The generation metadata the nodes fill on their own, with InvokeAI's core metadata field names.

When no ``core_metadata`` node is wired into the node that saves an image, denoise records what it did on the latents
it makes (``LatentsField.metadata``) and the decoder saves that with the image, so InvokeAI's "recall parameters"
finds model, seed, steps, CFG, scheduler, size, prompts and LoRAs. The prompts come with the conditioning: the prompt
nodes keep their text beside the embeddings (:data:`PROMPT_KEY`).
"""

from __future__ import annotations

from typing import Any

from invoke_sdk import InvocationContext, ModelIdentifierField

__all__ = ["CLIP_SKIP_KEY", "PROMPT_KEY", "STYLE_KEY", "decoded_metadata", "denoise_metadata", "model_metadata"]

PROMPT_KEY = "prompt"
"""The key of the prompt text in a conditioning dict a prompt node saves."""
STYLE_KEY = "style"
"""The key of an SDXL prompt's style text (the second encoder's prompt)."""
CLIP_SKIP_KEY = "clip_skip"
"""The key of how many CLIP layers were skipped."""


def _value(x: Any) -> str | None:
    return None if x is None else str(getattr(x, "value", x))


def model_metadata(context: InvocationContext, model: ModelIdentifierField) -> dict[str, Any]:
    """The model as InvokeAI's metadata names it: key, hash, name, base and type from its installed record.

    The submodel is left out: the metadata names the whole model, as InvokeAI's does.
    """
    config = context.models.get_config(model)
    found = {"key": model.key, "hash": getattr(config, "hash", None) or model.hash,
             "name": getattr(config, "name", None) or model.name,
             "base": _value(getattr(config, "base", None)) or model.base,
             "type": _value(getattr(config, "type", None)) or model.type}
    return {k: v for k, v in found.items() if v is not None}


def denoise_metadata(
    context: InvocationContext,
    *,
    unet: Any,
    positive: Any,
    negative: Any,
    seed: int | None,
    steps: int,
    cfg_scale: float,
    cfg_rescale_multiplier: float,
    scheduler: str,
    width: int,
    height: int,
    img2img: bool,
    denoising_start: float,
    sdxl: bool,
) -> dict[str, Any]:
    """What one denoise run did, for the image made from its latents."""
    mode = "img2img" if img2img else "txt2img"
    data: dict[str, Any] = {
        "generation_mode": f"sdxl_{mode}" if sdxl else mode,
        "model": model_metadata(context, unet.unet),
        "steps": steps,
        "cfg_scale": cfg_scale,
        "cfg_rescale_multiplier": cfg_rescale_multiplier,
        "scheduler": scheduler,
        "width": width,
        "height": height,
        "loras": [{"model": model_metadata(context, lora.lora), "weight": lora.weight} for lora in unet.loras],
    }
    if seed is not None:
        data["seed"] = seed
        data["rand_device"] = "cpu"  # noise is always made on the CPU (see noise_node)
    if img2img:
        data["strength"] = round(1 - denoising_start, 6)
    for key, conditioning in (("positive", positive), ("negative", negative)):
        if not isinstance(conditioning, dict):
            continue
        if isinstance(conditioning.get(PROMPT_KEY), str):
            data[f"{key}_prompt"] = conditioning[PROMPT_KEY]
        if sdxl and isinstance(conditioning.get(STYLE_KEY), str):
            data[f"{key}_style_prompt"] = conditioning[STYLE_KEY]
        if key == "positive" and isinstance(conditioning.get(CLIP_SKIP_KEY), int):
            data["clip_skip"] = conditioning[CLIP_SKIP_KEY]
    return data


def decoded_metadata(
    context: InvocationContext, made: dict[str, Any] | None, vae: ModelIdentifierField, width: int, height: int
) -> dict[str, Any] | None:
    """The metadata of an image decoded from latents ``made`` as their metadata says; None when it says nothing.

    The size is the image's; the VAE is named when it is not the main model's own.
    """
    if made is None:
        return None
    data = {**made, "width": width, "height": height}
    main = made.get("model")
    if not isinstance(main, dict) or main.get("key") != vae.key:
        data["vae"] = model_metadata(context, vae)
    return data
