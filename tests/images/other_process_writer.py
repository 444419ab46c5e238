"""Run as its own process: change image records through a storage backend of its own, as an ``invoke-host run``
beside a server (SQLite) or a worker beside an API node (PostgreSQL) does.

    python -m tests.images.other_process_writer sqlite PATH '[["insert", "a.png"], ["star", "a.png"]]'
    python -m tests.images.other_process_writer postgres URL '[["delete", "a.png"]]'

Operations: ``insert NAME``, ``star NAME``, ``category NAME CATEGORY``, ``intermediate NAME true|false``,
``delete NAME``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from invoke_postgres_storage import PostgresBackend
from invoke_sdk.images import ImageCategory, ImageRecordChanges, NewImageRecord
from invoke_sqlite_storage import SqliteBackend


async def _apply(kind: str, target: str, ops: list[list[str]]) -> None:
    backend: Any = SqliteBackend(Path(target)) if kind == "sqlite" else PostgresBackend(target)
    await backend.start()
    try:
        for op, name, *rest in ops:
            if op == "insert":
                await backend.images.save(NewImageRecord(
                    image_name=name, image_origin="internal", image_category="general", width=8, height=8,
                ))
            elif op == "star":
                await backend.images.update(name, ImageRecordChanges(starred=True))
            elif op == "category":
                await backend.images.update(name, ImageRecordChanges(image_category=ImageCategory(rest[0])))
            elif op == "intermediate":
                await backend.images.update(name, ImageRecordChanges(is_intermediate=rest[0] == "true"))
            elif op == "delete":
                assert await backend.images.delete(name), f"no record {name!r} to delete"
            else:
                raise SystemExit(f"unknown operation {op!r}")
    finally:
        await backend.stop()


if __name__ == "__main__":
    asyncio.run(_apply(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
