"""The embedded SQLite storage backend (backend name ``sqlite``): one database file under the data root."""

from invoke_sqlite_storage.backend import SqliteBackend
from invoke_sqlite_storage.migrator import Migration

__all__ = ["Migration", "SqliteBackend"]
