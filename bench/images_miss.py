"""What a listing page asked for once (a page-cache miss) costs, part by part, in process CPU per page.

Run: .venv/bin/python bench/images_miss.py [--records 100000] [--pages 1500]

Cursor pages of the default listing, each asked for once, at 100,000 records (``bench/images.py``'s seed): the
whole request through the app's ASGI callable (the host's middleware, guards and page cache; no sockets, so no
uvicorn), the store's ``get_many_json`` alone (thread hop, statement, rows), the page's statement on a plain
``sqlite3`` connection with the JSON, the typed columns and only the cursor's two columns, and the bare
aiosqlite round trip. ``process_time`` counts every thread, so the reader thread's share is in each figure.
Each part reads pages of its own, so none is a second read of rows the part before just read.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import invoke_local_file_storage.plugin as files_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.images import build_list_query
from invoke_sqlite_storage.record_json import record_json_columns
from litestar.types import ASGIApp, Message

from invoke_host.api.images import _URL_FIELDS
from invoke_host.app import create_app
from invoke_host.config import HostConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from images import _cursor_queries, seed


async def _get(app: ASGIApp, query: str) -> int:
    scope: Any = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/images/",
        "raw_path": b"/api/v1/images/",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


async def _cpu_ms(items: list[str], work: Callable[[str], Awaitable[object]]) -> float:
    samples = []
    for item in items:
        t = time.process_time()
        await work(item)
        samples.append(time.process_time() - t)
    return statistics.median(samples) * 1000


async def run(root: Path, records: int, pages: int) -> None:
    db = root / "databases" / "invoke.db"
    backend = SqliteBackend(db)
    await backend.start()
    await backend.stop()
    seed(db, records)
    queries = _cursor_queries(db, records // 4, pages * 7, max(1, records // 2 // (pages * 7)))
    parts = [queries[k * pages : (k + 1) * pages] for k in range(7)]
    cursors = [[q.split("cursor=", 1)[1] for q in part] for part in parts]
    app = create_app(
        HostConfig(root=root, processor_enabled=False),
        [("sqlite_storage", sqlite_plugin), ("local_file_storage", files_plugin)],
        entry_points=False,
    )
    json_columns = record_json_columns(_URL_FIELDS)
    figures: list[tuple[str, float]] = []
    async with app.lifespan():
        assert await _get(app, "limit=50") == 200

        async def request(query: str) -> None:
            assert await _get(app, query) == 200

        figures.append(("whole request, in process (ASGI, no uvicorn)", await _cpu_ms(parts[0], request)))
        figures.append(("a repeated page (cache hit), in process", await _cpu_ms([parts[0][0]] * pages, request)))
        store = SqliteBackend(db)
        await store.start()
        try:

            async def listed(cursor: str) -> None:
                assert await store.images.get_many_json(name_fields=_URL_FIELDS, limit=50, cursor=cursor)

            figures.append(("store get_many_json (hop + statement + rows)", await _cpu_ms(cursors[1], listed)))

            async def hop(_: str) -> None:
                async with store.db.read() as conn:
                    await conn.execute_fetchall("SELECT 1")

            figures.append(("aiosqlite round trip, SELECT 1", await _cpu_ms(cursors[2], hop)))
        finally:
            await store.stop()
        with closing(sqlite3.connect(db)) as conn:
            conn.row_factory = sqlite3.Row
            for k, (label, columns) in enumerate(
                (
                    ("statement, records' JSON (sqlite3)", json_columns),
                    ("statement, typed columns (sqlite3)", None),
                    ("statement, the cursor's two columns (sqlite3)", "starred, created_at"),
                )
            ):

                async def statement(cursor: str, columns: str | None = columns) -> None:
                    q = build_list_query(limit=50, cursor=cursor, **({"columns": columns} if columns else {}))
                    conn.execute(q.page_sql, q.page_params).fetchall()

                figures.append((label, await _cpu_ms(cursors[3 + k], statement)))
    for label, ms in figures:
        print(f"{label:52} {ms:6.3f} ms CPU per page (median of {pages})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=1_500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="images-miss-") as tmp:
        asyncio.run(run(Path(tmp), args.records, args.pages))


if __name__ == "__main__":
    main()
