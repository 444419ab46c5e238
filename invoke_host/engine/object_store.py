"""Objects kept between nodes (tensors, conditioning): files under the data root plus an in-memory LRU."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["LEFTOVER_AGE_S", "DiskObjectStore", "ObjectNotFoundError", "conditioning_store", "tensor_store"]

logger = logging.getLogger("invoke_host.engine")

LEFTOVER_AGE_S = 600.0
"""How long a temporary file must have been left untouched before a new store counts it as a dead save's: far
longer than any save takes, so a save in flight in another process on the same data root is never removed."""


class ObjectNotFoundError(KeyError):
    """No stored object has this name."""

    def __str__(self) -> str:
        return str(self.args[0])


class DiskObjectStore:
    """Saves objects to ``folder`` (written atomically) and keeps the most recent ones in memory.

    A save writes ``.<name>.<random>.part`` and renames it into place; creating the store removes such
    files that a killed process left, once they are older than any save takes (another process on the same
    data root, a server beside ``invoke-host run``, may be in the middle of one).
    """

    def __init__(
        self,
        folder: Path,
        prefix: str,
        *,
        save: Callable[[Any, BinaryIO], None],
        load: Callable[[BinaryIO], Any],
        memory_items: int = 16,
    ) -> None:
        self.folder = folder
        self.prefix = prefix
        self._save = save
        self._load = load
        self._memory_items = memory_items
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._name = re.compile(rf"^{re.escape(prefix)}_[0-9a-f]{{32}}$")
        self._part = re.compile(rf"^\.{re.escape(prefix)}_[0-9a-f]{{32}}\.[A-Za-z0-9_]+\.part$")
        self.remove_leftovers()

    def remove_leftovers(self) -> list[Path]:
        """Remove this store's temporary files of saves that never finished; return what was removed."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        removed = []
        written_before = time.time() - LEFTOVER_AGE_S
        for entry in entries:
            if (self._part.match(entry.name) and entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < written_before):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
        if removed:
            logger.info(
                "Removed %d unfinished %s file(s) from %s that saves interrupted by a crash or kill left behind",
                len(removed), self.prefix, self.folder,
            )
        return removed

    def _remember(self, name: str, obj: Any) -> None:
        with self._lock:
            self._memory[name] = obj
            self._memory.move_to_end(name)
            while len(self._memory) > self._memory_items:
                self._memory.popitem(last=False)

    def save(self, obj: Any) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex}"
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                self._save(obj, f)
            os.replace(tmp, self.folder / name)
        except BaseException:
            # A failed save leaves no partial file behind.
            Path(tmp).unlink(missing_ok=True)
            raise
        self._remember(name, obj)
        return name

    def exists(self, name: str) -> bool:
        """Whether ``load(name)`` would find the object (in memory, or its file): one stat, no read."""
        if not self._name.match(name):
            return False
        with self._lock:
            if name in self._memory:
                return True
        return (self.folder / name).is_file()

    def load(self, name: str) -> Any:
        if not self._name.match(name):
            raise ObjectNotFoundError(f"{name!r} is not a {self.prefix} name (expected {self.prefix}_<32 hex digits>)")
        with self._lock:
            if name in self._memory:
                self._memory.move_to_end(name)
                return self._memory[name]
        path = self.folder / name
        try:
            with path.open("rb") as f:
                obj = self._load(f)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"no {self.prefix} named {name!r} in {self.folder}") from None
        self._remember(name, obj)
        return obj


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise RuntimeError("storing tensors needs torch; install it with `pip install torch==2.13.0`") from exc
    return torch


def tensor_store(root: Path, memory_items: int = 16) -> DiskObjectStore:
    """Tensors under ``<root>/tensors``, loaded with ``weights_only=True`` (plain tensors only)."""
    return DiskObjectStore(
        root / "tensors", "tensor",
        save=lambda obj, f: _torch().save(obj, f),
        load=lambda f: _torch().load(f, weights_only=True),
        memory_items=memory_items,
    )


def conditioning_store(root: Path, memory_items: int = 16) -> DiskObjectStore:
    """Conditioning under ``<root>/conditioning``.

    Conditioning objects are dataclasses holding tensors, which ``weights_only`` loading refuses;
    these files are written only by this host into its own data root, so full loading is used.
    """
    return DiskObjectStore(
        root / "conditioning", "conditioning",
        save=lambda obj, f: _torch().save(obj, f),
        load=lambda f: _torch().load(f, weights_only=False),
        memory_items=memory_items,
    )
