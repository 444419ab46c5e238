"""Running an app under uvicorn: the server settings taken from the host's config, services started first.

The host's services start before uvicorn takes over, on the loop it will serve on. A service that cannot
start (a damaged database, say) then fails as a :class:`~invoke_host.host.HostStartupError` the CLI prints
as one line, before a port is bound, instead of as the lifespan's ExceptionGroup traceback. The app's own
lifespan still starts the host when something else serves it; starting a running host does nothing.
"""

from __future__ import annotations

import asyncio

import uvicorn
from litestar import Litestar

from invoke_host.config import HostConfig
from invoke_host.heap_freeze import freeze_startup_objects
from invoke_host.host import Host
from invoke_host.security import install_log_redaction

__all__ = ["serve_app", "uvicorn_config"]


def uvicorn_config(app: Litestar, config: HostConfig) -> uvicorn.Config:
    """The uvicorn settings ``invoke-host serve`` uses for ``app``."""
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level.lower(),
        # Its loggers hand their records to the one root handler (invoke_host.logging_config): one format.
        log_config=None,
        # No permessage-deflate: compressing every event once per client was most of the server's work under
        # load (bench/events.py), and the events (small JSON, JPEG previews) gain little from it.
        ws_per_message_deflate=False,
        # The sans-I/O websockets protocol writes a frame straight to the transport: about half the server CPU per
        # message of the legacy one (bench/events.py: 20 clients taking one message per frame are 800,000 sends).
        ws="websockets-sansio",
        # The protocol refuses a larger client message (close 1009) before buffering it whole.
        ws_max_size=config.ws_max_message_bytes,
    )


def serve_app(app: Litestar, config: HostConfig) -> bool:
    """Start the host's services, then serve ``app`` until the server stops; stop the services after.

    Returns whether the server started (False: it could not bind, say). Raises
    :class:`~invoke_host.host.HostStartupError` if a service cannot start.
    """
    host: Host = app.state["host"]
    server_config = uvicorn_config(app, config)
    # Uvicorn has set up its log handlers by now (its access log writes query strings): filter them all.
    install_log_redaction([config.token] if config.token else [])
    server = uvicorn.Server(server_config)

    async def main() -> None:
        freeze_startup_objects()  # the app's objects, out of every later full collection's scan (heap_freeze.py)
        await host.start()
        try:
            await server.serve()
        finally:
            await host.stop()

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main())
    return server.started
