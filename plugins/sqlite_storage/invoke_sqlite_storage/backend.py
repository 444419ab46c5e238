"""The SQLite backend: one database file under the data root, migrated on start, holding every store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from invoke_sdk.models.records import ConfigValidator
from invoke_sdk.storage import StorageError, StorageOptions

from invoke_sqlite_storage.database import Database
from invoke_sqlite_storage.images import SqliteImageRecordStore
from invoke_sqlite_storage.migrations import MIGRATIONS
from invoke_sqlite_storage.migrator import Migration, corrupt_database_error, is_corruption, migrate
from invoke_sqlite_storage.model_records import SqliteModelRecordStore
from invoke_sqlite_storage.session_queue import SqliteSessionQueueStore
from invoke_sqlite_storage.workflows import SqliteWorkflowStore

__all__ = ["DB_FILENAME", "SqliteBackend"]

logger = logging.getLogger("invoke_sqlite_storage")

DB_FILENAME = "invoke.db"


class SqliteBackend:
    """Implements :class:`invoke_sdk.storage.StorageBackend` on one SQLite file."""

    name = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        readers: int = 2,
        migrations: Sequence[Migration] = MIGRATIONS,
        validate_model_config: ConfigValidator | None = None,
    ) -> None:
        self.path = path
        self.backup_dir = path.parent / "backups"
        self._migrations = tuple(migrations)
        self.db = Database(path, readers=readers)
        self._session_queue = SqliteSessionQueueStore(self.db)
        self._images = SqliteImageRecordStore(self.db)
        self._model_records = SqliteModelRecordStore(self.db, validate_model_config)
        self._workflows = SqliteWorkflowStore(self.db)

    @classmethod
    def from_options(cls, options: StorageOptions) -> SqliteBackend:
        path = Path(options.settings.get("path", options.root / "databases" / DB_FILENAME))
        return cls(
            path, readers=int(options.settings.get("readers", 2)), validate_model_config=options.validate_model_config
        )

    @property
    def session_queue(self) -> SqliteSessionQueueStore:
        return self._session_queue

    @property
    def images(self) -> SqliteImageRecordStore:
        return self._images

    @property
    def model_records(self) -> SqliteModelRecordStore:
        return self._model_records

    @property
    def workflows(self) -> SqliteWorkflowStore:
        return self._workflows

    async def start(self) -> None:
        # Creating folders and migrating touch the disk: a worker thread, not the event loop.
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        applied = await asyncio.to_thread(migrate, self.path, self._migrations, self.backup_dir)
        if applied:
            logger.info("Database %s migrated to version %d", self.path, applied[-1])
        try:
            await self.db.open()
        except sqlite3.DatabaseError as exc:
            await self.db.close()
            if is_corruption(exc):
                raise corrupt_database_error(
                    self.path, self.backup_dir, f"is damaged or is not a SQLite database ({exc})"
                ) from exc
            raise StorageError(f"the database {self.path} cannot be opened: {exc}") from exc

    async def stop(self) -> None:
        self._images.close()
        await self.db.close()
