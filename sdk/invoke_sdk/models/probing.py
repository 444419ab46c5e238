"""Identifying a model from its headers: the prober protocol and the read-only view probers get.

Probers never load weights. They read what :class:`ModelOnDisk` offers: the file list of a folder,
its JSON configs, and the tensor names, shapes and dtypes of a weight file (from the safetensors
JSON header; for a legacy pickle, from a reader the host supplies only after the file passed its
safety scan). The host asks probers in a deterministic order (``order``, then ``name``); the first
one that returns a result wins.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from invoke_sdk.models.configs import BaseModelType, ModelFormat, ModelType

__all__ = [
    "SAFETENSORS_HEADER_LIMIT",
    "FileFormat",
    "ModelOnDisk",
    "ModelProber",
    "PickleReader",
    "ProbeError",
    "Recognised",
    "TensorInfo",
    "UnknownModelError",
    "detect_file_format",
    "read_safetensors_header",
]

SAFETENSORS_HEADER_LIMIT = 100 * 1024 * 1024
"""A safetensors header larger than this is refused as malformed (the format's own limit)."""

WEIGHT_SUFFIXES = frozenset({".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"})

FileFormat = Literal["safetensors", "pickle", "gguf", "unknown"]
"""A weight file's format, decided by its first bytes and never by its name."""


class ProbeError(ValueError):
    """A file that claims a format but is malformed (a broken safetensors header, unreadable JSON)."""


class UnknownModelError(ValueError):
    """No prober recognised the model; the message names the path."""


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's shape and dtype, read from a header."""

    shape: tuple[int, ...]
    dtype: str


PickleReader = Callable[[Path], Mapping[str, TensorInfo]]
"""What the host hands a :class:`ModelOnDisk` to read a pickle's tensor names and shapes (after scanning it)."""


def detect_file_format(path: Path) -> FileFormat:
    """Decide a weight file's format from its first bytes: a pickle named ``.safetensors`` is a pickle."""
    with path.open("rb") as fh:
        head = fh.read(9)
    if len(head) == 9:
        (length,) = struct.unpack("<Q", head[:8])
        if 2 <= length <= SAFETENSORS_HEADER_LIMIT and head[8:9] == b"{":
            return "safetensors"
    if head[:4] == b"GGUF":
        return "gguf"
    # torch.save writes a zip archive; older files are a bare pickle starting with the PROTO opcode.
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Tensor infos and the ``__metadata__`` of a safetensors file, from its JSON header only."""
    with path.open("rb") as fh:
        raw_len = fh.read(8)
        if len(raw_len) != 8:
            raise ProbeError(f"{path}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", raw_len)
        if length > SAFETENSORS_HEADER_LIMIT:
            raise ProbeError(f"{path}: safetensors header of {length} bytes is larger than the format allows")
        raw = fh.read(length)
    if len(raw) != length:
        raise ProbeError(f"{path}: the safetensors header is cut short (the file is truncated)")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProbeError(f"{path}: the safetensors header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ProbeError(f"{path}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if not isinstance(entry, dict) or "shape" not in entry:
            raise ProbeError(f"{path}: tensor {name!r} has no shape in the safetensors header")
        tensors[name] = TensorInfo(shape=tuple(int(d) for d in entry["shape"]), dtype=str(entry.get("dtype", "")))
    return tensors, {str(k): str(v) for k, v in metadata.items()}


class ModelOnDisk:
    """A read-only view of a model file or folder for probers: names, configs and tensor headers.

    Everything is read lazily and at most once; nothing here loads tensor data.
    """

    def __init__(self, path: Path, *, pickle_reader: PickleReader | None = None) -> None:
        self.path = path
        self._pickle_reader = pickle_reader

    @property
    def name(self) -> str:
        """The file or folder name without a weight suffix."""
        return self.path.stem if self.path.is_file() else self.path.name

    @property
    def is_folder(self) -> bool:
        """Whether the model is a folder (diffusers / transformers layout)."""
        return self.path.is_dir()

    def has(self, relative: str) -> bool:
        """Whether the folder holds ``relative`` (a path with forward slashes)."""
        return self.is_folder and (self.path / relative).exists()

    def json(self, relative: str) -> dict[str, Any] | None:
        """A JSON config inside the folder, or ``None`` when absent."""
        target = self.path / relative
        if not self.is_folder or not target.is_file():
            return None
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProbeError(f"{target}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ProbeError(f"{target}: expected a JSON object")
        return data

    def weight_files(self) -> list[Path]:
        """The weight files: the file itself, or every weight file inside the folder, sorted."""
        if not self.is_folder:
            return [self.path]
        return sorted(p for p in self.path.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)

    @cached_property
    def file_format(self) -> FileFormat:
        """The single file's format, by content (``unknown`` for a folder)."""
        return "unknown" if self.is_folder else detect_file_format(self.path)

    @cached_property
    def _header(self) -> tuple[dict[str, TensorInfo], dict[str, str]]:
        return self.header_of(self.path) if not self.is_folder else ({}, {})

    def header_of(self, file: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
        """Tensor infos and metadata of one weight file, whatever its format."""
        fmt = detect_file_format(file)
        if fmt == "safetensors":
            return read_safetensors_header(file)
        if fmt == "pickle":
            if self._pickle_reader is None:
                raise ProbeError(f"{file}: a pickle file, and no safe reader for pickles is available")
            return dict(self._pickle_reader(file)), {}
        raise ProbeError(f"{file}: not a safetensors file or a pickle (format {fmt!r})")

    @property
    def tensors(self) -> Mapping[str, TensorInfo]:
        """Tensor names to shapes of a single-file model (empty for a folder)."""
        return self._header[0]

    @property
    def metadata(self) -> Mapping[str, str]:
        """The safetensors ``__metadata__`` of a single-file model."""
        return self._header[1]

    def shape(self, key: str) -> tuple[int, ...] | None:
        """One tensor's shape, or ``None`` when the file has no such tensor."""
        info = self.tensors.get(key)
        return info.shape if info is not None else None

    def any_key(self, *prefixes: str) -> bool:
        """Whether some tensor name starts with one of ``prefixes``."""
        return any(k.startswith(prefixes) for k in self.tensors)


@dataclass(frozen=True)
class Recognised:
    """One (type, format) a prober can identify, with the bases it can tell apart."""

    type: ModelType
    format: ModelFormat
    bases: tuple[BaseModelType, ...] = ()


@runtime_checkable
class ModelProber(Protocol):
    """Identifies models of the kinds it declares, from headers and configs only.

    ``probe`` returns the config fields it found (at least ``type``, ``format`` and ``base``; main
    models add ``variant``, ``prediction_type`` ...) or ``None`` when the model is not one of its
    kinds. It must not load weights or execute anything from the model. The host adds the common
    fields (key, hash, name, path, source, size), applies the user's overrides, and validates the
    result against the registered config classes.
    """

    name: str
    """Unique name; two probers with one name conflict."""
    order: int
    """Probers are asked by ascending ``order``, then by ``name``: specific probers use lower numbers."""
    recognises: tuple[Recognised, ...]
    """What this prober can identify (shown to people; not used to skip it)."""

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        """The fields identified, or ``None`` if this is not a model this prober knows."""
        ...
