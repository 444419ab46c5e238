"""A node's ``context.images`` made when the node first uses it, not before every node runs.

With an images service (``NodeServices.images_for_node``: the server), each node run gets its own images interface,
so that its saves record the session and the node. Building that interface for every node cost about 2.5% of a
10,000-item run through the server (py-spy, lock-holding samples), while most nodes (math, strings, iterate,
collect) never touch images. The runner gives each node this stand-in instead: a tuple-sized object that builds
the real interface, with the same arguments, on the first call and hands every call to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from invoke_sdk import BaseInvocation
from invoke_sdk.context import ImagesInterface
from invoke_sdk.fields import ImageField
from invoke_sdk.images import ImageRecord

from invoke_host.engine.node_services import ImagesForNode

__all__ = ["ImagesOnDemand"]


class ImagesOnDemand:
    """``images_for_node(session_id, node, source_node_id, graph, workflow)``, called on first use, then used."""

    __slots__ = ("_args", "_made", "_make")

    def __init__(self, make: ImagesForNode, session_id: str, node: BaseInvocation, source_node_id: str, graph: Any,
                 workflow: str | None) -> None:
        self._make = make
        self._args = (session_id, node, source_node_id, graph, workflow)
        self._made: ImagesInterface | None = None

    def _images(self) -> ImagesInterface:
        made = self._made
        if made is None:
            made = self._made = self._make(*self._args)
        return made

    def save(self, image: Any, *, category: str = "general", metadata: Mapping[str, Any] | None = None,
             is_intermediate: bool | None = None) -> ImageField:
        return self._images().save(image, category=category, metadata=metadata, is_intermediate=is_intermediate)

    def get_pil(self, image_name: str, mode: str | None = None) -> Any:
        return self._images().get_pil(image_name, mode)

    def get_path(self, image_name: str, thumbnail: bool = False) -> Path:
        return self._images().get_path(image_name, thumbnail)

    def get_dto(self, image_name: str) -> ImageRecord:
        return self._images().get_dto(image_name)

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        return self._images().get_metadata(image_name)

    def __getattr__(self, name: str) -> Any:
        # What a host's images interface offers beyond the SDK's protocol stays reachable.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._images(), name)
