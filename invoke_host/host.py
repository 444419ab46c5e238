"""The composition root: one place that builds a host from its parts, in order, for each shape of node.

:func:`build_host` loads the plugins and builds, in this order:

1. the frozen registry (``collect``: discover, collect, freeze); each loader's optional ``configure`` runs here, once;
2. the event bus, with every plugin's sinks;
3. the storage backend named by ``storage_backend`` (none: the host runs with no queue, images or models);
4. the queue service over the backend's session queue (not for :attr:`NodeShape.SERVICES`);
5. the images service over the backend's image records and the file-storage backend;
6. the model manager over the backend's model records;
7. the node services (what every node context shares: images, tensors, conditioning, ``context.models``);
8. zero or more session processors, as the node's :class:`NodeShape` asks: one per device of ``devices``
   (``--devices cuda:0,cuda:1``; one on ``device`` when empty), each with its own node services and model
   cache, claiming as ``<worker name>`` (one device) or ``<worker name>/<n>`` (several); all share one output cache.

The output cache and the model caches are built before the services that invalidate them: the bus carries image
deletes to the output cache (:class:`~invoke_host.engine.cache_sink.OutputCacheSink`), and the model manager's
``on_change`` puts each model edit or delete on the bus, where
:class:`~invoke_host.models.change_sink.ModelChangeSink` drops it from every cache. Both sinks also get those
events from other nodes through a relay (workers too), so a delete on an API node reaches every worker's caches.

Each part is given exactly what it uses; none of them imports this module. The :class:`Host` it returns holds
the parts and starts them in that order (the loop bridge first, so node threads can reach the loop) and stops
them in reverse.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from invoke_sdk.events import ConfigurableEventSink, EventSink, RelayEventSink, SelectiveEventSink
from invoke_sdk.images import ImageFileStorage
from invoke_sdk.models.change_event import ModelChangedEvent
from invoke_sdk.models.load_events import ModelLoadCompleteEvent, ModelLoadStartedEvent
from invoke_sdk.models.records import ModelRecordStore
from invoke_sdk.storage import StorageBackend, StorageBackendFactory, StorageError, StorageOptions

from invoke_host.config import HostConfig
from invoke_host.engine import NodeServices, OutputCache
from invoke_host.engine.cache_sink import OutputCacheSink
from invoke_host.engine.object_store import DiskObjectStore, conditioning_store, tensor_store
from invoke_host.engine.references import Reference
from invoke_host.events import EventBus, RelayInbox
from invoke_host.images import ImagesService, NodeImagesFactory
from invoke_host.images.run_manifest import RunManifestBuilder
from invoke_host.limits import Limits
from invoke_host.loop_bridge import LoopBridge
from invoke_host.model_cache import ModelCache, ModelLoadEvent, ModelLoadListener, ModelLoadRelay, ModelsService
from invoke_host.model_cache.record_lookup import RecordStoreLookup
from invoke_host.models.address_policy import AddressPolicy
from invoke_host.models.change_sink import ModelChangeSink
from invoke_host.models.config_validation import config_validator
from invoke_host.models.download_cache import DownloadCache
from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.download_slots import DownloadSlots
from invoke_host.models.manager import ModelChangeListener, ModelManager
from invoke_host.models.record_paths import ModelPaths
from invoke_host.plugin_loader import PluginSet, load_plugins
from invoke_host.queue import QueueService
from invoke_host.queue.claims import RunningClaims
from invoke_host.queue.processor import SessionProcessor
from invoke_host.registry import FrozenRegistry, collect
from invoke_host.registry.node_catalogue import NodeCatalogue
from invoke_host.start_gc import collections_paused

__all__ = ["Host", "HostStartupError", "NodeShape", "Service", "build_host", "missing_storage_message", "worker_name"]

logger = logging.getLogger("invoke_host")


class NodeShape(enum.Enum):
    """What one host process does: serve the API, run queue items, or both."""

    ALL_IN_ONE = "all-in-one"
    """The API and the processors in one process (``invoke-host serve``)."""
    API = "api"
    """The API only: items are enqueued and stored, another node runs them (``processor_enabled=False``)."""
    WORKER = "worker"
    """Processors only: runs the items of its queue, serves no HTTP."""
    SERVICES = "services"
    """The stores, images and models, with no queue service and no processors (``invoke-host run``, the ``models``
    commands, the pack-author test fixture): it runs graphs in memory itself, and repairs nothing at start, so it
    can work beside a running server on the same data root without touching that server's work."""

    @property
    def runs_items(self) -> bool:
        return self in (NodeShape.ALL_IN_ONE, NodeShape.WORKER)

    @property
    def serves_http(self) -> bool:
        return self in (NodeShape.ALL_IN_ONE, NodeShape.API)

    @property
    def owns_queue(self) -> bool:
        """Whether the host builds the queue service, whose start marks interrupted items failed, and clears what
        interrupted model installs left: work a process may do only where no other is running."""
        return self is not NodeShape.SERVICES


