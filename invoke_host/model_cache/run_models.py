"""``context.models`` for one run of a session: downloads that honour the run's cancel and report its progress.

The host's :class:`~invoke_host.model_cache.models_service.ModelsService` is shared by every run on a device; the
runner asks it for a :class:`RunModels` per run (:meth:`ModelsService.for_run`), which knows the run's cancel flag
and progress callback, and pins every download cache entry it hands out until the run ends (:meth:`close`), so
the files a node was given are not evicted under a later node of the same run.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke_sdk.cancellation import InvocationCanceledError
from invoke_sdk.context import ModelFileLoader
from invoke_sdk.fields import ModelIdentifierField

from invoke_host.model_cache.handle import ModelHandle
from invoke_host.models.download_cache import DownloadCache, DownloadCanceledError

__all__ = ["NodeProgress", "RunModels"]

NodeProgress = Callable[[str, float | None, Any], None]
"""The runner's progress callback for the node running now: (message, fraction 0..1 or None, preview image)."""


def _release_all(downloads: DownloadCache, pinned: list[str]) -> None:
    while pinned:
        downloads.release(pinned.pop())


class RunModels:
    """Implements :class:`invoke_sdk.context.ModelsInterface` for one run, over the shared models service."""

    def __init__(
        self, service: Any, downloads: DownloadCache | None, cancel: threading.Event, progress: NodeProgress
    ) -> None:
        self._service = service
        self._downloads = downloads
        self._cancel = cancel
        self._progress = progress
        self._pinned: list[str] = []
        # A run that ends without close() (a bug upstream) still lets go of its entries when it is dropped.
        self._finalizer = weakref.finalize(self, _release_all, downloads, self._pinned) if downloads else None

    def close(self) -> None:
        """The run ended: its download cache entries may be evicted again."""
        if self._finalizer is not None:
            self._finalizer()

    def exists(self, key: str) -> bool:
        return bool(self._service.exists(key))

    def load(self, model: ModelIdentifierField | str, submodel: str | None = None) -> ModelHandle:
        return self._service.load(model, submodel)  # type: ignore[no-any-return]

    def get_config(self, model: ModelIdentifierField | str) -> Any:
        return self._service.get_config(model)

    def search_by_attrs(self, name: str | None = None, base: str | None = None, type: str | None = None,  # noqa: A002
                        format: str | None = None) -> list[Any]:  # noqa: A002
        return list(self._service.search_by_attrs(name=name, base=base, type=type, format=format))

    def download_and_cache_model(self, source: str, *, revision: str | None = None) -> Path:
        if self._downloads is None:
            return Path(self._service.download_and_cache_model(source, revision=revision))
        message = f"Downloading model {source}"
        self._progress(message, None, None)
        reported = [-1]

        def on_progress(done: int, total: int | None) -> None:
            if not total:
                return
            percent = min(100, done * 100 // total)
            if percent > reported[0]:  # at most once per percent: a multi-GB file makes about a hundred reports
                reported[0] = percent
                self._progress(message, percent / 100, None)

        try:
            found = self._downloads.fetch(
                source, revision=revision, cancelled=self._cancel.is_set, on_progress=on_progress, pin=True
            )
        except DownloadCanceledError as exc:
            raise InvocationCanceledError(str(exc)) from None
        self._pinned.append(found.key)
        return found.path

    def load_local_model(self, model_path: Path | str, loader: ModelFileLoader) -> ModelHandle:
        self._progress(f"Loading model {Path(model_path).name}", None, None)
        return self._service.load_local_model(model_path, loader)  # type: ignore[no-any-return]

    def load_remote_model(self, source: str, loader: ModelFileLoader, *, revision: str | None = None) -> ModelHandle:
        return self.load_local_model(self.download_and_cache_model(source, revision=revision), loader)
