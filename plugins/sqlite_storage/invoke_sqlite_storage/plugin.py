"""Entry point: offers the SQLite backend to the host under the name ``sqlite``."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterStorageBackend
from invoke_sdk.storage import StorageBackend, StorageBackendFactory, StorageOptions

__all__ = ["register_storage_backends"]


def _create(options: StorageOptions) -> StorageBackend:
    # Imported here so that loading the plugin (every start, every CLI command) stays cheap.
    from invoke_sqlite_storage.backend import SqliteBackend

    return SqliteBackend.from_options(options)


@hookimpl
def register_storage_backends(register: RegisterStorageBackend) -> None:
    register(StorageBackendFactory(name="sqlite", create=_create, description="SQLite database under the data root"))
