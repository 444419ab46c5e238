"""Entry point: offers the PostgreSQL backend to the host under the name ``postgres``."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterStorageBackend
from invoke_sdk.storage import StorageBackend, StorageBackendFactory, StorageOptions

__all__ = ["register_storage_backends"]


def _create(options: StorageOptions) -> StorageBackend:
    # Imported here so that loading the plugin (every start, every CLI command) does not import psycopg.
    from invoke_postgres_storage.backend import PostgresBackend

    return PostgresBackend.from_options(options)


@hookimpl
def register_storage_backends(register: RegisterStorageBackend) -> None:
    register(StorageBackendFactory(
        name="postgres", create=_create, description="PostgreSQL database named by database_url (many nodes)"
    ))
