"""Legacy pickle checkpoints: scanned with picklescan before anything touches them, then read with
``torch.load(weights_only=True)``. A dangerous import or a file the scanner cannot parse is refused."""

from __future__ import annotations

import logging
import pickletools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from invoke_sdk.model_probing import TensorInfo, detect_file_format

__all__ = ["UnsafeModelError", "read_pickle_tensors", "scan_pickle"]

logger = logging.getLogger("invoke_host.models")


class UnsafeModelError(ValueError):
    """A model file the host refuses to touch (dangerous pickle imports, or a pickle it cannot scan)."""


def _first_pickle_parses(path: Path) -> bool:
    # picklescan reports an unparseable stream with no globals as clean; we want "parsed and clean".
    with path.open("rb") as fh:
        if fh.read(4) == b"PK\x03\x04":
            return True  # a zip archive: picklescan parses the pickle inside it
        fh.seek(0)
        try:
            for _op, _arg, _pos in pickletools.genops(fh):
                pass
        except Exception:  # noqa: BLE001 - any parse failure means "cannot be scanned"
            return False
    return True


def scan_pickle(path: Path) -> None:
    """Raise :class:`UnsafeModelError` unless picklescan finds the file clean and could parse all of it."""
    from picklescan.scanner import scan_file_path

    if not _first_pickle_parses(path):
        raise UnsafeModelError(f"{path.name}: the pickle could not be parsed, so it cannot be scanned; refusing it")

    try:
        result = scan_file_path(str(path))
    except Exception as exc:
        raise UnsafeModelError(f"{path.name}: the pickle could not be scanned ({exc}); refusing to load it") from exc
    if result.infected_files or result.issues_count:
        globals_ = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety.value == "dangerous"})
        raise UnsafeModelError(
            f"{path.name}: the pickle imports dangerous code ({', '.join(globals_) or 'unsafe globals'}); "
            "it was not loaded. Use a .safetensors version of this model."
        )
    if result.scan_err:
        raise UnsafeModelError(f"{path.name}: the pickle could not be fully scanned; refusing to load it")


def _flatten(prefix: str, value: Any, out: dict[str, TensorInfo]) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        out[prefix] = TensorInfo(shape=tuple(value.shape), dtype=str(value.dtype).removeprefix("torch."))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)


def read_pickle_tensors(path: Path) -> dict[str, TensorInfo]:
    """Tensor names and shapes of a pickle checkpoint: scanned first, loaded with ``weights_only=True``.

    Nested dicts are flattened with dots; a top-level ``state_dict`` wrapper is removed.
    """
    if detect_file_format(path) != "pickle":
        raise UnsafeModelError(f"{path.name}: not a pickle")
    scan_pickle(path)
    try:
        import torch
    except ImportError as exc:
        raise UnsafeModelError(f"{path.name}: reading legacy pickle checkpoints needs torch installed") from exc
    try:
        # mmap keeps zip-format checkpoints from being read into memory; old formats cannot be mapped.
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnsafeModelError(f"{path.name}: torch refused to load it safely ({exc})") from exc
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    out: dict[str, TensorInfo] = {}
    _flatten("", data, out)
    return out
