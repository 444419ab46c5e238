"""The two-level model cache: models in RAM (size limit) and on the execution device (size limit).

A model is loaded from disk into RAM once, then moved to the execution device while a node holds
it locked (inside ``with handle as model``). Unlocked models stay where they are until room is
needed: the least recently used unlocked model on the device is moved back to RAM, and the least
recently used unlocked model in RAM is dropped. A locked model is never moved or dropped; if
everything is locked the cache goes over its limit and says so in the log.

Loading from disk happens outside the cache's lock, under a lock of its own per cache key: a hit on one model,
or a load of another, never waits behind a load (processors on several devices do not serialise), and two
threads asking for one model load it once. A model whose config changed or that was deleted is dropped
(:meth:`ModelCache.invalidate`); one that a node holds locked at that moment is retired: it leaves the cache at
once, so the next request loads it afresh, and its memory is counted until the node lets go.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from invoke_host.model_cache.devices import resolve_device, resolve_dtype
from invoke_host.model_cache.events import ModelLoadEvent, ModelLoadListener
from invoke_host.model_cache.sizes import is_movable, measure_size

__all__ = ["CacheEntry", "CacheStats", "ModelCache"]

logger = logging.getLogger("invoke_host.model_cache")

GB = 1024**3


@dataclass
class CacheEntry:
    """One cached model (or submodel)."""

    key: str
    config: Any
    submodel: str | None
    model: Any
    size_bytes: int
    execution_device: str
    location: str = "cpu"
    locks: int = 0

    @property
    def on_device(self) -> bool:
        """Whether the model sits on the execution device (always true when that device is the CPU)."""
        return self.location == self.execution_device


@dataclass
class CacheStats:
    """Counters and current usage, for logs, tests and benchmarks."""

    ram_used_bytes: int = 0
    vram_used_bytes: int = 0
    hits: int = 0
    loads: int = 0
    moves_to_device: int = 0
    offloads: int = 0
    evictions: int = 0
    evicted_keys: list[str] = field(default_factory=list)


def cache_key(model_key: str, submodel: str | None) -> str:
    """The cache key of a model or one of its submodels."""
    return f"{model_key}:{submodel}" if submodel else model_key


@dataclass
class _Loading:
    """A load from disk in progress: threads that want the same key wait on ``done`` instead of loading too."""

    done: threading.Event = field(default_factory=threading.Event)


class ModelCache:
    """Loads models through their loaders and keeps them within the RAM and VRAM limits.

    Thread-safe: nodes run in worker threads. Loading from disk holds no lock that other keys need (see the
    module's docstring); two threads asking for one model load it once.
    """

    def __init__(
        self,
        *,
        ram_limit_bytes: int,
        vram_limit_bytes: int,
        device: str = "auto",
        precision: str = "auto",
        listener: ModelLoadListener | None = None,
    ) -> None:
        self.ram_limit_bytes = ram_limit_bytes
        self.vram_limit_bytes = vram_limit_bytes
        self.device_preference = device
        self.precision = precision
        self._listener = listener
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._loading: dict[str, _Loading] = {}
        # Entries dropped while locked: out of the cache, but their memory counts until they are unlocked.
        self._retired: dict[int, CacheEntry] = {}
        self._lock = threading.RLock()
        self._devices: dict[int, str] = {}
        self._stats = CacheStats()
        self._last_keys: frozenset[str] = frozenset()

    @classmethod
    def from_config(
        cls, config: Any, listener: ModelLoadListener | None = None, device: str | None = None
    ) -> ModelCache:
        """A cache sized and placed by the host config.

        Reads ``ram_cache_gb``, ``vram_cache_gb``, ``device`` (unless ``device`` is given: one cache per device
        of ``--devices``, each with these limits) and ``precision``.
        """
        return cls(
            ram_limit_bytes=int(config.ram_cache_gb * GB),
            vram_limit_bytes=int(config.vram_cache_gb * GB),
            device=device if device is not None else config.device,
            precision=config.precision,
            listener=listener,
        )

    # -- where models run -------------------------------------------------------------------------

    def execution_device(self, loader: Any) -> str:
        """The device models from ``loader`` run on (asked once per loader)."""
        with self._lock:
            device = self._devices.get(id(loader))
            if device is None:
                device = resolve_device(self.device_preference, loader)
                self._devices[id(loader)] = device
                logger.info("Models from %s run on %s", type(loader).__name__, device)
            return device

    def dtype_for(self, loader: Any) -> str:
        """The dtype models from ``loader`` are loaded in."""
        return resolve_dtype(self.precision, self.execution_device(loader))

    # -- public operations ------------------------------------------------------------------------

    def get(
        self, model_key: str, submodel: str | None, config: Any, loader: Any, *, current: bool = False
    ) -> CacheEntry:
        """The cached entry, loading it from disk into RAM first if it is not cached.

        ``current=True`` says ``config`` was just read from the model records: an entry loaded with another config
        (the model was edited, here or by another node) is replaced. Without it (a handle re-entering with the
        config it was made with) any entry of the key will do, so two holders of one model never take turns
        reloading it.
        """
        return self._get(cache_key(model_key, submodel), submodel, config, loader, current=current, pin=False)

    def lock(self, model_key: str, submodel: str | None, config: Any, loader: Any) -> CacheEntry:
        """Load if needed, move onto the execution device and lock; pair with :meth:`unlock`."""
        entry = self._get(cache_key(model_key, submodel), submodel, config, loader, current=False, pin=True)
        with self._lock:
            try:
                if not entry.on_device and is_movable(entry.model):
                    self._make_room_on_device(entry.size_bytes)
                    entry.model = entry.model.to(entry.execution_device) or entry.model
                    entry.location = entry.execution_device
                    self._stats.moves_to_device += 1
                    # Moving out of RAM may have brought RAM back under its limit after an over-limit load.
                    self._make_room_in_ram(0)
            except BaseException:
                entry.locks -= 1
                if entry.locks == 0:
                    self._retired.pop(id(entry), None)
                raise
            return entry

    def unlock(self, entry: CacheEntry) -> None:
        """Release one lock; a model that is no longer locked may be moved or dropped from now on."""
        with self._lock:
            if entry.locks <= 0:
                raise RuntimeError(f"model {entry.key} is not locked")
            entry.locks -= 1
            if entry.locks == 0:
                if self._retired.pop(id(entry), None) is not None:
                    logger.info("Dropped model %s, retired while in use, now that it is released", entry.key)
                # Room that locked models kept from being freed can be freed now.
                self._make_room_in_ram(0)
                self._make_room_on_device(0)

    def drop(self, model_key: str, submodel: str | None = None) -> bool:
        """Forget a model (when it is deleted or changed on disk); a locked model is refused."""
        key = cache_key(model_key, submodel)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if entry.locks:
                raise RuntimeError(f"model {key} is in use and cannot be dropped from the cache")
            del self._entries[key]
            return True

    def invalidate(self, model_key: str) -> int:
        """Drop a model and all its submodels because its config changed or it was deleted; return how many.

        A locked one leaves the cache too (the next request loads it afresh) and is let go when unlocked.
        """
        prefix = f"{model_key}:"
        with self._lock:
            found = [e for k, e in self._entries.items() if k == model_key or k.startswith(prefix)]
            for entry in found:
                self._drop_entry(entry)
        if found:
            logger.info("Dropped model %s from the cache (%d part%s): it was changed or deleted", model_key,
                        len(found), "" if len(found) == 1 else "s")
        return len(found)

    def stats(self) -> CacheStats:
        """A snapshot of usage and counters."""
        with self._lock:
            snapshot = CacheStats(**{**self._stats.__dict__, "evicted_keys": list(self._stats.evicted_keys)})
            snapshot.ram_used_bytes = self._used("ram")
            snapshot.vram_used_bytes = self._used("vram")
            return snapshot

    def entries(self) -> list[CacheEntry]:
        """The cached entries, least recently used first."""
        with self._lock:
            return list(self._entries.values())

    def model_keys(self) -> frozenset[str]:
        """The keys of the models (whole or in part: any submodel) this cache holds: what a claim prefers.

        Called on the event loop before each claim, so it never waits: a load holds the cache's lock for as long
        as reading the model from disk takes, and then the keys seen last are returned.
        """
        if not self._lock.acquire(blocking=False):
            return self._last_keys
        try:
            self._last_keys = frozenset(str(getattr(e.config, "key", e.key.split(":", 1)[0]))
                                        for e in self._entries.values())
            return self._last_keys
        finally:
            self._lock.release()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    # -- internals (called with the lock held) ----------------------------------------------------

    def _emit(self, event: ModelLoadEvent) -> None:
        if self._listener is None:
            return
        try:
            self._listener(event)
        except Exception:
            # A failing listener (a closed websocket ...) must not fail the generation.
            logger.exception("A model load listener failed")

    def _get(self, key: str, submodel: str | None, config: Any, loader: Any, *, current: bool, pin: bool) -> CacheEntry:
        """The entry of ``key``, loaded if need be; ``pin`` adds a lock in the same step, so it cannot be dropped
        between being found (or loaded) and being locked."""
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and current and entry.config != config:
                    logger.info("Model %s changed since it was loaded: loading it again", key)
                    self._drop_entry(entry)
                    entry = None
                if entry is not None:
                    self._entries.move_to_end(key)
                    self._stats.hits += 1
                    if pin:
                        entry.locks += 1
                    return entry
                loading = self._loading.get(key)
                if loading is None:
                    loading = self._loading[key] = _Loading()
                    break
            # Another thread is loading this key: wait for it, then look again (its load may have failed).
            loading.done.wait()
        try:
            return self._load(key, submodel, config, loader, pin=pin)
        finally:
            with self._lock:
                del self._loading[key]
            loading.done.set()

    def _drop_entry(self, entry: CacheEntry) -> None:
        """Take an entry out of the cache; a locked one is retired until unlocked (called with the lock held)."""
        del self._entries[entry.key]
        if entry.locks:
            self._retired[id(entry)] = entry

    def _load(self, key: str, submodel: str | None, config: Any, loader: Any, *, pin: bool) -> CacheEntry:
        """Load from disk, outside the cache's lock (the caller holds the key's ``_Loading``), then insert."""
        device = self.execution_device(loader)
        dtype = resolve_dtype(self.precision, device)
        name = getattr(config, "name", None) or config.key
        logger.info("Loading model %s%s (%s)", name, f" ({submodel})" if submodel else "", dtype)
        self._emit(ModelLoadEvent("started", config, submodel))
        model = loader.load(config, submodel, dtype=dtype)
        size = measure_size(model)
        entry = CacheEntry(key, config, submodel, model, size, execution_device=device, locks=int(pin))
        with self._lock:
            self._make_room_in_ram(size)
            self._entries[key] = entry
            self._stats.loads += 1
        logger.info("Loaded model %s%s: %.1f MB", name, f" ({submodel})" if submodel else "", size / 1e6)
        self._emit(ModelLoadEvent("complete", config, submodel, size_bytes=size))
        return entry

    def _used(self, level: str) -> int:
        held = [*self._entries.values(), *self._retired.values()]
        if level == "ram":
            return sum(e.size_bytes for e in held if e.location == "cpu")
        return sum(e.size_bytes for e in held if e.location != "cpu")

    def _make_room_in_ram(self, needed: int) -> None:
        while self._used("ram") + needed > self.ram_limit_bytes:
            victim = next((e for e in self._entries.values() if e.location == "cpu" and e.locks == 0), None)
            if victim is None:
                logger.warning(
                    "Model cache in RAM is over its limit (%.1f of %.1f GB): every model in it is in use",
                    (self._used("ram") + needed) / GB,
                    self.ram_limit_bytes / GB,
                )
                return
            del self._entries[victim.key]
            self._stats.evictions += 1
            self._stats.evicted_keys.append(victim.key)
            logger.info("Dropped model %s from the RAM cache (least recently used)", victim.key)

    def _make_room_on_device(self, needed: int) -> None:
        while self._used("vram") + needed > self.vram_limit_bytes:
            victim = next((e for e in self._entries.values() if e.location != "cpu" and e.locks == 0), None)
            if victim is None:
                if self._used("vram"):
                    logger.warning(
                        "Model cache on the device is over its limit (%.1f of %.1f GB): every model on it is in use",
                        (self._used("vram") + needed) / GB,
                        self.vram_limit_bytes / GB,
                    )
                return
            victim.model = victim.model.to("cpu") or victim.model
            victim.location = "cpu"
            self._stats.offloads += 1
            logger.info("Moved model %s from %s to RAM (least recently used)", victim.key, victim.execution_device)
            self._make_room_in_ram(0)
