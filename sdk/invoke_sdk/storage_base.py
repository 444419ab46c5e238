"""What every backend shares, database and file storage alike: the options the host creates it with,
and the error it raises when it cannot do what was asked.

Backend authors import these from :mod:`invoke_sdk.storage`; they live here, below both
:mod:`invoke_sdk.storage` and :mod:`invoke_sdk.images`, because the storage backend holds the image
record store while the image stores raise and take these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke_sdk.models.records import ConfigValidator

__all__ = ["StorageError", "StorageOptions", "StorageUnavailableError", "StorageValueError"]


class StorageError(RuntimeError):
    """A backend cannot do what was asked (cannot open, cannot migrate, ...); the message says why."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached right now (it went away and reconnecting has not succeeded yet).

    Nothing was done: the caller may try again later. The host answers an API request that meets it with 503
    and the message, and a queue worker keeps retrying; raise it only when retrying could succeed.
    """


class StorageValueError(StorageError, ValueError):
    """The database cannot hold or compare a value it was given (PostgreSQL text cannot contain a NUL character,
    say); nothing was stored. The host answers an API request that meets it with 400 and the message."""


@dataclass(frozen=True)
class StorageOptions:
    """What the host tells a backend when it creates it."""

    root: Path
    """The data root; a backend keeps its files under it."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Backend-specific settings (free-form, may be empty)."""
    validate_model_config: ConfigValidator | None = None
    """Turns a stored model config dict back into its config class (the frozen registry's union); the
    model-record store needs it to read records. None where no model configs are registered."""
