"""The host's :class:`~invoke_sdk.InvocationContext`: what a node may use while it runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from invoke_sdk import ImageField, ModelIdentifierField
from invoke_sdk.context import ConditioningInterface, ImagesInterface, ModelsInterface, TensorsInterface

__all__ = [
    "HostInvocationContext",
    "NodeUtil",
    "ServiceUnavailableError",
    "UnavailableImages",
    "UnavailableModels",
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

    def search_by_attrs(self, name: str | None = None, base: str | None = None, type: str | None = None) -> list[Any]:  # noqa: A002
        raise self._refuse()


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
