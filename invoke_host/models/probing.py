"""Identify a model: check weight files for safety, then ask the registered probers in order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invoke_sdk.models.probing import ModelOnDisk, ModelProber, UnknownModelError, detect_file_format

from invoke_host.models.pickle_safety import UnsafeModelError, pickle_format, read_pickle_tensors, scan_pickle

__all__ = ["check_files", "probe_model"]

_WEIGHT_SUFFIXES = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".pkl", ".pickle"})
"""Names that say "weights": such a file must be a format the host can check, or the install is refused."""


def _every_file(folder: Path) -> list[Path]:
    """Every file under ``folder``, hidden ones and those behind symlinked folders too (each real folder once)."""
    seen: set[str] = set()
    found: list[Path] = []
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        found.extend(Path(top, f) for f in files if Path(top, f).is_file())
    return sorted(found)


def check_files(path: Path) -> None:
    """Check every file of the model by content before any prober or loader opens it.

    Safetensors and GGUF pass; every pickle (zip or bare, any protocol, whatever its name) is scanned; a file
    named like weights in another format, or a single-file model in another format, is refused. The
    message names the file (relative to a folder model).
    """
    single = path.is_file()
    for file in [path] if single else _every_file(path):
        label = file.name if single else file.relative_to(path).as_posix()
        fmt = detect_file_format(file)
        if fmt in {"safetensors", "gguf"}:
            continue
        if fmt == "pickle" or pickle_format(file) is not None:
            scan_pickle(file, label)
        elif single or file.suffix.lower() in _WEIGHT_SUFFIXES:
            raise UnsafeModelError(f"{label}: not a safetensors file, a checkpoint pickle or GGUF; refusing it")


def probe_model(path: Path, probers: Sequence[ModelProber]) -> dict[str, Any]:
    """The first prober's answer, in the order given; :class:`UnknownModelError` when none knows it."""
    model = ModelOnDisk(path, pickle_reader=read_pickle_tensors)
    for prober in probers:
        found = prober.probe(model)
        if found is not None:
            return {**found, "_prober": prober.name}
    raise UnknownModelError(f"unknown model: no prober recognised {path}")
