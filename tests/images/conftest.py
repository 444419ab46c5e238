from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.events import BaseEvent
from invoke_sqlite_storage import SqliteBackend

from invoke_host.images import ImagesService


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    b = SqliteBackend(tmp_path / "databases" / "invoke.db")
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
def files(tmp_path: Path) -> LocalImageFileStorage:
    return LocalImageFileStorage(tmp_path)


@pytest.fixture
def events() -> list[BaseEvent]:
    return []


@pytest.fixture
async def service(
    backend: SqliteBackend, files: LocalImageFileStorage, events: list[BaseEvent]
) -> AsyncIterator[ImagesService]:
    s = ImagesService(backend.images, files, emit=events.append)
    await s.start()
    yield s
    await s.stop()
