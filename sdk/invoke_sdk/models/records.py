"""The model record store: where installed models' configs are kept.

It is one store of the storage backend (:attr:`invoke_sdk.storage.StorageBackend.model_records`), so
records live in the same database as the queue and the images and are opened, migrated and closed
with it. The backend reads stored records back through the validator the host gives it
(:attr:`invoke_sdk.storage.StorageOptions.validate_model_config`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from invoke_sdk.models.configs import BaseModelType, ModelConfigBase, ModelFormat, ModelType

__all__ = [
    "ConfigValidator",
    "DuplicateModelError",
    "ModelRecordError",
    "ModelRecordStore",
    "UnknownModelKeyError",
]

ConfigValidator = Callable[[Mapping[str, Any]], ModelConfigBase]
"""Turns a stored dict back into the right config class (the frozen registry's union adapter)."""


class ModelRecordError(Exception):
    """Base class of record store errors."""


class UnknownModelKeyError(ModelRecordError, KeyError):
    """No record has this key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no model with key {self.key!r} is installed"


class DuplicateModelError(ModelRecordError):
    """A record with this key (same content) or this path already exists; ``existing`` is its key."""

    def __init__(self, message: str, existing: str) -> None:
        super().__init__(message)
        self.existing = existing


@runtime_checkable
class ModelRecordStore(Protocol):
    """Keeps model configs. Every method is atomic: a failure leaves no half-written record."""

    async def add(self, config: ModelConfigBase) -> ModelConfigBase:
        """Store a new record; :class:`DuplicateModelError` if its key or path is taken."""
        ...

    async def get(self, key: str) -> ModelConfigBase:
        """The record with ``key``; :class:`UnknownModelKeyError` if there is none."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether a record has ``key``."""
        ...

    async def update(self, key: str, changes: Mapping[str, Any]) -> ModelConfigBase:
        """Apply a sparse change (only the given fields), validate the result, store and return it.

        The key cannot change. A change that makes the record invalid raises pydantic's
        ``ValidationError`` and stores nothing.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the record; :class:`UnknownModelKeyError` if there is none."""
        ...

    async def search(
        self,
        *,
        name: str | None = None,
        base: BaseModelType | None = None,
        type: ModelType | None = None,  # noqa: A002 - the field's name
        format: ModelFormat | None = None,  # noqa: A002 - the field's name
    ) -> list[ModelConfigBase]:
        """Records matching every given filter (``name`` exactly), sorted by name then key."""
        ...

    async def search_by_path(self, path: str) -> list[ModelConfigBase]:
        """Records whose ``path`` is exactly ``path``."""
        ...

    async def search_by_hash(self, hash: str) -> list[ModelConfigBase]:  # noqa: A002 - the field's name
        """Records whose content ``hash`` is ``hash``."""
        ...

