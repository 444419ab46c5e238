"""Entry-point module: registers the SQLite model record store. Light: aiosqlite is imported on create()."""

from __future__ import annotations

from pathlib import Path

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterModelRecordStore
from invoke_sdk.model_records import ConfigValidator, ModelRecordStore

__all__ = ["SqliteModelRecordStoreFactory", "register_model_record_stores"]


class SqliteModelRecordStoreFactory:
    """Builds the store on ``<root>/models.db``."""

    name = "sqlite"

    def create(self, root: Path, validate: ConfigValidator) -> ModelRecordStore:
        from model_records_sqlite.store import SqliteModelRecordStore

        return SqliteModelRecordStore(root / "models.db", validate)


@hookimpl
def register_model_record_stores(register: RegisterModelRecordStore) -> None:
    register(SqliteModelRecordStoreFactory())
