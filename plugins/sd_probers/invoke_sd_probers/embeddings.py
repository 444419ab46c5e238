"""Textual inversion embeddings: A1111 files (``emb_params`` / ``string_to_param``), SDXL (``clip_l`` +
``clip_g``), and diffusers ``learned_embeds`` files and folders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from invoke_sdk.models import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.probing import ModelOnDisk, Recognised, TensorInfo

from invoke_sd_probers.architecture import base_from_context_dim

__all__ = ["EmbeddingFileProber", "EmbeddingFolderProber", "embedding_base"]

_BASES = (BaseModelType.StableDiffusion1, BaseModelType.StableDiffusion2, BaseModelType.StableDiffusionXL)
_MAX_TENSORS = 4  # an embedding is one or two small tensors; anything bigger is a model


def embedding_base(tensors: Mapping[str, TensorInfo]) -> BaseModelType | None:
    """The base an embedding's token vectors fit, or None when the tensors are not an embedding."""
    if not tensors or len(tensors) > _MAX_TENSORS:
        return None
    if "clip_l" in tensors and "clip_g" in tensors:
        return BaseModelType.StableDiffusionXL
    for key in ("emb_params", "string_to_param.*"):
        if key in tensors:
            return base_from_context_dim(tensors[key].shape[-1])
    if len(tensors) == 1:  # diffusers learned_embeds: {"<token>": [dim] or [n, dim]}
        (info,) = tensors.values()
        if 1 <= len(info.shape) <= 2 and info.shape[-1] in (768, 1024):
            return base_from_context_dim(info.shape[-1])
    return None


class EmbeddingFileProber:
    name = "sd.embedding.file"
    order = 20
    recognises = (Recognised(ModelType.TextualInversion, ModelFormat.EmbeddingFile, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder:
            return None
        base = embedding_base(model.tensors)
        if base is None:
            return None
        return {"type": ModelType.TextualInversion, "format": ModelFormat.EmbeddingFile, "base": base}


class EmbeddingFolderProber:
    name = "sd.embedding.folder"
    order = 20
    recognises = (Recognised(ModelType.TextualInversion, ModelFormat.EmbeddingFolder, _BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        for file in ("learned_embeds.safetensors", "learned_embeds.bin"):
            if model.has(file):
                base = embedding_base(model.header_of(Path(model.path, file))[0])
                if base is not None:
                    return {"type": ModelType.TextualInversion, "format": ModelFormat.EmbeddingFolder, "base": base}
        return None
