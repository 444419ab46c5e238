"""The host side of ``context.models``: config lookup + registered loaders + the model cache."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from invoke_sdk.context import ModelFileLoader
from invoke_sdk.fields import ModelIdentifierField
from invoke_sdk.models.configs import BaseModelType, ModelFormat, ModelType
from invoke_sdk.models.loading import loader_key

from invoke_host.model_cache.cache import ModelCache
from invoke_host.model_cache.file_models import FileModelLoader, file_model_config
from invoke_host.model_cache.handle import ModelHandle
from invoke_host.model_cache.run_models import NodeProgress, RunModels
from invoke_host.models.download_cache import DownloadCache

__all__ = ["ConfigLookup", "ConfigSearch", "ModelsService", "UnknownModelError"]

ConfigLookup = Callable[[str], Any]
"""Returns the installed model's config for a key, or raises ``KeyError`` (the model records' ``get``)."""
ConfigSearch = Callable[..., list[Any]]
"""Returns the configs matching ``name``/``base``/``type`` filters (the model records' ``search``)."""

ConfigSearch = Callable[..., list[Any]]
"""Returns the configs matching keyword filters ``name``, ``base``, ``type``, ``format`` (the records' ``search``)."""


class UnknownModelError(KeyError):
    """No installed model has this key; the message names it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


class ModelsService:
    """Implements :class:`invoke_sdk.context.ModelsInterface` over a config lookup, loaders and a cache.

    ``loaders`` maps ``"<type>/<format>"`` to a loader, as the frozen registry's
    ``kind("model_loaders")`` holds them (``Registered`` wrappers are unwrapped). ``downloads`` is the host's
    download cache (``download_and_cache_model``); without one, downloads are refused. A run uses
    :meth:`for_run`, which adds the run's cancel and progress to the downloads.
    """

    def __init__(
        self,
        lookup: ConfigLookup,
        loaders: Mapping[str, Any],
        cache: ModelCache,
        search: ConfigSearch | None = None,
        downloads: DownloadCache | None = None,
    ) -> None:
        self._lookup = lookup
        self._search = search
        self._loaders = {key: getattr(value, "value", value) for key, value in loaders.items()}
        self.cache = cache
        self.downloads = downloads
        self._file_loader = FileModelLoader(self._device_available)

    def _device_available(self, device: str) -> bool:
        """Whether file models can run on ``device``: what the registered loaders' tensor library says."""
        return any(loader.device_available(device) for _, loader in sorted(self._loaders.items())[:1])

    def for_run(self, cancel: threading.Event, progress: NodeProgress) -> RunModels:
        """``context.models`` for one run: its downloads stop on ``cancel`` and report through ``progress``."""
        return RunModels(self, self.downloads, cancel, progress)

    @staticmethod
    def _key_and_submodel(model: ModelIdentifierField | str, submodel: str | None) -> tuple[str, str | None]:
        if isinstance(model, ModelIdentifierField):
            return model.key, submodel if submodel is not None else model.submodel_type
        return model, submodel

    def exists(self, key: str) -> bool:
        """Whether a model with this key is installed."""
        try:
            self._lookup(key)
        except KeyError:
            return False
        return True

    def get_config(self, model: ModelIdentifierField | str) -> Any:
        """The installed model's config; ``UnknownModelError`` (a ``KeyError``) if there is none."""
        key, _ = self._key_and_submodel(model, None)
        try:
            return self._lookup(key)
        except KeyError:
            raise UnknownModelError(
                f"no installed model has the key {key!r}: install it, or pick an installed model"
            ) from None

    def loader_for(self, config: Any) -> Any:
        """The registered loader for the config's type and format."""
        model_type = getattr(config.type, "value", config.type)
        model_format = getattr(config.format, "value", config.format)
        key = loader_key(model_type, model_format)
        loader = self._loaders.get(key)
        if loader is None:
            known = ", ".join(sorted(self._loaders)) or "none"
            raise ValueError(
                f"no plugin can load {model_type} models in the {model_format} format (model {config.key}); "
                f"loaders installed: {known}"
            )
        return loader

    def load(self, model: ModelIdentifierField | str, submodel: str | None = None) -> ModelHandle:
        """Load the model (or a submodel) into the RAM cache now and return a handle to lock it with."""
        key, sub = self._key_and_submodel(model, submodel)
        config = self.get_config(key)
        loader = self.loader_for(config)
        self.cache.get(key, sub, config, loader, current=True)
        return ModelHandle(self.cache, config, sub, loader)

    def search_by_attrs(
        self,
        name: str | None = None,
        base: str | None = None,
        type: str | None = None,  # noqa: A002 - the config field's name
        format: str | None = None,  # noqa: A002 - the config field's name
    ) -> list[Any]:
        """Installed models' configs matching every given attribute; a value no model can have is a ValueError."""
        if self._search is None:
            raise ValueError("this host's model lookup cannot search; look models up by key")
        filters: dict[str, Any] = {"name": name}
        for field, enum, value in (("base", BaseModelType, base), ("type", ModelType, type),
                                   ("format", ModelFormat, format)):
            if value is not None:
                try:
                    filters[field] = enum(value)
                except ValueError:
                    known = ", ".join(member.value for member in enum)
                    raise ValueError(f"no model has the {field} {value!r}; the {field}s are: {known}") from None
        return self._search(**filters)

    def download_and_cache_model(self, source: str, *, revision: str | None = None) -> Path:
        """The local path of ``source`` in the download cache, downloaded first if needed (see the SDK's docs)."""
        if self.downloads is None:
            raise ValueError("this host has no download cache (no models directory): install the model instead")
        return self.downloads.fetch(source, revision=revision).path

    def load_local_model(self, model_path: Path | str, loader: ModelFileLoader) -> ModelHandle:
        """Load a file or folder with the node's ``loader`` into the model cache; a handle to lock it with."""
        config = file_model_config(model_path, loader)
        self.cache.get(config.key, None, config, self._file_loader, current=True)
        return ModelHandle(self.cache, config, None, self._file_loader)

    def load_remote_model(self, source: str, loader: ModelFileLoader, *, revision: str | None = None) -> ModelHandle:
        """:meth:`download_and_cache_model`, then :meth:`load_local_model` of its path."""
        return self.load_local_model(self.download_and_cache_model(source, revision=revision), loader)
