"""Start-up steps 1 to 3 in one place: discover plugins, collect their registrations, freeze.

The :class:`Host` also owns the long-lived services (queue, stores, event bus ...): they are
started in order when the app starts and stopped in reverse order when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from invoke_sdk.storage import StorageError

from invoke_host.config import HostConfig
from invoke_host.plugin_loader import PluginSet, load_plugins
from invoke_host.registry import FrozenRegistry, collect

if TYPE_CHECKING:
    from invoke_sdk.storage import StorageBackend

    from invoke_host.events import EventBus
    from invoke_host.queue import QueueService
    from invoke_host.queue.processor import SessionProcessor

__all__ = ["Host", "HostStartupError", "Service", "build_host"]

logger = logging.getLogger("invoke_host")


class HostStartupError(RuntimeError):
    """A service could not start for a reason a person can act on (a damaged database, a folder it cannot
    write); the message, one line, says what is wrong and what to do. The services already started were stopped.
    """


def _startup_error(service: Service, exc: BaseException) -> HostStartupError | None:
    """The start-up error for ``exc``, or None for a failure that is a bug (and deserves its traceback)."""
    if isinstance(exc, StorageError):
        # Backends word their errors for the person starting the server (see invoke_sdk.storage.StorageError).
        message = str(exc)
    elif isinstance(exc, OSError):
        message = f"{type(service).__name__} could not start: {exc}"
    else:
        return None
    return HostStartupError(" ".join(message.split()))


class Service(Protocol):
    """Something the host starts with the app and stops with it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Host:
    """The loaded plugins, the frozen registry, and the services an app or CLI command works with."""

    config: HostConfig
    plugins: PluginSet
    registry: FrozenRegistry
    services: list[Service] = field(default_factory=list)
    models: Any = None
    """The model manager (``invoke_host.models.manager.ModelManager``), also one of ``services``."""
    node_services: Any = None
    """The engine's ``NodeServices`` (stores, models) for node contexts; built with defaults on first run if unset."""
    events: EventBus | None = None
    storage: StorageBackend | None = None
    queue: QueueService | None = None
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    """The event loop the services were started on (their async stores live there); None until ``start``."""
    model_load_listener: Callable[[Any], None] | None = None
    """Called with each ``invoke_host.model_cache.ModelLoadEvent`` (load started / complete) of this host's model
    cache, in the loading thread; the events service sets it. May be set at any time."""
    processor: SessionProcessor | None = None
    _started: list[Service] = field(default_factory=list, repr=False)
    _running: bool = field(default=False, repr=False)

    async def start(self) -> None:
        """Start every service in order; if one fails, stop those already started and re-raise.

        A failure a person can fix (the backend's ``StorageError``, an ``OSError``) is raised as
        :class:`HostStartupError` with a one-line message. Starting a running host does nothing, so the
        CLI can start it before the server's lifespan asks again.
        """
        if self._running:
            return
        self.loop = asyncio.get_running_loop()
        for service in self.services:
            try:
                await service.start()
            except BaseException as exc:
                await self.stop()
                error = _startup_error(service, exc)
                if error is not None:
                    raise error from exc
                raise
            self._started.append(service)
        self._running = True

    async def stop(self) -> None:
        """Stop the started services in reverse order; one failing to stop does not keep the others running."""
        self._running = False
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception:
                logger.exception("Stopping %s failed", type(service).__name__)


def build_host(
    config: HostConfig | None = None,
    plugins: Sequence[Any] = (),
    *,
    entry_points: bool | None = None,
    core_routes: Sequence[Any] = (),
) -> Host:
    """Load ``plugins`` (and, unless turned off, every entry-point plugin) and freeze the registry.

    ``entry_points=None`` follows ``config.disable_plugin_autoload``; tests pass ``False`` and an
    explicit plugin list so that nothing installed on the machine leaks in. ``core_routes`` are the
    app's own route handlers, whose paths no plugin route may reach into.
    """
    config = config or HostConfig()
    use_entry_points = (not config.disable_plugin_autoload) if entry_points is None else entry_points
    plugin_set = load_plugins(
        plugins, entry_points=use_entry_points, allow=config.plugins_allow, block=config.plugins_block
    )
    host = Host(config=config, plugins=plugin_set, registry=collect(plugin_set, core_routes))
    from invoke_host.models.manager import model_manager_for
    from invoke_host.services import attach_processor, attach_services

    attach_services(host)
    host.models = model_manager_for(config, host.registry, host.storage, host.events)
    host.services.append(host.models)
    attach_processor(host)
    return host
