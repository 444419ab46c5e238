"""The model manager service: syncs records with the disk and owns installs.

Its record store is the storage backend's (``host.storage.model_records``): the backend starts
(opens, migrates) before the manager and stops after it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke_sdk.model_records import ModelRecordStore
from invoke_sdk.models import ModelConfigBase

from invoke_host.config import HostConfig
from invoke_host.models.address_policy import AddressPolicy
from invoke_host.models.config_validation import ModelsUnavailableError, config_validator
from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.events import InstallEvents
from invoke_host.models.hashing import hash_model, imohash_model, model_size
from invoke_host.models.install import ModelInstallService, stored_path
from invoke_host.registry import FrozenRegistry

if TYPE_CHECKING:
    from invoke_sdk.storage import StorageBackend

    from invoke_host.events import EventBus

__all__ = ["ModelManager", "ModelsUnavailableError", "model_manager_for"]

logger = logging.getLogger("invoke_host.models")

_WEIGHT_SUFFIXES = {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"}
_FOLDER_MARKERS = ("model_index.json", "config.json", "learned_embeds.safetensors", "pytorch_lora_weights.safetensors")


class ModelManager:
    """Records + installs + sync, started and stopped with the host."""

    def __init__(
        self,
        config: HostConfig,
        registry: FrozenRegistry,
        storage: StorageBackend | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.models_dir = (config.models_dir or config.root / "models").resolve()
        self.events = InstallEvents(bus)
        self._storage = storage
        self._validate = config_validator(registry)
        self._store: ModelRecordStore | None = None
        self._installer: ModelInstallService | None = None

    def validate(self, data: Mapping[str, Any]) -> ModelConfigBase:
        """The config ``data`` describes, as its registered class (pydantic ``ValidationError`` if invalid)."""
        return self._validate(data)

    @property
    def store(self) -> ModelRecordStore:
        if self._store is None:
            raise ModelsUnavailableError("the model record store is not available (see the start-up log)")
        return self._store

    @property
    def installer(self) -> ModelInstallService:
        if self._installer is None:
            raise ModelsUnavailableError("the model installer is not available (see the start-up log)")
        return self._installer

    async def start(self) -> None:
        if self._storage is None:
            logger.warning("There is no storage backend, so no model records: model management is off")
            return
        store = self._storage.model_records
        self._store = store
        self.models_dir.mkdir(parents=True, exist_ok=True)
        # Job folders of a previous run that died mid-install hold nothing anyone can use.
        await asyncio.to_thread(shutil.rmtree, self.models_dir / ".tmp", True)
        self._installer = ModelInstallService(
            store=store,
            validate=self.validate,
            probers=self.registry.model_probers,
            models_dir=self.models_dir,
            policy=AddressPolicy(
                allow_private=self.config.download_allow_private, allow_loopback=self.config.download_allow_loopback
            ),
            events=self.events,
            concurrency=self.config.download_concurrency,
            limits=DownloadLimits(
                max_bytes=self.config.download_max_bytes,
                timeout_s=self.config.download_timeout_s,
                stall_timeout_s=self.config.download_stall_timeout_s,
            ),
        )
        if self.config.model_sync_on_start:
            await self.sync()

    async def stop(self) -> None:
        if self._installer is not None:
            await self._installer.stop()
        # The store is the storage backend's: the backend closes it after this service stops.
        self._store = None

    def resolve(self, config: ModelConfigBase) -> Path:
        """The absolute path of a record's model."""
        path = Path(config.path)
        return path if path.is_absolute() else self.models_dir / path

    async def sync(self) -> dict[str, list[str]]:
        """Unregister records whose files vanished; re-hash models whose size or imohash changed."""
        report: dict[str, list[str]] = {"missing": [], "changed": []}
        for config in await self.store.search():
            path = self.resolve(config)
            if not path.exists():
                logger.warning("Model %s (%s) is gone from %s: its record is removed", config.name, config.key, path)
                await self.store.delete(config.key)
                report["missing"].append(config.key)
                continue
            size = await asyncio.to_thread(model_size, path)
            check = await asyncio.to_thread(imohash_model, path)
            if size == config.file_size and check == config.imohash:
                continue
            logger.info("Model %s changed on disk: re-hashing %s", config.name, path)
            digest = await asyncio.to_thread(hash_model, path)
            await self.store.update(config.key, {"hash": digest, "file_size": size, "imohash": check})
            report["changed"].append(config.key)
        return report

    async def delete(self, key: str) -> ModelConfigBase:
        """Remove the record and, when they lie inside the models directory, the files."""
        config = await self.store.get(key)
        path = self.resolve(config)
        await self.store.delete(key)
        if path.resolve().is_relative_to(self.models_dir) and path.exists():
            await asyncio.to_thread(shutil.rmtree if path.is_dir() else Path.unlink, path)
            logger.info("Deleted model %s and its files at %s", config.name, path)
        else:
            logger.info(
                "Deleted the record of %s; its files outside the models directory stay at %s", config.name, path
            )
        return config

    async def unregister(self, key: str) -> ModelConfigBase:
        """Remove the record only; the files stay."""
        config = await self.store.get(key)
        await self.store.delete(key)
        return config

    async def scan_folder(self, folder: Path) -> list[dict[str, Any]]:
        """Models directly inside ``folder`` (weight files and model folders), with whether each is installed."""
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder")
        found: list[dict[str, Any]] = []
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            is_model = (entry.is_file() and entry.suffix.lower() in _WEIGHT_SUFFIXES) or (
                entry.is_dir() and any((entry / m).exists() for m in _FOLDER_MARKERS)
            )
            if not is_model:
                continue
            installed = await self.store.search_by_path(stored_path(entry, self.models_dir))
            found.append({"path": str(entry), "is_installed": bool(installed)})
        return found


def model_manager_for(
    config: HostConfig,
    registry: FrozenRegistry,
    storage: StorageBackend | None = None,
    bus: EventBus | None = None,
) -> ModelManager:
    """The host's model manager (model management turns itself off when there is no storage backend)."""
    return ModelManager(config, registry, storage, bus)
