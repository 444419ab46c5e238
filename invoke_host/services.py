"""Builds the host's long-lived services from the config and the frozen registry, in start order.

The event bus starts first (so start-up recovery is logged and broadcast), then the storage
backend chosen by name (it migrates its database), then the queue service (it recovers items an
earlier process left running). The app's lifespan starts them in this order and stops them in reverse.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from invoke_sdk.events import EventSink
from invoke_sdk.storage import StorageBackendFactory, StorageOptions

from invoke_host.events import EventBus, LogSink, WebSocketSink
from invoke_host.models.config_validation import config_validator
from invoke_host.queue import QueueService

if TYPE_CHECKING:
    from invoke_host.host import Host

__all__ = ["attach_services", "missing_storage_message"]

logger = logging.getLogger("invoke_host")


def missing_storage_message(host: Host) -> str:
    """Why the host has no storage backend, in words a person can act on."""
    known = ", ".join(sorted(host.registry.kind("storage_backends"))) or "none"
    return (
        f"no storage backend named {host.config.storage_backend!r} is registered (registered: {known}); "
        "install invoke-sqlite-storage or set INVOKE_HOST_STORAGE_BACKEND to one that is"
    )


def attach_services(host: Host) -> None:
    """Create the event bus, the storage backend and the queue service and add them to ``host.services``."""
    config = host.config
    plugin_sinks: list[EventSink] = [r.value for r in host.registry.kind("event_sinks").values()]
    host.events = EventBus([LogSink(), WebSocketSink(config.ws_client_buffer), *plugin_sinks])
    host.services.append(host.events)

    registered = host.registry.kind("storage_backends").get(config.storage_backend)
    if registered is None:
        logger.warning("The session queue is unavailable: %s", missing_storage_message(host))
        return
    factory: StorageBackendFactory = registered.value
    host.storage = factory.create(
        StorageOptions(root=config.root, validate_model_config=config_validator(host.registry))
    )
    host.services.append(host.storage)
    host.queue = QueueService(
        host.storage.session_queue, host.events, host.registry, max_batch_size=config.max_batch_size
    )
    host.services.append(host.queue)
    _attach_images(host)


def _attach_images(host: Host) -> None:
    from invoke_host.images import add_images_service

    assert host.storage is not None and host.events is not None
    try:
        add_images_service(host, host.storage.images, emit=host.events.emit)
    except LookupError as exc:
        logger.warning("The image store is unavailable: %s", exc)