class HostStartupError(RuntimeError):
    """A host could not be built or a service could not start, for a reason a person can act on (a damaged
    database, a folder it cannot write, a worker with no queue); the message, one line, says what is wrong and
    what to do. Services already started were stopped.
    """


class Service(Protocol):
    """Something the host starts with the app and stops with it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


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


@dataclass
class Host:
    """The loaded plugins, the frozen registry, and the services an app, a worker or a CLI command works with."""

    config: HostConfig
    plugins: PluginSet
    registry: FrozenRegistry
    shape: NodeShape
    events: EventBus
    storage: StorageBackend | None
    """None when no storage backend has the configured name: then there is no queue, image store or model records."""
    queue: QueueService | None
    images: ImagesService | None
    models: ModelManager
    node_services: NodeServices
    processors: list[SessionProcessor]
    services: list[Service]
    """Everything above that starts and stops, in start order."""
    bridge: LoopBridge = field(repr=False)
    model_loads: ModelLoadRelay = field(repr=False)
    output_cache: OutputCache = field(repr=False)
    """The output cache every processor of this host shares (``output_cache_max_bytes``)."""
    _started: list[Service] = field(default_factory=list, repr=False)
    _running: bool = field(default=False, repr=False)

    @property
    def model_load_listener(self) -> ModelLoadListener | None:
        """Called with each :class:`~invoke_host.model_cache.ModelLoadEvent` of this host's model cache, in the
        loading thread; by default it puts the typed load events on the bus. May be replaced at any time."""
        return self.model_loads.listener

    @model_load_listener.setter
    def model_load_listener(self, listener: ModelLoadListener | None) -> None:
        self.model_loads.listener = listener

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the services were started on (their async stores live there); None until ``start``."""
        return self.bridge.loop

    async def start(self) -> None:
        """Start every service in order; if one fails, stop those already started and re-raise.

        A failure a person can fix (the backend's ``StorageError``, an ``OSError``) is raised as
        :class:`HostStartupError` with a one-line message. Starting a running host does nothing, so the
        CLI can start it before the server's lifespan asks again.
        """
        if self._running:
            return
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


def _node_catalogue(config: HostConfig, plugins: Sequence[Any], entry_points: bool) -> NodeCatalogue | None:
    # Only a host of entry-point plugins: a plugin handed over in code has no files or version to tell it by.
    if not config.node_catalogue or plugins or not entry_points:
        return None
    return NodeCatalogue(config.root / "node-catalogue.json")


