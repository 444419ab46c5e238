"""The InvokeAI-shaped context a compat node's ``invoke`` receives, around the host's invoke_sdk context.

InvokeAI's ``context.images.save(image, board_id=..., image_category=..., metadata=...)`` returns an
``ImageDTO``; here it saves through invoke_sdk's ``images.save`` and reads the record back with ``get_dto``.
Boards are not kept: a ``board_id`` (or a node's ``board`` input) is accepted and ignored with a warning,
because refusing would fail every pack that offers a board picker while the image itself saves fine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from invokeai.app.invocations.fields import MetadataField
from invokeai.app.services.config.config_default import InvokeAIAppConfig
from invokeai.app.services.image_records.image_records_common import ImageCategory
from invokeai.app.services.images.images_common import ImageDTO
from invokeai.backend.model_manager.load.load_base import LoadedModelWithoutConfig

from invokeai_compat.unsupported import unsupported

__all__ = ["InvokeAIContext", "adapt_context"]

logger = logging.getLogger("invokeai_compat")


def _metadata_dict(metadata: Any) -> dict[str, Any] | None:
    if metadata is None:
        return None
    if isinstance(metadata, MetadataField):
        return dict(metadata.root)
    if hasattr(metadata, "model_dump"):
        dumped = metadata.model_dump(mode="json")
        return dumped if isinstance(dumped, dict) else {"value": dumped}
    return dict(metadata)


class ImagesAdapter:
    """InvokeAI's ``context.images``."""

    def __init__(self, images: Any, node: Any) -> None:
        self._images = images
        self._node = node

    def save(
        self,
        image: Any,
        board_id: str | None = None,
        image_category: ImageCategory | str = ImageCategory.GENERAL,
        metadata: Any = None,
        graph: Any = None,
        workflow: Any = None,
    ) -> ImageDTO:
        """Save a PIL image; the node's ``metadata`` input is saved when ``metadata`` is not given."""
        board = board_id or getattr(getattr(self._node, "board", None), "board_id", None)
        if board:
            logger.warning("Board %r ignored: Invoke Host keeps no boards; the image is saved without one", board)
        if metadata is None:
            metadata = getattr(self._node, "metadata", None)
        field = self._images.save(
            image, category=ImageCategory(getattr(image_category, "value", image_category)).value,
            metadata=_metadata_dict(metadata),
        )
        return self.get_dto(field.image_name)

    def get_pil(self, image_name: str, mode: str | None = None) -> Any:
        """A stored image as PIL, converted to ``mode`` if given."""
        return self._images.get_pil(image_name, mode)

    def get_dto(self, image_name: str) -> ImageDTO:
        """The stored image's ``ImageDTO``."""
        return ImageDTO.from_record(self._images.get_dto(image_name))

    def get_metadata(self, image_name: str) -> MetadataField | None:
        """The metadata saved with the image, or None."""
        found = self._images.get_metadata(image_name)
        return MetadataField(found) if found is not None else None

    def get_path(self, image_name: str, thumbnail: bool = False) -> Path:
        """The image's file on disk."""
        return Path(self._images.get_path(image_name, thumbnail))

    def get_url(self, image_name: str, thumbnail: bool = False) -> str:
        """The image's URL path on this server."""
        dto = self.get_dto(image_name)
        return dto.thumbnail_url if thumbnail else dto.image_url


