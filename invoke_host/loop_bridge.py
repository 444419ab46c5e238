"""Calls from node threads into the host's event loop, and the wait for their result.

Node code is blocking and runs in a worker thread; the stores it reads and writes through its context (the
image records, the model records) are async and belong to the loop the host's services were started on. The
bridge hands each call to that loop with ``run_coroutine_threadsafe`` and waits, so a node sees exactly what the
API sees, with no second connection. It is a host service: its ``start`` is handed the running loop (the first
service to start, so every later one may be called through it) and its ``stop`` lets go of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["EventLoopThreadError", "LoopBridge", "LoopNotRunningError"]

T = TypeVar("T")


class LoopNotRunningError(RuntimeError):
    """Node code asked for a host service while the host was not started (or had stopped)."""


class EventLoopThreadError(RuntimeError):
    """Node code ran on the event loop's own thread, where waiting for the loop would hang forever."""


class LoopBridge:
    """Runs coroutines on one event loop for callers in other threads, and waits for each."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop calls go to; None while the host is not started."""
        return self._loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._loop = None

    def call(self, coro: Coroutine[Any, Any, T], *, what: str) -> T:
        """Run ``coro`` on the loop and return its result; ``what`` names the call in the error if it cannot run.

        Raises :class:`LoopNotRunningError` when the loop is not running and :class:`EventLoopThreadError` when
        called on the loop's own thread; the coroutine is closed unrun in both cases.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            coro.close()
            raise LoopNotRunningError(
                f"{what} needs the host's services, which are not started: start the host (await host.start()) "
                "and keep its event loop running while graphs run, or run graphs through run_graph_async, the "
                "server or `invoke-host run`"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise EventLoopThreadError(
                f"{what} was called on the host's event loop thread; node code must run in a worker thread: run "
                "graphs with run_graph_async (not run_graph) inside async code"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