def build_host(
    config: HostConfig | None = None,
    plugins: Sequence[Any] = (),
    *,
    entry_points: bool | None = None,
    core_routes: Sequence[Any] = (),
    shape: NodeShape | None = None,
) -> Host:
    """Load ``plugins`` (and, unless turned off, every entry-point plugin), freeze the registry, build the services.

    ``entry_points=None`` follows ``config.disable_plugin_autoload``; tests pass ``False`` and an
    explicit plugin list so that nothing installed on the machine leaks in. ``core_routes`` are the
    app's own route handlers, whose paths no plugin route may reach into. ``shape=None`` is
    :attr:`NodeShape.ALL_IN_ONE`, or :attr:`NodeShape.API` when ``config.processor_enabled`` is off.
    Raises :class:`HostStartupError` for a worker that would have no queue to run.
    """
    config = config or HostConfig()
    if shape is None:
        shape = NodeShape.ALL_IN_ONE if config.processor_enabled else NodeShape.API
    use_entry_points = (not config.disable_plugin_autoload) if entry_points is None else entry_points
    # Loading the plugins makes their node classes, and collecting builds their schemas: the bulk of start-up's
    # long-lived objects, which the collector would scan again and again (start_gc.py).
    with collections_paused():
        plugin_set = load_plugins(
            plugins, entry_points=use_entry_points, allow=config.plugins_allow, block=config.plugins_block
        )
        registry = collect(plugin_set, core_routes, _node_catalogue(config, plugins, use_entry_points))  # 1
    _configure_loaders(registry, config)
    bridge = LoopBridge()  # handed the loop when the host starts
    # Where nodes keep tensors and conditioning, made first: the output cache checks on a hit that they still hold
    # what a cached output names.
    tensors, conditioning = tensor_store(config.root), conditioning_store(config.root)
    output_cache = _output_cache(config, tensors, conditioning)
    # Filled once the model caches exist (below): the sink must be on the bus before the bus is made.
    model_caches: list[ModelCache] = []
    holders = [OutputCacheSink(output_cache), ModelChangeSink(_model_changed(model_caches, output_cache))]
    events = _event_bus(registry, config, *holders)  # 2
    _attach_relays(events, registry, shape, holders)
    storage = _storage_backend(registry, config)  # 3
    if storage is None and shape is NodeShape.WORKER:
        raise HostStartupError(f"a worker node runs queue items, but {_missing_storage(registry, config)}")
    records = storage.model_records if storage is not None else None
    queue = (  # 4
        _queue_service(storage, events, registry, config, hold_graphs=shape.runs_items)
        if storage is not None and shape.owns_queue else None
    )
    images = _images_service(storage, events, registry, config) if storage is not None else None  # 5
    model_loads = ModelLoadRelay(_model_load_forwarder(events))
    devices: list[str | None] = list(config.devices) or [None]
    runs_items = queue is not None and shape.runs_items
    # One model cache per device that runs items (each holds models in that device's memory); one for the others.
    if records is not None:
        model_caches.extend(
            ModelCache.from_config(config, listener=model_loads, device=device)
            for device in (devices if runs_items else devices[:1])
        )
    models = ModelManager(  # 6
        config, registry, records, events, on_change=_model_change_emitter(events), maintain_on_start=shape.owns_queue,
    )
    claims = RunningClaims(queue) if queue is not None and runs_items else None
    downloads = _download_cache(config, models.paths, models.download_slots) if records is not None else None
    per_device = [
        _node_services(config, registry, records, models.paths, images, bridge, cache, tensors, conditioning,  # 7
                       claims, downloads)
        for cache in (model_caches or [None])
    ]
    node_services = per_device[0]
    name = worker_name(config)
    processors = (  # 8
        [
            _processor(config, registry, queue, events, services, output_cache,
                       name if len(devices) == 1 else f"{name}/{n}", device, claims)
            for n, (device, services) in enumerate(zip(devices, per_device, strict=True))
        ]
        if queue is not None and runs_items
        else []
    )
    started_first: list[Service] = [bridge, events]
    stored: list[Service] = [s for s in (storage, queue, images) if s is not None]
    return Host(
        config=config, plugins=plugin_set, registry=registry, shape=shape, events=events, storage=storage,
        queue=queue, images=images, models=models, node_services=node_services, processors=processors,
        # The processors last, so every service a node may use has started before one claims an item.
        services=[*started_first, *stored, models, *processors], bridge=bridge, model_loads=model_loads,
        output_cache=output_cache,
    )


def worker_name(config: HostConfig) -> str:
    """This node's worker name in the queue: ``worker_name`` (``--name``), or ``<hostname>-<pid>``."""
    return config.worker_name or f"{socket.gethostname()}-{os.getpid()}"


def missing_storage_message(host: Host) -> str:
    """Why the host has no storage backend, in words a person can act on."""
    return _missing_storage(host.registry, host.config)


def _missing_storage(registry: FrozenRegistry, config: HostConfig) -> str:
    known = ", ".join(sorted(registry.kind("storage_backends"))) or "none"
    if config.database_url is not None:
        return (
            f"database_url names a PostgreSQL database, but no storage backend named 'postgres' is registered "
            f"(registered: {known}); install invoke-postgres-storage"
        )
    return (
        f"no storage backend named {config.storage_backend!r} is registered (registered: {known}); "
        "install invoke-host[standard] (or invoke-sqlite-storage) or set INVOKE_HOST_STORAGE_BACKEND to one that is"
    )


def _event_bus(registry: FrozenRegistry, config: HostConfig, *own: EventSink) -> EventBus:
    """The bus over every plugin's sinks (invoke-core-events brings the log and websocket sinks) and the host's
    ``own`` (the output cache's)."""
    sinks: list[EventSink] = [r.value for r in registry.kind("event_sinks").values()]
    # The database URL goes to sinks (a relay of events between nodes connects with it), never to nodes'
    # context.config (engine/node_services.py); the token goes to neither.
    settings = MappingProxyType(config.model_dump(mode="json", exclude={"token"}))
    for sink in sinks:
        if isinstance(sink, ConfigurableEventSink):
            sink.configure(settings)
    return EventBus([*sinks, *own])


