"""``invoke-host worker``: a node that runs queue items and serves no HTTP.

It builds the host in the :attr:`~invoke_host.host.NodeShape.WORKER` shape (the same composition root as
``serve``, the same settings), starts its services, and runs until SIGTERM or SIGINT; then its processors stop
at the next node boundary and give up the leases of what they did not finish, so another worker retries those
items at once (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from invoke_host.config import HostConfig
from invoke_host.heap_freeze import freeze_startup_objects
from invoke_host.host import NodeShape, build_host
from invoke_host.security import install_log_redaction

__all__ = ["run_worker"]

logger = logging.getLogger("invoke_host")


def run_worker(config: HostConfig) -> None:
    """Run a worker node until it is told to stop. Raises :class:`~invoke_host.host.HostStartupError` when a
    service cannot start (no storage backend, a damaged database)."""
    host = build_host(config, shape=NodeShape.WORKER)
    install_log_redaction([config.token] if config.token else [])

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        freeze_startup_objects()  # the host's objects, out of every later full collection's scan (heap_freeze.py)
        await host.start()
        names = ", ".join(p.worker_id + (f" ({p.device})" if p.device else "") for p in host.processors)
        logger.info("Worker running: %s; root %s", names, config.root)
        try:
            await stop.wait()
        finally:
            logger.info("Worker stopping")
            await host.stop()

    asyncio.run(main())
