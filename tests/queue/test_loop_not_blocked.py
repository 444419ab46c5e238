"""A slow database query runs off the event loop: other requests are served while it is still running."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx

from tests.queue.conftest import graph, make_app
from tests.queue.live_server import live_server

Q = "/api/v1/queue/default"


async def test_requests_are_served_while_a_list_query_is_stuck_in_the_database(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with live_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (
                await client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph(), "runs": 3}})
            ).status_code == 201
            backend = app.state.host.storage
            entered, release = threading.Event(), threading.Event()

            def hold() -> int:
                # Called by SQLite inside the query, on the connection's own thread: the query cannot
                # finish until the test says so.
                entered.set()
                release.wait(30)
                return 0

            for conn in backend.db._readers:
                await conn.set_progress_handler(hold, 1)
            listing = asyncio.create_task(client.get(f"{Q}/list"))
            assert await asyncio.to_thread(entered.wait, 10)

            version = await client.get("/api/v1/app/version")
            enqueued = await client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph()}})
            assert version.status_code == 200 and enqueued.status_code == 201
            assert not listing.done()  # the slow query is still running, yet the others were answered

            release.set()
            page = (await listing).json()
            assert page["total"] >= 3
            for conn in backend.db._readers:
                await conn.set_progress_handler(None, 1)