def _storage_backend_name(config: HostConfig) -> str:
    """The configured backend's name: a database URL names its backend by its scheme (postgresql:// -> postgres)."""
    if config.database_url is None:
        return config.storage_backend
    scheme, sep, _ = config.database_url.partition("://")
    if scheme.lower() not in ("postgresql", "postgres"):
        # Only the scheme is shown: the rest may hold a password.
        given = f"{scheme}://" if sep and scheme.isalnum() else "a value without a scheme"
        raise HostStartupError(
            f"database_url (INVOKE_HOST_DATABASE_URL) must start with postgresql://, not {given}; "
            "leave it unset for the embedded SQLite database"
        )
    return "postgres"


def _attach_relays(
    bus: EventBus, registry: FrozenRegistry, shape: NodeShape, holders: Sequence[SelectiveEventSink]
) -> None:
    """Relay sinks (invoke-postgres-events) get the node's inbox for other nodes' events; a node without clients
    takes only what ``holders`` (its caches' sinks) want: another node's image delete or model change."""
    inbox = RelayInbox(bus, registry.events, serves_clients=shape.serves_http, holders=tuple(holders))
    for sink in bus.sinks:
        if isinstance(sink, RelayEventSink):
            sink.attach(inbox)


def _storage_backend(registry: FrozenRegistry, config: HostConfig) -> StorageBackend | None:
    name = _storage_backend_name(config)
    registered = registry.kind("storage_backends").get(name)
    if registered is None:
        logger.warning("The session queue is unavailable: %s", _missing_storage(registry, config))
        return None
    factory: StorageBackendFactory = registered.value
    settings = (
        {"url": config.database_url, "retry_timeout_s": config.database_retry_timeout_s}
        if config.database_url is not None else {}
    )
    return factory.create(
        StorageOptions(root=config.root, settings=settings, validate_model_config=config_validator(registry))
    )


def _queue_service(
    storage: StorageBackend, events: EventBus, registry: FrozenRegistry, config: HostConfig, *, hold_graphs: bool
) -> QueueService:
    """``hold_graphs``: whether this node runs items, so graphs validated at enqueue are worth keeping for them."""
    return QueueService(
        storage.session_queue, events, registry, max_batch_size=config.max_batch_size,
        limits=Limits.from_config(config), max_results_page_size=config.max_results_page_size,
        lease_seconds=config.lease_seconds, max_attempts=config.max_attempts,
        affinity_max_wait_s=config.affinity_max_wait_s,
        max_held_graph_nodes=config.max_held_graph_nodes if hold_graphs else 0,
    )


def _images_service(
    storage: StorageBackend, events: EventBus, registry: FrozenRegistry, config: HostConfig
) -> ImagesService | None:
    """Images over the backend's records and the file-storage backend named by ``config.file_storage_backend``."""
    files = _file_storage(registry, config)
    if files is None:
        return None
    return ImagesService(storage.images, files, emit=events.emit, max_image_pixels=config.max_image_pixels,
                         page_cache_bytes=config.max_image_page_cache_bytes)


def _file_storage(registry: FrozenRegistry, config: HostConfig) -> ImageFileStorage | None:
    name = config.file_storage_backend
    factories = registry.kind("file_storage_backends")
    if name not in factories:
        known = ", ".join(sorted(factories)) or "none"
        logger.warning(
            "The image store is unavailable: no image file-storage backend is named %r (registered: %s); install "
            "the plugin that provides it or set file_storage_backend to one of these", name, known,
        )
        return None
    files: ImageFileStorage = factories[name].value.create(StorageOptions(root=config.root))
    return files


def _model_load_forwarder(bus: EventBus) -> ModelLoadListener:
    """Turns the model cache's load notifications into typed events on the bus (called in the loading thread)."""

    def forward(event: ModelLoadEvent) -> None:
        if event.kind == "started":
            bus.emit(ModelLoadStartedEvent.build(event.config, event.submodel))
        else:
            bus.emit(ModelLoadCompleteEvent.build(event.config, event.submodel, event.size_bytes))

    return forward


