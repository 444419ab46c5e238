"""Models a node loads itself from a file or folder (``context.models.load_local_model``), kept in the model cache.

Such a model has no record: it is cached under a key made from its resolved path, a content check of the file
(imohash, size and modification time) and the node's loader function, so a changed file or another loader is a
different cache entry, and the same file loaded the same way is loaded once. It is measured, moved to the execution
device and evicted like any installed model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke_sdk.context import ModelFileLoader

from invoke_host.models.hashing import imohash_model, model_size

__all__ = ["FileModelConfig", "FileModelLoader", "file_model_config"]


@dataclass(frozen=True)
class FileModelConfig:
    """What the model cache keeps about a file model: its key, name and path, and (not compared) its loader."""

    key: str
    name: str
    path: str
    loader: ModelFileLoader = field(compare=False, repr=False)
    type: str = "file"


def _loader_identity(loader: ModelFileLoader) -> str:
    function = getattr(loader, "__func__", loader)  # a bound method: its function
    code = getattr(function, "__code__", None)
    where = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else type(function).__qualname__
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', repr(function))}@{where}"


def file_model_config(path: Path | str, loader: ModelFileLoader) -> FileModelConfig:
    """The cache config of ``path`` loaded by ``loader``; ``ValueError`` when there is nothing at the path."""
    if not callable(loader):
        raise TypeError(f"the loader must be a function taking the model's path, not {type(loader).__name__}")
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise ValueError(f"there is no model file or folder at {resolved}")
    stat = resolved.stat()
    identity = "\n".join(
        (str(resolved), imohash_model(resolved), str(model_size(resolved)), str(stat.st_mtime_ns),
         _loader_identity(loader))
    )
    key = "file-" + hashlib.sha256(identity.encode()).hexdigest()[:32]
    return FileModelConfig(key=key, name=resolved.name, path=str(resolved), loader=loader)


class FileModelLoader:
    """The model cache's loader for every file model: it calls the node's own loader on the path.

    ``devices`` answers :meth:`device_available` (the host asks a registered model loader, which knows its tensor
    library; the host itself imports none).
    """

    model_type = "file"
    model_format = "file"

    def __init__(self, devices: Callable[[str], bool]) -> None:
        self._devices = devices

    def load(self, config: Any, submodel: str | None, *, dtype: str) -> Any:
        return config.loader(Path(config.path))

    def device_available(self, device: str) -> bool:
        return self._devices(device)
