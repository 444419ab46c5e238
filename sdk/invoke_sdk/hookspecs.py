"""The hooks a plugin implements, and the markers it uses to implement them.

A plugin is a module named by an entry point in the ``invoke_host.plugins`` group. The host
loads it, finds functions marked with :data:`hookimpl` whose names match a hook below, and
calls each one once at start-up with a ``register`` callback. Registering through a callback
(instead of returning lists) lets the host record which plugin contributed what and refuse
conflicts with a message that names both plugins.

Hooks run once, synchronously, before the registry freezes: do no I/O in them and keep the
plugin module light (import torch and friends inside the functions that need them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from invoke_sdk.events import BaseEvent, EventSink
    from invoke_sdk.images import FileStorageBackendFactory
    from invoke_sdk.invocation import BaseInvocation
    from invoke_sdk.models import ModelConfigBase
    from invoke_sdk.models.loading import ModelLoader
    from invoke_sdk.models.probing import ModelProber
    from invoke_sdk.static_assets import StaticAssets
    from invoke_sdk.storage import StorageBackendFactory
    from invoke_sdk.workflows import PackWorkflow

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "RegisterEvent",
    "RegisterEventSink",
    "RegisterFileStorageBackend",
    "RegisterInvocation",
    "RegisterModelConfig",
    "RegisterModelLoader",
    "RegisterModelProber",
    "RegisterNodeMigration",
    "RegisterRoute",
    "RegisterStaticAssets",
    "RegisterStorageBackend",
    "RegisterWorkflow",
    "hookimpl",
    "hookspec",
    "register_event_sinks",
    "register_events",
    "register_file_storage_backends",
    "register_invocations",
    "register_model_configs",
    "register_model_loaders",
    "register_model_probers",
    "register_node_migrations",
    "register_routes",
    "register_static_assets",
    "register_storage_backends",
    "register_workflows",
]

PROJECT_NAME = "invoke_host"
"""The pluggy project name shared by the host's hook specifications and every plugin."""

ENTRY_POINT_GROUP = "invoke_host.plugins"
"""The entry-point group the host scans; each entry point names a module of hook implementations."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification. Only the SDK defines specifications."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a function in a plugin module as the implementation of the hook of the same name."""


class RegisterInvocation(Protocol):
    """The callback passed to :func:`register_invocations`."""

    def __call__(self, invocation: type[BaseInvocation]) -> None:
        """Offer one node class, decorated with ``@invocation``, to the registry."""


class RegisterRoute(Protocol):
    """The callback passed to :func:`register_routes`."""

    def __call__(self, handler: Any) -> None:
        """Offer one Litestar route handler, controller or router to the app."""


@hookspec
def register_invocations(register: RegisterInvocation) -> None:
    """Register node classes: call ``register(cls)`` once for each ``@invocation`` class.

    Each node's output class is taken from its ``invoke`` return annotation and registered
    with it. A node whose type id another plugin registered first is refused, and so is a
    class that is not a valid node; the plugin's other nodes still load.

    The host keeps what this hook registered in its node catalogue, and a later start whose
    plugins and their ``.py`` files are unchanged does not call it: each class is imported by
    its module and name when first used. So register classes defined at the top level of a
    module (not made inside a function), give the same classes on every call, and import the
    node modules inside this hook, not at the plugin module's top, so a start that skips the
    hook skips their import too. Do nothing else here: the hook may not run.
    """


@hookspec
def register_routes(register: RegisterRoute) -> None:
    """Register extra HTTP or websocket route handlers (Litestar handlers, controllers or routers).

    They are mounted on the app behind the same access token and cross-site checks as every
    built-in route. Import Litestar inside the hook, not at module level.
    """


class RegisterModelConfig(Protocol):
    """The callback passed to :func:`register_model_configs`."""

    def __call__(self, config: type[ModelConfigBase]) -> None:
        """Offer one model config class (``type`` and ``format`` pinned with ``Literal``)."""


class RegisterModelProber(Protocol):
    """The callback passed to :func:`register_model_probers`."""

    def __call__(self, prober: ModelProber) -> None:
        """Offer one model prober object."""


@hookspec
def register_model_configs(register: RegisterModelConfig) -> None:
    """Register model config classes (subclasses of ``invoke_sdk.models.ModelConfigBase``).

    The registry builds the discriminated union of every config on ``type`` + ``format`` at the
    freeze; a second class for a (type, format) already registered is refused.
    """


@hookspec
def register_model_probers(register: RegisterModelProber) -> None:
    """Register model probers (``invoke_sdk.models.probing.ModelProber``); they are asked by order, then name."""


class RegisterModelLoader(Protocol):
    """The callback passed to :func:`register_model_loaders`."""

    def __call__(self, loader: ModelLoader) -> None:
        """Offer one model loader (see :class:`~invoke_sdk.models.loading.ModelLoader`) to the registry."""


