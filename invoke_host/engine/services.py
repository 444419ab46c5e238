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

__all__ = ["NodeServices"]


@dataclass
class NodeServices:
    """What every node context in a host shares: stores, model manager, read-only config."""

    images: ImagesInterface
    tensors: TensorsInterface
    conditioning: ConditioningInterface
    models: ModelsInterface
    config: Mapping[str, Any]

    @classmethod
    def default(cls, config: HostConfig) -> NodeServices:
        """Tensors and conditioning on disk under the data root; no image store or model manager."""
        return cls(
            images=UnavailableImages(),
            tensors=tensor_store(config.root),
            conditioning=conditioning_store(config.root),
            models=UnavailableModels(),
            config=MappingProxyType(config.model_dump(mode="json", exclude={"token"})),
        )

    @classmethod
    def for_host(cls, host: Host) -> NodeServices:
        """The host's services: ``host.node_services`` if something set it, else the defaults (kept on the host)."""
        services = getattr(host, "node_services", None)
        if services is None:
            services = cls.default(host.config)
            host.node_services = services
        return services  # type: ignore[no-any-return]
