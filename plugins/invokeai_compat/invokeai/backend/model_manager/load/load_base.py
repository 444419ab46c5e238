"""InvokeAI's ``LoadedModel`` (what ``context.models.load`` returns: invoke_sdk's protocol) and
``LoadedModelWithoutConfig`` (what ``load_local_model`` / ``load_remote_model`` return)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from invoke_sdk.models.loading import LoadedModel

__all__ = ["LoadedModel", "LoadedModelWithoutConfig"]


class LoadedModelWithoutConfig:
    """A model a node loaded from a file through the host's model cache; InvokeAI's two ways of using it.

    ``with loaded as model:`` (InvokeAI's older API) and ``with loaded.model_on_device() as (state_dict, model):``
    (its newer one) both lock the model on the execution device for the block. ``state_dict`` is always None here:
    the host's cache keeps no CPU copy of the weights (InvokeAI allows None for models without one).
    """

    def __init__(self, handle: AbstractContextManager[Any]) -> None:
        self._handle = handle

    def __enter__(self) -> Any:
        return self._handle.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        self._handle.__exit__(*exc_info)

    @contextmanager
    def model_on_device(self, working_mem_bytes: int | None = None) -> Iterator[tuple[None, Any]]:
        """(None, the model on the execution device) for the block."""
        with self._handle as model:
            yield None, model

    @property
    def model(self) -> Any:
        """The model wherever it is now, without locking it."""
        return getattr(self._handle, "model", None)
