"""The config lookup ``context.models`` uses in a host: the model manager's async record store, read from a node.

Nodes run in a worker thread; the record store (aiosqlite) belongs to the event loop the host's services were
started on. The lookup hands each read to that loop with ``run_coroutine_threadsafe`` and waits for it, so a
node sees exactly what the API sees, with no second connection and no copy of the records to keep in step.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoke_host.host import Host

__all__ = ["HostNotStartedError", "RecordStoreLookup"]


class HostNotStartedError(RuntimeError):
    """A node asked for a model before the host's services (the model records) were started."""


class RecordStoreLookup:
    """``key -> config`` over ``host.models.store``, callable from any thread but the loop's own.

    The config comes back with ``path`` made absolute (records keep paths inside the models directory
    relative to it), so loaders can open it as it is. Unknown keys raise the store's
    ``UnknownModelKeyError``, a ``KeyError``.
    """

    def __init__(self, host: Host) -> None:
        self._host = host

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._host.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            raise HostNotStartedError(
                "the model records are not open: start the host (await host.start()) and keep its event loop "
                "running while graphs run, or run graphs through run_graph_async / the server / `invoke-host run`"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            # Waiting here for a coroutine that needs this very loop would hang forever.
            raise RuntimeError(
                "a node looked up a model on the host's event loop thread: run graphs with run_graph_async "
                "(nodes then run in a worker thread), not run_graph, inside async code"
            )
        return loop

    def __call__(self, key: str) -> Any:
        manager = self._host.models
        loop = self._loop()
        config = asyncio.run_coroutine_threadsafe(manager.store.get(key), loop).result()
        return config.model_copy(update={"path": str(manager.resolve(config))})
