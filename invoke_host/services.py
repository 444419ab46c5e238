"""Builds the host's long-lived services from the config and the frozen registry, in start order.

The event bus starts first (so start-up recovery is logged and broadcast), then the storage
backend chosen by name (it migrates its database), then the queue service (it recovers items an
earlier process left running), then the session processor (unless ``processor_enabled`` is off).
The app's lifespan starts them in this order and stops them in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from invoke_sdk.events import ConfigurableEventSink, EventSink
from invoke_sdk.storage import StorageBackendFactory, StorageOptions

from invoke_host.events import EventBus
from invoke_host.limits import Limits
from invoke_host.models.config_validation import config_validator
from invoke_host.queue import QueueService
from invoke_host.queue.processor import SessionProcessor

if TYPE_CHECKING:
    from invoke_host.host import Host

__all__ = ["attach_processor", "attach_services", "missing_storage_message"]

logger = logging.getLogger("invoke_host")


def missing_storage_message(host: Host) -> str:
    """Why the host has no storage backend, in words a person can act on."""
    known = ", ".join(sorted(host.registry.kind("storage_backends"))) or "none"
    return (
        f"no storage backend named {host.config.storage_backend!r} is registered (registered: {known}); "
        "install invoke-sqlite-storage or set INVOKE_HOST_STORAGE_BACKEND to one that is"
    )


def attach_services(host: Host) -> None:
    """Create the event bus, the storage backend, the queue service and the processor; add them to ``host.services``."""
    config = host.config
    # Every sink is a plugin's (invoke-core-events brings the log and websocket sinks).
    sinks: list[EventSink] = [r.value for r in host.registry.kind("event_sinks").values()]
    settings = MappingProxyType(config.model_dump(mode="json", exclude={"token"}))
    for sink in sinks:
        if isinstance(sink, ConfigurableEventSink):
            sink.configure(settings)
    host.events = EventBus(sinks)
    host.services.append(host.events)
    host.model_load_listener = _model_load_forwarder(host.events)

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
        host.storage.session_queue, host.events, host.registry, max_batch_size=config.max_batch_size,
        limits=Limits.from_config(config),
    )
    host.services.append(host.queue)
    _attach_images(host)


def attach_processor(host: Host) -> None:
    """Add the session processor last, so every service a node may use has started before it claims an item."""
    config = host.config
    if host.queue is not None and config.processor_enabled:
        host.processor = SessionProcessor(
            host, host.queue, workers=config.processor_workers, save_interval=config.session_save_interval
        )
        host.services.append(host.processor)


def _model_load_forwarder(bus: EventBus) -> Callable[[Any], None]:
    """Turns the model cache's load notifications into typed events on the bus (called in the loading thread)."""
    from invoke_sdk.models.load_events import ModelLoadCompleteEvent, ModelLoadStartedEvent

    def forward(event: Any) -> None:
        if event.kind == "started":
            bus.emit(ModelLoadStartedEvent.build(event.config, event.submodel))
        else:
            bus.emit(ModelLoadCompleteEvent.build(event.config, event.submodel, event.size_bytes))

    return forward


def _attach_images(host: Host) -> None:
    from invoke_host.images import add_images_service

    assert host.storage is not None and host.events is not None
    try:
        add_images_service(host, host.storage.images, emit=host.events.emit)
    except LookupError as exc:
        logger.warning("The image store is unavailable: %s", exc)
