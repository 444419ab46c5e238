"""The host's :class:`~invoke_sdk.context.ImagesInterface`: what one running node sees of the image store."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from invoke_sdk import BaseInvocation, ImageField
from invoke_sdk.images import RUN_MANIFEST_KEY, ImageCategory, ImageRecord

from invoke_host.images.run_manifest import RunManifestBuilder
from invoke_host.images.service import ImagesService, JsonText
from invoke_host.loop_bridge import LoopBridge

__all__ = ["GraphSource", "ImageSaveFence", "NodeImages", "NodeImagesFactory"]

T = TypeVar("T")

GraphSource = JsonText | Callable[[], JsonText]
"""The graph a node's saves record: its JSON data, or a function that makes it (called at the first save only)."""

ImageSaveFence = Callable[[str], Coroutine[Any, Any, None]]
"""Awaited with the session id before a node saves an image: raises when the run may no longer write (its worker
lost the item's lease and the item was claimed again; see ``invoke_host.queue.claims``)."""


class NodeImages:
    """``context.images`` for one node of one session: saves record that session, node and graph.

    With ``prepared_node_id`` each save is named from the session, that id and how many images the node saved
    before, so a node that runs again (a retried item) reuses its records instead of adding more.

    Node code is blocking and runs in a worker thread; each call hands its work to the service on
    the host's event loop through ``bridge`` and waits for it. Create one per node run (it is cheap).
    """

    def __init__(
        self,
        service: ImagesService,
        bridge: LoopBridge,
        *,
        session_id: str | None,
        node_id: str | None,
        graph: GraphSource | None = None,
        workflow: JsonText | None = None,
        is_intermediate: bool = False,
        prepared_node_id: str | None = None,
        fence: ImageSaveFence | None = None,
        manifest: RunManifestBuilder | None = None,
    ) -> None:
        self._service = service
        self._fence = fence
        self._bridge = bridge
        self._session_id = session_id
        self._node_id = node_id
        self._graph = graph
        self._workflow = workflow
        self._is_intermediate = is_intermediate
        self._prepared_node_id = prepared_node_id
        self._manifest = manifest
        self._manifest_data: dict[str, Any] | None = None
        self._saved = 0

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._bridge.call(coro, what="context.images")

    def save(
        self,
        image: Any,
        *,
        category: str = "general",
        metadata: Mapping[str, Any] | None = None,
        is_intermediate: bool | None = None,
    ) -> ImageField:
        """Save a PIL image under a new name, recording this node's session, id, graph and workflow.

        The metadata gets the run manifest (:data:`~invoke_sdk.images.RUN_MANIFEST_KEY`) of the graph.
        """
        category = ImageCategory(category)  # a bad category fails here, in the node, with the valid ones named
        if self._fence is not None and self._session_id is not None:
            self._call(self._fence(self._session_id))
        if callable(self._graph):
            self._graph = self._graph()
        if self._manifest is not None and isinstance(self._graph, Mapping):
            if self._manifest_data is None:
                # Once per node run: a node saving many images looks the models up once.
                self._manifest_data = self._call(self._manifest.build(self._graph)).model_dump(mode="json")
            metadata = {**(metadata or {}), RUN_MANIFEST_KEY: self._manifest_data}
        name = None
        if self._session_id is not None and self._prepared_node_id is not None:
            # Keyed by session and prepared node: a retry that runs this node again overwrites, never adds.
            name = self._service.namer.node_image_name(self._session_id, self._prepared_node_id, self._saved)
            self._saved += 1
        record = self._call(
            self._service.save(
                image,
                image_category=category,
                session_id=self._session_id,
                node_id=self._node_id,
                is_intermediate=self._is_intermediate if is_intermediate is None else is_intermediate,
                metadata=metadata,
                graph=self._graph,
                workflow=self._workflow,
                image_name=name,
            )
        )
        return ImageField(image_name=record.image_name)

    def get_pil(self, image_name: str, mode: str | None = None) -> Any:
        """Open a stored image, converted to ``mode`` if given."""
        image = self._call(self._service.get_pil(image_name))
        return image.convert(mode) if mode is not None and image.mode != mode else image

    def get_path(self, image_name: str, thumbnail: bool = False) -> Path:
        """The stored image's file on disk (its record must exist)."""
        self._call(self._service.get(image_name))
        return self._service.files.path(image_name, thumbnail=thumbnail)

    def get_dto(self, image_name: str) -> ImageRecord:
        """The stored image's record."""
        return self._call(self._service.get(image_name))

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        """The metadata embedded in the image, parsed; None when it has none (or it is not a JSON object)."""
        text = self._call(self._service.embedded(image_name)).metadata
        if text is None:
            return None
        value = json.loads(text)
        return value if isinstance(value, dict) else None


class NodeImagesFactory:
    """Makes each node run's ``context.images`` over one images service (the engine's ``images_for_node``)."""

    def __init__(
        self,
        service: ImagesService,
        bridge: LoopBridge,
        manifest: RunManifestBuilder | None = None,
        fence: ImageSaveFence | None = None,
    ) -> None:
        self._service = service
        self._bridge = bridge
        self._manifest = manifest
        self._fence = fence

    def __call__(
        self, session_id: str, node: BaseInvocation, source_node_id: str, graph: GraphSource | None,
        workflow: str | None = None,
    ) -> NodeImages:
        return NodeImages(
            self._service, self._bridge, session_id=session_id, node_id=source_node_id, graph=graph,
            workflow=workflow, is_intermediate=node.is_intermediate, prepared_node_id=node.id,
            manifest=self._manifest, fence=self._fence,
        )
