"""The services node contexts are built from; the queue, images and models work swap in their real ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from invoke_sdk.context import ConditioningInterface, ImagesInterface, ModelsInterface, TensorsInterface

from invoke_host.engine.context import UnavailableImages, UnavailableModels
from invoke_host.engine.object_store import conditioning_store, tensor_store

if TYPE_CHECKING:
    from invoke_host.config import HostConfig
    from invoke_host.host import Host

__all__ = ["ImagesForNode", "NodeServices", "images_for_host", "models_service_for_host"]

ImagesForNode = Callable[[str, Any, str, Any], ImagesInterface]
"""Makes ``context.images`` for one node run: ``(session_id, node, source_node_id, graph)`` -> an images interface
whose saves record that session, the node's id in the submitted graph, and the graph."""


@dataclass
class NodeServices:
    """What every node context in a host shares: stores, model manager, read-only config."""

    images: ImagesInterface
    tensors: TensorsInterface
    conditioning: ConditioningInterface
    models: ModelsInterface
    config: Mapping[str, Any]
    images_for_node: ImagesForNode | None = None
    """When set, each node gets its own ``context.images`` from it (saves then record the session, node and
    graph); otherwise every node shares ``images``."""

    @classmethod
    def default(
        cls,
        config: HostConfig,
        *,
        models: ModelsInterface | None = None,
        images_for_node: ImagesForNode | None = None,
    ) -> NodeServices:
        """Tensors and conditioning on disk under the data root; ``models`` and ``images_for_node`` if given."""
        return cls(
            images=UnavailableImages(),
            tensors=tensor_store(config.root),
            conditioning=conditioning_store(config.root),
            models=models if models is not None else UnavailableModels(),
            config=MappingProxyType(config.model_dump(mode="json", exclude={"token"})),
            images_for_node=images_for_node,
        )

    @classmethod
    def for_host(cls, host: Host) -> NodeServices:
        """The host's services: ``host.node_services`` if something set it, else the defaults (kept on the host).

        The defaults include the real ``context.models`` when the host has a model manager: see
        :func:`models_service_for_host`.
        """
        services = getattr(host, "node_services", None)
        if services is None:
            services = cls.default(
                host.config, models=models_service_for_host(host), images_for_node=images_for_host(host)
            )
            host.node_services = services
        return services  # type: ignore[no-any-return]


def images_for_host(host: Host) -> ImagesForNode | None:
    """Per-node ``context.images`` over the host's images service; None when the host has none."""
    from invoke_host.images import NodeImages, find_images_service

    service = find_images_service(host)
    if service is None:
        return None

    def images_for(session_id: str, node: Any, source_node_id: str, graph: Any) -> ImagesInterface:
        return NodeImages(
            service, session_id=session_id, node_id=source_node_id, graph=graph, is_intermediate=node.is_intermediate
        )

    return images_for


def models_service_for_host(host: Host) -> ModelsInterface | None:
    """``context.models`` for a host: its model records, the registry's loaders, one cache sized by its config.

    None when the host has no model manager, or no storage backend (whose ``model_records`` the manager reads;
    model management is then off, as the manager says at start-up). Model load events go to
    ``host.model_load_listener``, read at each event, so the events service can connect it after the cache exists.
    """
    if getattr(host, "models", None) is None:
        return None
    if getattr(host, "storage", None) is None:
        return None
    from invoke_host.model_cache import ModelCache, ModelsService
    from invoke_host.model_cache.record_lookup import RecordStoreLookup

    def forward(event: Any) -> None:
        listener = host.model_load_listener
        if listener is not None:
            listener(event)

    cache = ModelCache.from_config(host.config, listener=forward)
    service: ModelsInterface = ModelsService(RecordStoreLookup(host), host.registry.kind("model_loaders"), cache)
    return service
