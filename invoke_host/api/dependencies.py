"""What the core API's handlers are given: the host's services, each injected by name with Litestar's ``Provide``.

A handler asks for a service by declaring a parameter named for it (``queue: Injected[QueueService]``) instead of
reaching into ``app.state``. The providers are bound to one host when its app is built and handed to the core
routers only (``invoke_host.api.router``), so a plugin route's parameter that happens to be named ``queue`` or
``images`` stays the query parameter it always was. No provider takes a parameter of its own, so injection adds
nothing to the OpenAPI document.

A service the host lacks is given as ``invoke_host.api.injected.Unavailable``, which answers 503 when used (that
module says why the provider does not raise).
"""

from collections.abc import Callable

from litestar.di import Provide
from litestar.exceptions import HTTPException, ServiceUnavailableException

from invoke_host.api.graphs import GraphValidator
from invoke_host.api.images import ImageReplay, ImageUploads
from invoke_host.api.injected import Unavailable
from invoke_host.engine import OutputCache
from invoke_host.host import Host, missing_storage_message
from invoke_host.images.run_manifest import RunManifestBuilder
from invoke_host.images.service import ImagesService
from invoke_host.models.manager import ModelManager
from invoke_host.node_templates import NodeTemplateCatalog
from invoke_host.queue import QueueService
from invoke_host.registry import FrozenRegistry
from invoke_host.workflows import WorkflowLibrary

__all__ = ["host_dependencies"]


def host_dependencies(host: Host) -> dict[str, Provide]:
    """The providers of ``host``'s services, by the parameter name a handler declares to be given each.

    - ``registry`` (FrozenRegistry), ``node_templates`` (NodeTemplateCatalog, built on first use), ``graph_validator``
      (GraphValidator);
    - ``queue`` (QueueService), ``images`` (ImagesService), ``models`` (ModelManager), each ``Unavailable`` where
      the host has none; ``image_uploads`` (ImageUploads: the images service and the config); ``image_replay``
      (ImageReplay: the images service, the queue and this server's run manifest);
    - ``output_cache`` (OutputCache, shared by the host's processors);
    - ``workflows`` (WorkflowLibrary: the backend's workflow store, the packs' workflows, the queue).

    A handler asks for one of them at most: Litestar resolves two independent dependencies in a task group on
    every request, which costs more than a small request itself (POST /api/v1/graphs/validate took 1.7x as long).
    A handler that needs two things is given one object holding both.
    """
    catalog = NodeTemplateCatalog(host.registry)
    no_queue = Unavailable(
        lambda: HTTPException(
            status_code=503, detail=f"the session queue is unavailable: {missing_storage_message(host)}"
        )
    )
    no_images = Unavailable(
        lambda: ServiceUnavailableException(
            "this server has no image store: it was started without an images service (storage and file-storage "
            "backend plugins)"
        )
    )
    no_models = Unavailable(lambda: ServiceUnavailableException("model management is not running"))

    # Closures over the host, not bound methods or partials: Litestar deep-copies a router's dependencies when
    # the router is registered, and a deep copy would copy the host (and its open database) with them.
    validator = GraphValidator(host.registry, host.config)

    def registry() -> FrozenRegistry:
        return host.registry

    def node_templates() -> NodeTemplateCatalog:
        return catalog

    def graph_validator() -> GraphValidator:
        return validator

    def queue() -> QueueService | Unavailable:
        return host.queue if host.queue is not None else no_queue

    def images() -> ImagesService | Unavailable:
        return host.images if host.images is not None else no_images

    def image_uploads() -> ImageUploads:
        return ImageUploads(images(), host.config)

    manifest = RunManifestBuilder(host.registry, host.storage.model_records if host.storage is not None else None)

    def image_replay() -> ImageReplay:
        return ImageReplay(images(), queue(), manifest)

    def models() -> ModelManager | Unavailable:
        manager: ModelManager | None = host.models
        return manager if manager is not None else no_models

    def output_cache() -> OutputCache:
        return host.output_cache

    store = getattr(host.storage, "workflows", None) if host.storage is not None else None
    library = WorkflowLibrary(
        store, host.registry, host.config, host.queue,
        no_store_reason=missing_storage_message(host) if host.storage is None else
        f"the storage backend {type(host.storage).__name__} keeps no workflow library (it has no 'workflows' store)",
    )

    def workflows() -> WorkflowLibrary:
        return library

    providers: dict[str, Callable[[], object]] = {
        "graph_validator": graph_validator,
        "image_replay": image_replay,
        "image_uploads": image_uploads,
        "images": images,
        "models": models,
        "node_templates": node_templates,
        "output_cache": output_cache,
        "queue": queue,
        "registry": registry,
        "workflows": workflows,
    }
    # Plain functions that never block: called on the loop, not in a worker thread.
    return {name: Provide(provider, sync_to_thread=False) for name, provider in providers.items()}
