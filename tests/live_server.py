"""A real uvicorn server on 127.0.0.1, in a thread of the test process, so tests can look at its state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

__all__ = ["LiveServer", "live_server", "wait_for"]


@dataclass
class LiveServer:
    """A started server: where it listens, and the uvicorn server object."""

    host: str
    port: int
    server: uvicorn.Server

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def wait_for(condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "the condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds saying what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.02)


@contextmanager
def live_server(app: Any, config: uvicorn.Config | None = None, **options: Any) -> Iterator[LiveServer]:
    """Serve ``app`` on a free port of 127.0.0.1 until the block ends (lifespan on: the host's services start).

    ``config`` is used as given when passed (the CLI's own server settings, say); otherwise one is made from
    ``options``.
    """
    if config is None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **options)
    else:
        config.host, config.port = "127.0.0.1", 0
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), what="the server start")
        assert server.started, "the server did not start (see its log above)"
        port = int(server.servers[0].sockets[0].getsockname()[1])
        yield LiveServer("127.0.0.1", port, server)
    finally:
        server.should_exit = True
        thread.join(30)
