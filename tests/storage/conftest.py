from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from invoke_sdk.session_queue import BatchRecord, NewQueueItem
from invoke_sqlite_storage import SqliteBackend


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    b = SqliteBackend(tmp_path / "db" / "invoke.db")
    await b.start()
    yield b
    await b.stop()


def make_batch(queue_id: str = "default", n: int = 3) -> tuple[BatchRecord, list[NewQueueItem]]:
    batch = BatchRecord(batch_id=uuid.uuid4().hex, queue_id=queue_id, requested=n)
    items = [
        NewQueueItem(session_id=uuid.uuid4().hex, session_json=f'{{"n": {i}, "batch": "{batch.batch_id}"}}')
        for i in range(n)
    ]
    return batch, items