def _output_cache(config: HostConfig, tensors: DiskObjectStore, conditioning: DiskObjectStore) -> OutputCache:
    """The one output cache of the host, sized by ``output_cache_max_bytes`` and keeping what
    ``output_cache_min_node_seconds`` says is worth it; a hit naming a tensor or conditioning whose file is gone is
    a miss."""
    return OutputCache(
        config.output_cache_max_bytes, object_checks={"tensor": tensors.exists, "conditioning": conditioning.exists},
        min_node_seconds=config.output_cache_min_node_seconds,
    )


def _model_change_emitter(bus: EventBus) -> ModelChangeListener:
    """The model manager's listener: a change becomes a :class:`ModelChangedEvent` on the bus, which this node's
    :class:`ModelChangeSink` and (through a relay) every other node's act on."""

    def emit(key: str) -> None:
        bus.emit(ModelChangedEvent.build(key))

    return emit


def _model_changed(model_caches: list[ModelCache], output_cache: OutputCache) -> Callable[[str], None]:
    """What a model edit or delete does, here or on another node: the model leaves every model cache, outputs
    computed with it the output cache."""

    def changed(key: str) -> None:
        for model_cache in model_caches:
            model_cache.invalidate(key)
        dropped = output_cache.invalidate([Reference("model", key)])
        if dropped:
            logger.info("Dropped %d cached output(s) computed with model %s, which changed", dropped, key)

    return changed


def _configure_loaders(registry: FrozenRegistry, config: HostConfig) -> None:
    """Hand the config to each loader with settings of its own (FLUX's transformer storage), once per host: the
    loaders are shared by every device's node services, so this is not part of building those."""
    for registered in registry.kind("model_loaders").values():
        configure = getattr(registered.value, "configure", None)
        if callable(configure):
            configure(config)


def _node_services(
    config: HostConfig,
    registry: FrozenRegistry,
    records: ModelRecordStore | None,
    paths: ModelPaths,
    images: ImagesService | None,
    bridge: LoopBridge,
    model_cache: ModelCache | None,
    tensors: DiskObjectStore,
    conditioning: DiskObjectStore,
    claims: RunningClaims | None = None,
    downloads: DownloadCache | None = None,
) -> NodeServices:
    """``tensors`` and ``conditioning``; ``context.models`` over the model records, the registry's loaders and
    ``model_cache``; per-node ``context.images`` over the images service. Without a storage backend there are no
    model records or images, and a node that asks is told so."""
    models_service = None
    if records is not None and model_cache is not None:
        lookup = RecordStoreLookup(records, paths, bridge)
        models_service = ModelsService(lookup, registry.kind("model_loaders"), model_cache, search=lookup.search,
                                       downloads=downloads)
    manifest = RunManifestBuilder(registry, records)
    # An image save of a running item is fenced by its claim (a worker that lost the item writes none).
    fence = claims.check if claims is not None else None
    images_for_node = NodeImagesFactory(images, bridge, manifest, fence) if images is not None else None
    return NodeServices.default(
        config, models=models_service, images_for_node=images_for_node, tensors=tensors, conditioning=conditioning
    )


def _download_cache(config: HostConfig, paths: ModelPaths, slots: DownloadSlots) -> DownloadCache:
    """The one download cache of the host (``context.models.download_and_cache_model``), shared by every device so
    that two nodes asking for one source download it once; held to the download settings of installs, and to their
    ``download_concurrency`` through the model manager's ``slots``."""
    return DownloadCache(
        paths.models_dir / ".download_cache",
        paths.models_dir / ".tmp",
        policy=AddressPolicy(
            allow_private=config.download_allow_private, allow_loopback=config.download_allow_loopback
        ),
        limits=DownloadLimits(max_bytes=config.download_max_bytes, timeout_s=config.download_timeout_s,
                              stall_timeout_s=config.download_stall_timeout_s),
        max_bytes=config.max_download_cache_bytes,
        slots=slots,
    )


def _processor(
    config: HostConfig, registry: FrozenRegistry, queue: QueueService, events: EventBus, node_services: NodeServices,
    output_cache: OutputCache, worker_id: str, device: str | None, claims: RunningClaims | None = None,
) -> SessionProcessor:
    models = node_services.models
    held = models.cache.model_keys if isinstance(models, ModelsService) else None
    return SessionProcessor(
        registry, queue, events, node_services, workers=config.processor_workers,
        save_interval=config.session_save_interval, cache=output_cache, worker_id=worker_id, device=device,
        held_models=held, poll_interval=config.worker_poll_interval_s, claims=claims,
        memory_release_bytes=config.memory_release_bytes,
    )
