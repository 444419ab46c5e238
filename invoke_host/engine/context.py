"""The host's :class:`~invoke_sdk.InvocationContext`: what a node may use while it runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from invoke_sdk import ImageField, ModelIdentifierField
from invoke_sdk.context import (
    ConditioningInterface,
    ImagesInterface,
    ModelFileLoader,
    ModelsInterface,
    TensorsInterface,
)
from invoke_sdk.images import ImageRecord

__all__ = [
    "HostInvocationContext",
    "NodeUtil",
    "RunScopedModels",
    "ServiceUnavailableError",
    "UnavailableImages",
    "UnavailableModels",
    "models_for_run",
]


class ServiceUnavailableError(RuntimeError):
    """A node asked for a service this host was built without."""


class UnavailableImages:
    """The image store of a host that has none: every call says so."""

    def _refuse(self) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            "the image store is not available in this host: no images service was configured, so nodes "
            "cannot save or load images here"
        )

    def save(self, image: Any, *, category: str = "general", metadata: Mapping[str, Any] | None = None,
             is_intermediate: bool | None = None) -> ImageField:
        raise self._refuse()

    def get_pil(self, image_name: str, mode: str | None = None) -> Any:
        raise self._refuse()

    def get_path(self, image_name: str, thumbnail: bool = False) -> Path:
        raise self._refuse()

    def get_dto(self, image_name: str) -> ImageRecord:
        raise self._refuse()

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        raise self._refuse()


class UnavailableModels:
    """The model manager of a host that has none: every call says so."""

    def _refuse(self) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            "the model manager is not available in this host: no model service was configured, so nodes "
            "cannot load models here"
        )

    def exists(self, key: str) -> bool:
        raise self._refuse()

    def load(self, model: ModelIdentifierField | str, submodel: str | None = None) -> AbstractContextManager[Any]:
        raise self._refuse()

    def get_config(self, model: ModelIdentifierField | str) -> Any:
        raise self._refuse()

    def search_by_attrs(self, name: str | None = None, base: str | None = None, type: str | None = None,  # noqa: A002
                        format: str | None = None) -> list[Any]:  # noqa: A002
        raise self._refuse()

    def download_and_cache_model(self, source: str, *, revision: str | None = None) -> Path:
        raise self._refuse()

    def load_local_model(self, model_path: Path | str, loader: ModelFileLoader) -> AbstractContextManager[Any]:
        raise self._refuse()

    def load_remote_model(self, source: str, loader: ModelFileLoader, *,
                          revision: str | None = None) -> AbstractContextManager[Any]:
        raise self._refuse()


class _ScopedModels(ModelsInterface, Protocol):
    def close(self) -> None: ...


@runtime_checkable
class RunScopedModels(Protocol):
    """A models service that gives each run its own ``context.models`` (the host's: downloads that honour the run's
    cancel and report its progress); ``close()`` on what it gives ends the run's hold on it."""

    def for_run(self, cancel: threading.Event, progress: Callable[[str, float | None, Any], None]) -> _ScopedModels:
        ...


def _nothing() -> None:
    pass


def models_for_run(
    models: ModelsInterface, cancel: threading.Event, progress: Callable[[str, float | None, Any], None]
) -> tuple[ModelsInterface, Callable[[], None]]:
    """``context.models`` for one run, and what to call when the run ends."""
    if isinstance(models, RunScopedModels):
        scoped = models.for_run(cancel, progress)
        return scoped, scoped.close
    return models, _nothing


class NodeUtil:
    """Progress and cancellation for the node that is running now."""

    def __init__(self, cancel: threading.Event, on_progress: Callable[[str, float | None, Any], None]) -> None:
        self._cancel = cancel
        self._on_progress = on_progress

    def signal_progress(self, message: str, percentage: float | None = None, image: Any = None) -> None:
        if percentage is not None and not 0.0 <= percentage <= 1.0:
            raise ValueError(f"percentage must be between 0 and 1, not {percentage}")
        self._on_progress(message, percentage, image)

    def is_canceled(self) -> bool:
        return self._cancel.is_set()


class HostInvocationContext:
    """The context a node's ``invoke`` receives; implements the SDK's ``InvocationContext`` protocol."""

    def __init__(
        self,
        *,
        images: ImagesInterface,
        tensors: TensorsInterface,
        conditioning: ConditioningInterface,
        models: ModelsInterface,
        util: NodeUtil,
        logger: logging.Logger,
        config: Mapping[str, Any],
    ) -> None:
        self.images = images
        self.tensors = tensors
        self.conditioning = conditioning
        self.models = models
        self.util = util
        self.logger = logger
        self.config = config
