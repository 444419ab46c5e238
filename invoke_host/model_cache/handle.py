"""The handle ``context.models.load(...)`` returns: a context manager that locks a model on the device."""

from __future__ import annotations

from typing import Any

from invoke_host.model_cache.cache import CacheEntry, ModelCache

__all__ = ["ModelHandle"]


class ModelHandle:
    """A cached model that a node may use: ``with handle as model`` locks it on the execution device.

    The handle remembers how to load the model rather than the object itself, so entering it after
    the cache dropped the model loads it again. Entering nests: each ``with`` adds one lock.
    """

    def __init__(self, cache: ModelCache, config: Any, submodel: str | None, loader: Any) -> None:
        self._cache = cache
        self.config = config
        self.submodel = submodel
        self._loader = loader
        self._held: list[CacheEntry] = []

    @property
    def key(self) -> str:
        """The model's key."""
        return str(self.config.key)

    @property
    def model(self) -> Any:
        """The model object wherever it is now (RAM or device), without locking it; loads it if it was dropped."""
        return self._cache.get(self.key, self.submodel, self.config, self._loader).model

    @property
    def execution_device(self) -> str:
        """The device the model runs on inside the ``with`` block."""
        return self._cache.execution_device(self._loader)

    def __enter__(self) -> Any:
        entry = self._cache.lock(self.key, self.submodel, self.config, self._loader)
        self._held.append(entry)
        return entry.model

    def __exit__(self, *exc_info: object) -> None:
        self._cache.unlock(self._held.pop())

    def __repr__(self) -> str:
        part = f" ({self.submodel})" if self.submodel else ""
        return f"<ModelHandle {self.key}{part}>"
