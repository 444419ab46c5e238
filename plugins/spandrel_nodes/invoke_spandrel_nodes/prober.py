"""Recognising spandrel models from their headers: tensor names and shapes, no weights read.

spandrel's own detection runs on a state dict of empty ``meta`` tensors with the file's shapes, so every
architecture it knows is recognised the way it would load it. Asked after the Stable Diffusion probers.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised

__all__ = ["SpandrelProber", "detect_architecture"]

_MAX_TENSORS = 20_000  # far above any upscaler; a bigger file is something else and is not worth building


def detect_architecture(shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The id of the spandrel architecture these tensor names and shapes belong to, or None."""
    import torch

    from invoke_spandrel_nodes.spandrel_import import import_spandrel

    spandrel = import_spandrel()
    state = {name: torch.empty(shape, device="meta") for name, shape in shapes.items()}
    state = spandrel.canonicalize_state_dict(state)
    for support in spandrel.MAIN_REGISTRY.architectures("detection"):
        try:
            if support.detect(state):
                return str(support.architecture.id)
        except (KeyError, IndexError, ValueError, RuntimeError, TypeError):
            continue  # a detector that assumed more of the file than it has: not this architecture
    return None


class SpandrelProber:
    name = "spandrel.image_to_image"
    order = 80
    recognises = (Recognised(ModelType.SpandrelImageToImage, ModelFormat.Checkpoint, (BaseModelType.Any,)),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        tensors = model.tensors
        if not tensors or len(tensors) > _MAX_TENSORS:
            return None
        try:
            architecture = detect_architecture({name: info.shape for name, info in tensors.items()})
        except RuntimeError:
            return None  # spandrel is not installed: these models are not recognised here
        if architecture is None:
            return None
        return {"type": ModelType.SpandrelImageToImage, "format": ModelFormat.Checkpoint, "base": BaseModelType.Any,
                "architecture": architecture}
