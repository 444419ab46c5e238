"""The PostgreSQL storage backend (backend name ``postgres``): one database shared by every node of a deployment."""

from invoke_postgres_storage.backend import PostgresBackend
from invoke_postgres_storage.migrator import Migration
from invoke_postgres_storage.url import masked_url

__all__ = ["Migration", "PostgresBackend", "masked_url"]