@hookspec
def register_model_loaders(register: RegisterModelLoader) -> None:
    """Register model loaders: call ``register(loader)`` once per model type and format handled.

    Loaders are keyed ``"<type>/<format>"`` (``"main/diffusers"``, ``"lora/lora"`` ...); a key that
    another plugin registered first is refused. Import the tensor library inside ``load``, not here.
    """


class RegisterStorageBackend(Protocol):
    """The callback passed to :func:`register_storage_backends`."""

    def __call__(self, factory: StorageBackendFactory) -> None:
        """Offer one storage backend under its ``factory.name``."""


class RegisterEvent(Protocol):
    """The callback passed to :func:`register_events`."""

    def __call__(self, event: type[BaseEvent]) -> None:
        """Offer one event class (a ``BaseEvent`` subclass with its own ``event_name``)."""


class RegisterEventSink(Protocol):
    """The callback passed to :func:`register_event_sinks`."""

    def __call__(self, sink: EventSink) -> None:
        """Offer one event sink under its ``sink.name``."""


@hookspec
def register_storage_backends(register: RegisterStorageBackend) -> None:
    """Register storage backends: call ``register(StorageBackendFactory(name, create))`` for each.

    The host uses the one named by its ``storage_backend`` setting. A name another plugin
    registered first is refused. ``create`` must do no I/O; the host starts the backend.
    """


@hookspec
def register_events(register: RegisterEvent) -> None:
    """Register event classes the plugin emits: call ``register(cls)`` for each ``BaseEvent`` subclass.

    Each appears in the OpenAPI document; a name already taken (the host's own events included)
    is refused.
    """


@hookspec
def register_event_sinks(register: RegisterEventSink) -> None:
    """Register event sinks: call ``register(sink)`` with a new sink object each time the hook runs.

    Every emitted event reaches every sink; a sink that raises is logged and skipped.
    """


class RegisterFileStorageBackend(Protocol):
    """The callback passed to :func:`register_file_storage_backends`."""

    def __call__(self, factory: FileStorageBackendFactory) -> None:
        """Offer one image file-storage backend under its ``factory.name``."""


@hookspec
def register_file_storage_backends(register: RegisterFileStorageBackend) -> None:
    """Register image file-storage backends: call ``register(FileStorageBackendFactory(name, create))`` for each.

    The host uses the one named by its ``file_storage_backend`` setting (default ``local``). A name
    another plugin registered first is refused. ``create`` must do no I/O.
    """


class RegisterNodeMigration(Protocol):
    """The callback passed to :func:`register_node_migrations`."""

    def __call__(
        self, node_type: str, from_version: str, to_version: str, migrate: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        """Offer one step of a node type's history: ``migrate`` maps its dict at ``from_version`` to ``to_version``.

        ``migrate`` gets a copy of the node's dict (``id``, ``type`` and input values; no ``version`` key) and
        returns the dict the newer version takes, keeping ``type``.
        """


@hookspec
def register_node_migrations(register: RegisterNodeMigration) -> None:
    """Register migrations of your node types: ``register(node_type, from_version, to_version, migrate)`` per step.

    Before a graph is validated (enqueue, ``/graphs/validate``, a pending item when it is claimed), a node whose
    ``version`` is older than its installed type is upgraded step by step; a minor or patch release with no
    migration is taken as compatible. Only the plugin that registers a node type may migrate it; a second
    migration from the same version of a type is refused. See :mod:`invoke_sdk.node_migrations`.
    """


class RegisterWorkflow(Protocol):
    """The callback passed to :func:`register_workflows`."""

    def __call__(self, workflow: PackWorkflow) -> None:
        """Offer one read-only workflow (an :class:`~invoke_sdk.workflows.PackWorkflow`) to the library."""


@hookspec
def register_workflows(register: RegisterWorkflow) -> None:
    """Register workflows the pack ships: ``register(PackWorkflow(id, name, graph, ...))`` for each.

    They appear in the workflow library (``GET /api/v1/workflows``) as ``pack:<id>``, read-only, and run with
    ``POST /api/v1/workflows/i/pack:<id>/enqueue``. An id another plugin registered first is refused. Read a
    bundled JSON file with ``importlib.resources`` here; do nothing slower.
    """


class RegisterStaticAssets(Protocol):
    """The callback passed to :func:`register_static_assets`."""

    def __call__(self, assets: StaticAssets) -> None:
        """Offer one folder of files (a :class:`~invoke_sdk.static_assets.StaticAssets`) for the host to serve."""


@hookspec
def register_static_assets(register: RegisterStaticAssets) -> None:
    """Register folders of static files the host serves without the access token: ``register(StaticAssets(...))``.

    This is the only way a plugin's paths answer without the token (a web front end's page and its script,
    which a browser loads before it can send a header). The host serves the files itself, GET only; a
    declaration whose paths reach into the host's own or overlap a route already taken is refused, and so is
    anything that is not a ``StaticAssets``. Put no data in these files.
    """
