"""What every node context of a host shares: the stores, the models, the read-only config.

The composition root (:mod:`invoke_host.host`) builds one from the host's services; a bare engine (a registry
and nothing else, as unit tests run it) uses :meth:`NodeServices.default`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from invoke_sdk import BaseInvocation
from invoke_sdk.context import ConditioningInterface, ImagesInterface, ModelsInterface, TensorsInterface

from invoke_host.config import HostConfig
from invoke_host.engine.context import UnavailableImages, UnavailableModels
from invoke_host.engine.object_store import conditioning_store, tensor_store

__all__ = ["ImagesForNode", "NodeServices"]

ImagesForNode = Callable[[str, BaseInvocation, str, Any, str | None], ImagesInterface]
"""Makes ``context.images`` for one node run: ``(session_id, node, source_node_id, graph, workflow)`` -> an images
interface whose saves record that session, the node's id in the submitted graph, the graph (its JSON data, or a
function of no arguments that makes it, called when an image is saved) and the item's workflow (JSON text, or
None)."""


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
        tensors: TensorsInterface | None = None,
        conditioning: ConditioningInterface | None = None,
    ) -> NodeServices:
        """``models`` and ``images_for_node`` if given; ``tensors`` and ``conditioning`` as given, or on disk under
        the data root.

        Without ``models`` or ``images_for_node`` a node that asks for models or images is told the host has none.
        """
        return cls(
            images=UnavailableImages(),
            tensors=tensors if tensors is not None else tensor_store(config.root),
            conditioning=conditioning if conditioning is not None else conditioning_store(config.root),
            models=models if models is not None else UnavailableModels(),
            config=MappingProxyType(config.model_dump(mode="json", exclude={"token", "database_url"})),
            images_for_node=images_for_node,
        )
