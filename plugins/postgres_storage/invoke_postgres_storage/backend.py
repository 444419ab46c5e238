"""The PostgreSQL backend: one database named by a URL, migrated on start, holding every store.

Any number of nodes (API nodes, workers) may use one database at once: migrations serialise on an advisory lock,
claims skip rows another node holds, and the pool reconnects when the server comes back (see ``database``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from invoke_sdk.models.records import ConfigValidator
from invoke_sdk.storage import StorageError, StorageOptions

from invoke_postgres_storage.database import Database
from invoke_postgres_storage.images import PostgresImageRecordStore
from invoke_postgres_storage.migrations import MIGRATIONS
from invoke_postgres_storage.migrator import Migration, migrate
from invoke_postgres_storage.model_records import PostgresModelRecordStore
from invoke_postgres_storage.session_queue import PostgresSessionQueueStore
from invoke_postgres_storage.url import is_postgres_url, masked_url
from invoke_postgres_storage.workflows import PostgresWorkflowStore

__all__ = ["PostgresBackend"]

logger = logging.getLogger("invoke_postgres_storage")


class PostgresBackend:
    """Implements :class:`invoke_sdk.storage.StorageBackend` on one PostgreSQL database."""

    name = "postgres"

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 10,
        retry_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        migrations: Sequence[Migration] = MIGRATIONS,
        validate_model_config: ConfigValidator | None = None,
    ) -> None:
        self.url = url
        self._migrations = tuple(migrations)
        self.db = Database(
            url, max_connections=max_connections, retry_timeout_s=retry_timeout_s, connect_timeout_s=connect_timeout_s
        )
        self._session_queue = PostgresSessionQueueStore(self.db)
        self._images = PostgresImageRecordStore(self.db)
        self._model_records = PostgresModelRecordStore(self.db, validate_model_config)
        self._workflows = PostgresWorkflowStore(self.db)
        self.applied: list[int] = []
        """The migrations this node applied when it started (none when another node had, or nothing was due)."""

    @classmethod
    def from_options(cls, options: StorageOptions) -> PostgresBackend:
        url = str(options.settings.get("url") or "")
        if not is_postgres_url(url):
            raise StorageError(
                f"the postgres storage backend needs a postgresql:// URL in database_url "
                f"(INVOKE_HOST_DATABASE_URL), not {masked_url(url)!r}"
            )
        return cls(
            url,
            max_connections=int(options.settings.get("max_connections", 10)),
            retry_timeout_s=float(options.settings.get("retry_timeout_s", 10.0)),
            connect_timeout_s=float(options.settings.get("connect_timeout_s", 5.0)),
            validate_model_config=options.validate_model_config,
        )

    @property
    def session_queue(self) -> PostgresSessionQueueStore:
        return self._session_queue

    @property
    def images(self) -> PostgresImageRecordStore:
        return self._images

    @property
    def model_records(self) -> PostgresModelRecordStore:
        return self._model_records

    @property
    def workflows(self) -> PostgresWorkflowStore:
        return self._workflows

    async def start(self) -> None:
        conn = await self.db.connect()
        try:
            self.applied = await migrate(conn, self._migrations, self.db.shown)
        finally:
            await conn.close()
        if self.applied:
            logger.info("Database at %s migrated to version %d", self.db.shown, self.applied[-1])
        await self.db.open()
        logger.info("Using the PostgreSQL database at %s", self.db.shown)

    async def stop(self) -> None:
        await self.db.close()
