"""The host's model loading: a two-level model cache (RAM and VRAM) and ``context.models``.

Loaders for each model type and format are plugins (``register_model_loaders``); this package
decides where models live, when they move and when they are dropped.
"""

from invoke_host.model_cache.cache import CacheStats, ModelCache
from invoke_host.model_cache.devices import resolve_device, resolve_dtype
from invoke_host.model_cache.events import ModelLoadEvent, ModelLoadListener, ModelLoadRelay
from invoke_host.model_cache.handle import ModelHandle
from invoke_host.model_cache.models_service import ConfigLookup, ModelsService, UnknownModelError
from invoke_host.model_cache.sizes import measure_size

__all__ = [
    "CacheStats",
    "ConfigLookup",
    "ModelCache",
    "ModelHandle",
    "ModelLoadEvent",
    "ModelLoadListener",
    "ModelLoadRelay",
    "ModelsService",
    "UnknownModelError",
    "measure_size",
    "resolve_device",
    "resolve_dtype",
]
