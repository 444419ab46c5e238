"""The PostgreSQL storage backend (backend name ``postgres``): one database shared by every node of a deployment."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from invoke_postgres_storage.url import masked_url

if TYPE_CHECKING:
    from invoke_postgres_storage.backend import PostgresBackend
    from invoke_postgres_storage.migrator import Migration

__all__ = ["Migration", "PostgresBackend", "masked_url"]

# Imported on first use: the host imports this package for its entry point (invoke_postgres_storage.plugin) on
# every start, and these modules import psycopg (about 0.5 s of CPU) that a host on SQLite never uses.
_LAZY = {"PostgresBackend": "invoke_postgres_storage.backend", "Migration": "invoke_postgres_storage.migrator"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
