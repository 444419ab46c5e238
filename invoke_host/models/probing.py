"""Identify a model: check weight files for safety, then ask the registered probers in order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invoke_sdk.model_probing import ModelOnDisk, ModelProber, UnknownModelError, detect_file_format

from invoke_host.models.hashing import model_files
from invoke_host.models.pickle_safety import UnsafeModelError, read_pickle_tensors, scan_pickle

__all__ = ["check_files", "probe_model"]


def check_files(path: Path) -> None:
    """Scan every pickle among the model's weight files before any prober or loader opens it."""
    files = [p for p in model_files(path) if p.suffix.lower() in {".ckpt", ".pt", ".pth", ".bin", ".safetensors"}]
    if path.is_file():
        files = [path]
    for file in files:
        fmt = detect_file_format(file)
        if fmt == "pickle":
            scan_pickle(file)
        elif fmt == "unknown" and path.is_file():
            raise UnsafeModelError(f"{file.name}: not a safetensors file, a checkpoint pickle or GGUF")


def probe_model(path: Path, probers: Sequence[ModelProber]) -> dict[str, Any]:
    """The first prober's answer, in the order given; :class:`UnknownModelError` when none knows it."""
    model = ModelOnDisk(path, pickle_reader=read_pickle_tensors)
    for prober in probers:
        found = prober.probe(model)
        if found is not None:
            return {**found, "_prober": prober.name}
    raise UnknownModelError(f"unknown model: no prober recognised {path}")
