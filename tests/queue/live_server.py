"""A real uvicorn server on 127.0.0.1 in a background thread, for tests that need true concurrency.

(Litestar's AsyncTestClient runs each request to completion before the next starts, so it can
show neither concurrent enqueues nor a loop that stays free during a slow query.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from litestar import Litestar


@contextmanager
def live_server(app: Litestar) -> Iterator[str]:
    """Serve ``app`` on a free port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            ws_per_message_deflate=False, ws="websockets-sansio")  # as `invoke-host serve` runs it
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
