"""The model manager service: syncs records with the disk and owns installs, changes and deletes.

Its record store is the storage backend's (``model_records``): the backend starts (opens, migrates)
before the manager and stops after it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from invoke_sdk.models import ModelConfigBase, ModelSourceType
from invoke_sdk.models.records import ModelRecordStore

from invoke_host.config import HostConfig
from invoke_host.events.bus import EventBus
from invoke_host.models.address_policy import AddressPolicy
from invoke_host.models.config_validation import ModelsUnavailableError, config_validator
from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.download_slots import DownloadSlots
from invoke_host.models.events import InstallEvents
from invoke_host.models.hashing import hash_model, imohash_model, model_size
from invoke_host.models.install import ModelInstallService
from invoke_host.models.record_paths import ModelPathError, ModelPaths, UnsafeDeleteError
from invoke_host.registry import FrozenRegistry

__all__ = ["ModelChangeListener", "ModelManager", "ModelsUnavailableError"]

logger = logging.getLogger("invoke_host.models")

ModelChangeListener = Callable[[str], None]
"""Told the key of a model whose record was changed or removed (an edit, a delete, a sync that found it changed
or gone), on the event loop, after the store has it: what was loaded or computed with the model no longer holds."""

_WEIGHT_SUFFIXES = {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"}
_FOLDER_MARKERS = ("model_index.json", "config.json", "learned_embeds.safetensors", "pytorch_lora_weights.safetensors")
_FIXED_FIELDS = {
    "key": "a model's key cannot be changed: it derives from the model's content",
    "path": (
        "a model's path cannot be changed: it names the file or folder this model was installed to. To use files "
        "at another place, install them from there (inplace=true registers them where they lie) and delete this "
        "model with unregister=true"
    ),
    "inplace": (
        "inplace cannot be changed: it records whether the host placed this model's files (and may delete them) "
        "or found them where they lie"
    ),
}


class ModelManager:
    """Records + installs + sync, started and stopped with the host.

    ``records`` is the storage backend's model record store; without one (no backend) model management is off.
    ``maintain_on_start`` clears the folders of unfinished installs, settles old records and syncs them with the
    disk at start; a host working beside a server on the same root turns it off (those are the server's to tend).
    ``download_slots`` (``download_concurrency`` of them by default) bound the installs' downloads.
    """

    def __init__(
        self,
        config: HostConfig,
        registry: FrozenRegistry,
        records: ModelRecordStore | None = None,
        bus: EventBus | None = None,
        *,
        on_change: ModelChangeListener | None = None,
        maintain_on_start: bool = True,
        download_slots: DownloadSlots | None = None,
    ) -> None:
        self.config = config
        # Shared with the host's download cache, so node downloads and installs count toward one limit.
        self.download_slots = download_slots or DownloadSlots(config.download_concurrency)
        self._on_change = on_change
        self.maintain_on_start = maintain_on_start
        self.registry = registry
        self.paths = ModelPaths(config.models_dir or config.root / "models")
        self.models_dir = self.paths.models_dir
        self.events = InstallEvents(bus)
        self._records = records
        self._validate = config_validator(registry)
        self._store: ModelRecordStore | None = None
        self._installer: ModelInstallService | None = None

    def _changed(self, key: str) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(key)
        except Exception:
            # The record change stands; a listener that failed is a bug to see in the log, not a failed edit.
            logger.exception("A model change listener failed for model %s", key)

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
        store = self._records
        if store is None:
            logger.warning("There is no storage backend, so no model records: model management is off")
            return
        self._store = store
        self.models_dir.mkdir(parents=True, exist_ok=True)
        if self.maintain_on_start:
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
            slots=self.download_slots,
            paths=self.paths,
            limits=DownloadLimits(
                max_bytes=self.config.download_max_bytes,
                timeout_s=self.config.download_timeout_s,
                stall_timeout_s=self.config.download_stall_timeout_s,
            ),
        )
        if self.maintain_on_start:
            await self._settle_inplace()
            if self.config.model_sync_on_start:
                await self.sync()

    async def stop(self) -> None:
        if self._installer is not None:
            await self._installer.stop()
        # The store is the storage backend's: the backend closes it after this service stops.
        self._store = None

    def resolve(self, config: ModelConfigBase) -> Path:
        """The absolute path of a record's model."""
        return self.paths.absolute(config.path)

    async def _settle_inplace(self) -> None:
        """Records made before ``inplace`` was kept get it now, from what they say about where they came from.

        Placed by the host (``False``, so a delete removes the files) only when the files were downloaded, or
        copied from a path that is not where they lie now, and the path passes :meth:`ModelPaths.check_owned`;
        anything else (in place, a relative source, a path like ``"."``) keeps its files (``True``).
        """
        records = await self.store.search()
        # A record that claims the models directory (an old ``PATCH {"path": "."}``) is nobody's own files:
        # it must not make every other record look shared. It is kept in place, and a delete names it.
        claims_all = {c.key for c in records if self.models_dir.is_relative_to(self.resolve(c).resolve())}
        for config in records:
            if config.inplace is not None:
                continue
            if config.key in claims_all:
                logger.warning(
                    "Model %s (%s) is recorded at %s, which holds the whole models directory: unregister it",
                    config.name,
                    config.key,
                    self.resolve(config),
                )
            others = [c for c in records if c.key != config.key and c.key not in claims_all]
            inplace = self._was_inplace(config, others)
            await self.store.update(config.key, {"inplace": inplace})
            logger.info(
                "Model %s (%s) predates ownership tracking: %s",
                config.name,
                config.key,
                "its files are treated as the host's own" if not inplace else "its files will never be deleted",
            )

    def _was_inplace(self, config: ModelConfigBase, others: list[ModelConfigBase]) -> bool:
        if config.source_type is ModelSourceType.Path:
            try:
                source = Path(config.source).expanduser()
            except RuntimeError:  # "~user" of no such user
                return True
            if not source.is_absolute() or source.resolve() == self.resolve(config).resolve():
                return True
        try:
            self.paths.check_owned(self.resolve(config), others)
        except ModelPathError:
            return True
        return False

    async def sync(self) -> dict[str, list[str]]:
        """Unregister records whose files vanished; re-hash models whose size or imohash changed."""
        report: dict[str, list[str]] = {"missing": [], "changed": []}
        for config in await self.store.search():
            path = self.resolve(config)
            if not path.exists():
                logger.warning("Model %s (%s) is gone from %s: its record is removed", config.name, config.key, path)
                await self.store.delete(config.key)
                self._changed(config.key)
                report["missing"].append(config.key)
                continue
            size = await asyncio.to_thread(model_size, path)
            check = await asyncio.to_thread(imohash_model, path)
            if size == config.file_size and check == config.imohash:
                continue
            logger.info("Model %s changed on disk: re-hashing %s", config.name, path)
            digest = await asyncio.to_thread(hash_model, path)
            await self.store.update(config.key, {"hash": digest, "file_size": size, "imohash": check})
            self._changed(config.key)
            report["changed"].append(config.key)
        return report

    async def update(self, key: str, changes: Mapping[str, Any]) -> ModelConfigBase:
        """A sparse change of a record's fields; ``key``, ``path`` and ``inplace`` stay as they are."""
        current = (await self.store.get(key)).model_dump(mode="json")
        for field, reason in _FIXED_FIELDS.items():
            if field in changes and changes[field] != current[field]:
                raise ValueError(reason)
        updated = await self.store.update(key, changes)
        self._changed(key)
        return updated

    async def delete(self, key: str) -> ModelConfigBase:
        """Remove the record and, for a model the host placed, its own files (see :mod:`.record_paths`).

        A model registered in place is only unregistered. :class:`UnsafeDeleteError` (and nothing deleted) when
        the record's path is not files the host placed for this model alone.
        """
        async with self.paths.lock:
            config = await self.store.get(key)
            path = self.resolve(config)
            if config.inplace is not False:
                await self.store.delete(key)
                self._changed(key)
                logger.info(
                    "Unregistered model %s (%s): it was registered in place, so its files stay at %s",
                    config.name,
                    key,
                    path,
                )
                return config
            others = [c for c in await self.store.search() if c.key != key]
            try:
                real = self.paths.check_owned(path, others)
            except ModelPathError as exc:
                raise UnsafeDeleteError(
                    f"model {config.name!r} ({key}) was not deleted: {exc}. Delete it with unregister=true to "
                    "remove only its record"
                ) from None
            await self.store.delete(key)
            self._changed(key)
            if real.exists():
                await asyncio.to_thread(shutil.rmtree if real.is_dir() else Path.unlink, real)
            logger.info("Deleted model %s (%s) and its files at %s", config.name, key, real)
        return config

    async def unregister(self, key: str) -> ModelConfigBase:
        """Remove the record only; the files stay."""
        config = await self.store.get(key)
        await self.store.delete(key)
        self._changed(key)
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
            installed = await self.store.search_by_path(self.paths.stored(entry))
            found.append({"path": str(entry), "is_installed": bool(installed)})
        return found

