"""The model record store: where installed models' configs are kept, and how a backend plugs in.

A backend plugin registers a :class:`ModelRecordStoreFactory` through ``register_model_record_stores``;
the host picks one by name, gives it the database location and the validator of the frozen config
union, and calls ``open()`` / ``close()`` with the app's lifespan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from invoke_sdk.models import BaseModelType, ModelConfigBase, ModelFormat, ModelType

__all__ = [
    "ConfigValidator",
    "DuplicateModelError",
    "ModelRecordError",
    "ModelRecordStore",
    "ModelRecordStoreFactory",
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

    async def open(self) -> None:
        """Connect and bring the schema up to date."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...

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


@runtime_checkable
class ModelRecordStoreFactory(Protocol):
    """What a backend plugin registers: a name and a way to build its store."""

    name: str
    """The backend's name (the host's ``model_record_store`` setting picks one)."""

    def create(self, root: Path, validate: ConfigValidator) -> ModelRecordStore:
        """A store keeping its data under the data root ``root``; not opened yet."""
        ...
