"""What tells the SD bases apart: the text-encoder width that cross-attention reads (context dim)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from invoke_sdk.models import BaseModelType, ModelVariantType
from invoke_sdk.models.probing import TensorInfo

__all__ = ["base_from_context_dim", "context_dim", "variant_from_in_channels"]

_BY_CONTEXT_DIM = {
    768: BaseModelType.StableDiffusion1,  # CLIP ViT-L
    1024: BaseModelType.StableDiffusion2,  # OpenCLIP ViT-H
    2048: BaseModelType.StableDiffusionXL,  # ViT-L + ViT-bigG concatenated
    1280: BaseModelType.StableDiffusionXLRefiner,  # ViT-bigG only
}

_BY_IN_CHANNELS = {4: ModelVariantType.Normal, 9: ModelVariantType.Inpaint, 5: ModelVariantType.Depth}


def base_from_context_dim(dim: int | None) -> BaseModelType | None:
    """The base whose text encoder has width ``dim``; None when unknown."""
    return None if dim is None else _BY_CONTEXT_DIM.get(dim)


def variant_from_in_channels(channels: int | None) -> ModelVariantType:
    """normal (4 latent channels), inpaint (4 + 4 masked image + 1 mask) or depth (4 + 1)."""
    return _BY_IN_CHANNELS.get(channels or 4, ModelVariantType.Normal)


def context_dim(tensors: Mapping[str, TensorInfo], suffixes: Iterable[str], prefix: str = "") -> int | None:
    """The input width of the first (by name) cross-attention key projection whose name ends with a suffix."""
    ends = tuple(suffixes)
    for key in sorted(tensors):
        if key.startswith(prefix) and key.endswith(ends):
            shape = tensors[key].shape
            if len(shape) >= 2:
                return shape[1]
    return None
