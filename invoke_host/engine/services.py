"""The services node contexts are built from; the queue, images and models work swap in their real ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from invoke_sdk.context import ConditioningInterface, ImagesInterface, ModelsInterface, TensorsInterface

from invoke_host.engine.context import UnavailableImages, UnavailableModels
from invoke_host.engine.object_store import conditioning_store, tensor_store

if TYPE_CHECKING:
    from invoke_host.config import HostConfig
    from invoke_host.host import Host

__all__ = ["NodeServices", "models_service_for_host"]


@dataclass
class NodeServices:
    """What every node context in a host shares: stores, model manager, read-only config."""

    images: ImagesInterface
    tensors: TensorsInterface
    conditioning: ConditioningInterface
    models: ModelsInterface
    config: Mapping[str, Any]

    @classmethod
    def default(cls, config: HostConfig, *, models: ModelsInterface | None = None) -> NodeServices:
        """Tensors and conditioning on disk under the data root; no image store; ``models`` or no model manager."""
        return cls(
            images=UnavailableImages(),
            tensors=tensor_store(config.root),
            conditioning=conditioning_store(config.root),
            models=models if models is not None else UnavailableModels(),
            config=MappingProxyType(config.model_dump(mode="json", exclude={"token"})),
        )

    @classmethod
    def for_host(cls, host: Host) -> NodeServices:
        """The host's services: ``host.node_services`` if something set it, else the defaults (kept on the host).

        The defaults include the real ``context.models`` when the host has a model manager: see
        :func:`models_service_for_host`.
        """
        services = getattr(host, "node_services", None)
        if services is None:
            services = cls.default(host.config, models=models_service_for_host(host))
            host.node_services = services
        return services  # type: ignore[no-any-return]


def models_service_for_host(host: Host) -> ModelsInterface | None:
    """``context.models`` for a host: its model records, the registry's loaders, one cache sized by its config.

    None when the host has no model manager, or no plugin registers the record store its config names (model
    management is then off, as the manager says at start-up). Model load events go to
    ``host.model_load_listener``, read at each event, so the events service can connect it after the cache exists.
    """
    if getattr(host, "models", None) is None:
        return None
    if host.config.model_record_store not in host.registry.kind("model_record_stores"):
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