class _Stored:
    """InvokeAI's ``context.tensors`` / ``context.conditioning``: same calls, its keyword names."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def save(self, tensor: Any = None, conditioning_data: Any = None) -> str:
        return str(self._store.save(tensor if tensor is not None else conditioning_data))

    def load(self, name: str) -> Any:
        return self._store.load(name)


class ModelsAdapter:
    """InvokeAI's ``context.models``: lookups by key and attributes, and files fetched by URL or repo through the
    host's download cache (its address policy and limits) and loaded through its model cache."""

    def __init__(self, models: Any) -> None:
        self._models = models

    @staticmethod
    def _key(identifier: Any) -> str:
        return identifier if isinstance(identifier, str) else str(identifier.key)

    def exists(self, identifier: Any) -> bool:
        return bool(self._models.exists(self._key(identifier)))

    def load(self, identifier: Any, submodel_type: Any = None) -> AbstractContextManager[Any]:
        sub = getattr(submodel_type, "value", submodel_type)
        return self._models.load(identifier, sub)  # type: ignore[no-any-return]

    def load_by_attrs(self, name: str, base: Any, type: Any, submodel_type: Any = None) -> Any:  # noqa: A002
        found = self.search_by_attrs(name=name, base=base, type=type)
        if not found:
            raise LookupError(f"no installed model is named {name!r} with base {base} and type {type}")
        return self.load(found[0].key, submodel_type)

    def get_config(self, identifier: Any) -> Any:
        return self._models.get_config(self._key(identifier))

    def search_by_attrs(self, name: str | None = None, base: Any = None, type: Any = None,  # noqa: A002
                        format: Any = None) -> list[Any]:  # noqa: A002
        def value(v: Any) -> Any:
            return getattr(v, "value", v)

        return list(self._models.search_by_attrs(name=name, base=value(base), type=value(type), format=value(format)))

    def search_by_path(self, path: Any) -> list[Any]:
        unsupported("context.models.search_by_path", "search installed models by name, base and type instead")

    def load_local_model(self, model_path: Path | str, loader: Callable[[Path], Any] | None = None
                         ) -> LoadedModelWithoutConfig:
        """Load a file with ``loader`` (default: safetensors, or a weights-only ``torch.load``) through the model
        cache, as InvokeAI does."""
        return LoadedModelWithoutConfig(self._models.load_local_model(Path(model_path), loader or default_loader))

    def load_remote_model(self, source: Any, loader: Callable[[Path], Any] | None = None
                          ) -> LoadedModelWithoutConfig:
        """Download ``source`` (a URL or ``owner/name::path``) into the host's download cache, then load it."""
        return self.load_local_model(self.download_and_cache_model(source), loader)

    def download_and_cache_model(self, source: Any) -> Path:
        """The local path of ``source`` in the host's download cache, downloaded first if needed."""
        return Path(self._models.download_and_cache_model(str(source)))


def default_loader(path: Path) -> Any:
    """InvokeAI's default for ``load_local_model``: a safetensors file, or a pickled checkpoint.

    Checkpoints are read with ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only:
    a checkpoint that needs its own classes fails here with torch's message, where InvokeAI would scan it and then
    unpickle it whole. A folder needs a loader of its own (InvokeAI's guess at a diffusers class is not made here).
    """
    if path.is_dir():
        unsupported(f"load_local_model of the folder {path} without a loader",
                    "pass a loader function that opens the folder (for example a from_pretrained call)")
    # torch and safetensors only when a pack loads a file: the compat layer itself stays light.
    if path.suffix.lower() in (".ckpt", ".pt", ".pth", ".bin"):
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    from safetensors.torch import load_file

    return load_file(path, device="cpu")


class UtilAdapter:
    """InvokeAI's ``context.util``."""

    def __init__(self, util: Any) -> None:
        self._util = util

    def is_canceled(self) -> bool:
        return bool(self._util.is_canceled())

    def signal_progress(self, message: str, percentage: float | None = None, image: Any = None,
                        image_size: Any = None) -> None:
        self._util.signal_progress(message, percentage, image)

    def sd_step_callback(self, intermediate_state: Any, base_model: Any = None) -> None:
        """Report a denoising step (``step`` of ``total_steps``) as progress."""
        step = int(getattr(intermediate_state, "step", 0))
        total = int(getattr(intermediate_state, "total_steps", 0) or 0)
        percentage = min(1.0, (step + 1) / total) if total else None
        self._util.signal_progress(f"Denoising step {step + 1}" + (f" of {total}" if total else ""), percentage)

    def flux_step_callback(self, intermediate_state: Any) -> None:
        self.sd_step_callback(intermediate_state)


