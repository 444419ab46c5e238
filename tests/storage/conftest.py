"""The storage suite runs against every backend: ``backend`` (started) and ``backend_maker`` (more backends on the
same database, for restarts and concurrent nodes) are parametrised over SQLite and PostgreSQL. A test that is about
one backend's own machinery (SQLite's file, vacuum, backups) asks for ``sqlite_backend`` instead."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from invoke_sdk.session_queue import BatchRecord, NewQueueItem
from invoke_sqlite_storage import SqliteBackend

from tests.storage_backends import backend, backend_maker, sqlite_backend_at

__all__ = ["backend", "backend_maker", "make_batch"]


@pytest.fixture
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    async with sqlite_backend_at(tmp_path) as b:
        yield b


def make_batch(queue_id: str = "default", n: int = 3) -> tuple[BatchRecord, list[NewQueueItem]]:
    batch = BatchRecord(batch_id=uuid.uuid4().hex, queue_id=queue_id, requested=n)
    items = [
        NewQueueItem(session_id=uuid.uuid4().hex, session_json=f'{{"n": {i}, "batch": "{batch.batch_id}"}}')
        for i in range(n)
    ]
    return batch, items
