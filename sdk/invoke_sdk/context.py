"""What a node may call while it runs: the :class:`InvocationContext` protocol.

The host implements it; :mod:`invoke_sdk.testing` offers an implementation for tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from invoke_sdk.fields import ImageField, ModelIdentifierField
from invoke_sdk.images import ImageRecord

__all__ = [
    "ConditioningInterface",
    "ImagesInterface",
    "InvocationContext",
    "ModelFileLoader",
    "ModelsInterface",
    "TensorsInterface",
    "UtilInterface",
]


class ImagesInterface(Protocol):
    """Saving and reading images in the host's image store."""

    def save(
        self,
        image: Any,
        *,
        category: str = "general",
        metadata: Mapping[str, Any] | None = None,
        is_intermediate: bool | None = None,
    ) -> ImageField:
        """Save a PIL image; ``is_intermediate=None`` takes the node's own ``is_intermediate``.

        ``metadata`` is the generation metadata (InvokeAI's core metadata field names, so its "recall parameters"
        reads it); the host embeds it with the graph and workflow of the running item, and adds the run manifest
        under :data:`invoke_sdk.images.RUN_MANIFEST_KEY`.
        """
        ...

    def get_pil(self, image_name: str, mode: str | None = None) -> Any:
        """Open a stored image as a PIL image, converted to ``mode`` if given."""
        ...

    def get_path(self, image_name: str, thumbnail: bool = False) -> Path:
        """Where the stored image's file (or its thumbnail) lies on this machine's disk."""
        ...

    def get_dto(self, image_name: str) -> ImageRecord:
        """The stored image's record (name, size, category, session and node that made it ...).

        Raises :class:`~invoke_sdk.images.ImageNotFoundError` (a ``LookupError``) for an unknown name.
        """
        ...

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        """The generation metadata saved with the image (a JSON object), or None when it has none."""
        ...


class TensorsInterface(Protocol):
    """Keeping tensors between nodes."""

    def save(self, tensor: Any) -> str:
        """Store a tensor and return its name."""
        ...

    def load(self, name: str) -> Any:
        """Load a tensor stored earlier."""
        ...


class ConditioningInterface(Protocol):
    """Keeping prompt conditioning between nodes."""

    def save(self, conditioning: Any) -> str:
        """Store conditioning data and return its name."""
        ...

    def load(self, name: str) -> Any:
        """Load conditioning data stored earlier."""
        ...


ModelFileLoader = Callable[[Path], Any]
"""A node's own loader for a model file or folder: given its local path, returns the model object (a torch module, a
state dict, a pipeline ...). It runs in the node's thread; the host keeps what it returns in the model cache."""


class ModelsInterface(Protocol):
    """Loading installed models, and models a node fetches itself by URL or Hugging Face repo."""

    def exists(self, key: str) -> bool:
        """Whether a model with this key is installed."""
        ...

    def load(self, model: ModelIdentifierField | str, submodel: str | None = None) -> AbstractContextManager[Any]:
        """Load a model (or one submodel); inside the ``with`` block it stays on the execution device.

        ``submodel`` defaults to the field's ``submodel_type``. The handle is a
        :class:`~invoke_sdk.models.loading.LoadedModel`.
        """
        ...

    def get_config(self, model: ModelIdentifierField | str) -> Any:
        """The installed model's config (it has at least the fields of ``ModelConfigLike``).

        Raises ``KeyError`` with a message naming the key when no such model is installed.
        """
        ...

    def search_by_attrs(
        self,
        name: str | None = None,
        base: str | None = None,
        type: str | None = None,  # noqa: A002 - the config field's name
        format: str | None = None,  # noqa: A002 - the config field's name
    ) -> list[Any]:
        """The configs of installed models matching every given attribute (``name`` exactly), sorted by name.

        ``base``, ``type`` and ``format`` are the values of the configs' fields (``"sd-1"``, ``"main"``,
        ``"diffusers"`` ...). No filter returns every installed model.
        """
        ...

    def download_and_cache_model(self, source: str, *, revision: str | None = None) -> Path:
        """Download ``source`` once into the host's download cache and return its local path (no model record).

        ``source`` is an ``http(s)://`` URL (the path of the one file it gives) or a Hugging Face repo:
        ``owner/name`` (the repo's model files, as a folder), ``owner/name::path/in/repo`` (that file or subfolder),
        optionally with a variant, ``owner/name:fp16:path``. ``revision`` picks a branch, tag or commit of a repo
        (default ``main``). Later calls with the same source and revision return the cached path without any
        network access. The download follows the host's download rules: its address policy, size and time limits
        and Hugging Face token; it reports progress as the node's progress and stops when the run is canceled
        (:class:`~invoke_sdk.cancellation.InvocationCanceledError`), leaving nothing partial behind. A refused or
        failed download raises ``ValueError`` with a message naming the setting or the cause.
        """
        ...

    def load_local_model(self, model_path: Path | str, loader: ModelFileLoader) -> AbstractContextManager[Any]:
        """Load a file or folder with ``loader`` into the model cache, keyed by its path, content check and loader.

        ``with handle as model:`` gives the model on the execution device (a torch module is moved there), like
        :meth:`load`; the cache may drop it when room is needed, and the next use loads it again. The same path with
        the same content and loader is loaded once. The handle's ``config`` holds only the cache ``key``, the file's
        ``name`` and its absolute ``path``.
        """
        ...

    def load_remote_model(
        self, source: str, loader: ModelFileLoader, *, revision: str | None = None
    ) -> AbstractContextManager[Any]:
        """:meth:`download_and_cache_model` then :meth:`load_local_model` of the path it returns."""
        ...


class UtilInterface(Protocol):
    """Progress and cancellation."""

    def signal_progress(self, message: str, percentage: float | None = None, image: Any = None) -> None:
        """Tell the user how far the node has come (``percentage`` from 0 to 1), optionally with a preview."""
        ...

    def is_canceled(self) -> bool:
        """Whether the user canceled this run; long nodes should check it and return early."""
        ...


@runtime_checkable
class InvocationContext(Protocol):
    """Everything a node may use while it runs."""

    images: ImagesInterface
    tensors: TensorsInterface
    conditioning: ConditioningInterface
    models: ModelsInterface
    util: UtilInterface
    logger: logging.Logger
    config: Mapping[str, Any]