class ConfigAdapter:
    """InvokeAI's ``context.config``: ``get()`` returns an ``InvokeAIAppConfig`` built from the host's config."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config

    def get(self) -> InvokeAIAppConfig:
        return InvokeAIAppConfig(self._config)


class BoardsAdapter:
    """InvokeAI's ``context.boards``: no boards are kept here, so there are none to list and none to make."""

    def get_all(self) -> list[Any]:
        return []

    def get_all_image_names_for_board(self, board_id: str) -> list[str]:
        return []

    def create(self, board_name: str) -> Any:
        unsupported("context.boards.create", "Invoke Host keeps no boards")

    def get_dto(self, board_id: str) -> Any:
        unsupported("context.boards.get_dto", "Invoke Host keeps no boards")

    def add_image_to_board(self, board_id: str, image_name: str) -> None:
        logger.warning("Board %r ignored: Invoke Host keeps no boards", board_id)


class InvokeAIContext:
    """What an InvokeAI node's ``invoke`` expects as ``context``, over the host's context."""

    def __init__(self, context: Any, node: Any) -> None:
        self.host_context = context
        self.images = ImagesAdapter(context.images, node)
        self.tensors = _Stored(context.tensors)
        self.conditioning = _Stored(context.conditioning)
        self.models = ModelsAdapter(context.models)
        self.util = UtilAdapter(context.util)
        self.config = ConfigAdapter(context.config)
        self.boards = BoardsAdapter()
        self.logger: logging.Logger = context.logger

    @property
    def services(self) -> LegacyServices:
        """InvokeAI 3.x's ``context.services``: its image calls, logger and cancel check, on this context."""
        return LegacyServices(self)

    workflow: Any = None
    """InvokeAI 3.x packs pass ``context.workflow`` to ``services.images.create``; the host saves the workflow."""

    @property
    def graph_execution_state_id(self) -> str:
        """InvokeAI 3.x's session id; packs only pass it back to ``services.images.create``, which ignores it."""
        return "invokeai-compat-session"


class _LegacyImages:
    """``context.services.images`` of InvokeAI 3.x."""

    def __init__(self, context: InvokeAIContext) -> None:
        self._context = context

    def create(self, image: Any, image_origin: Any = None, image_category: Any = ImageCategory.GENERAL,
               node_id: str | None = None, session_id: str | None = None, board_id: str | None = None,
               is_intermediate: bool | None = False, metadata: Any = None, workflow: Any = None) -> ImageDTO:
        return self._context.images.save(image, board_id=board_id, image_category=image_category,
                                         metadata=metadata)

    def get_pil_image(self, image_name: str) -> Any:
        return self._context.images.get_pil(image_name)

    def get_dto(self, image_name: str) -> ImageDTO:
        return self._context.images.get_dto(image_name)

    get = get_dto

    def get_path(self, image_name: str, thumbnail: bool = False) -> Path:
        return self._context.images.get_path(image_name, thumbnail)

    def get_metadata(self, image_name: str) -> MetadataField | None:
        return self._context.images.get_metadata(image_name)


class _LegacyQueue:
    def __init__(self, context: InvokeAIContext) -> None:
        self._context = context

    def is_canceled(self, session_id: str | None = None) -> bool:
        return self._context.util.is_canceled()


class LegacyServices:
    """InvokeAI 3.x's ``context.services``: images, logger, queue; the rest refuses, naming the 4.x call."""

    def __init__(self, context: InvokeAIContext) -> None:
        self.images = _LegacyImages(context)
        self.logger = context.logger
        self.queue = _LegacyQueue(context)
        self.configuration = context.config.get()

    def __getattr__(self, name: str) -> Any:
        unsupported(f"context.services.{name} (InvokeAI 3.x)",
                    "only its images, logger, queue and configuration are emulated; InvokeAI 4 replaced the rest "
                    "with context.tensors, context.models ...")


def adapt_context(context: Any, node: Any) -> Any:
    """``context`` as an InvokeAI node expects it (an adapter already is)."""
    if isinstance(context, InvokeAIContext):
        return context
    return InvokeAIContext(context, node)
