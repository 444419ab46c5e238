"""The two-level model cache: sizes from real tensors, LRU eviction, locks, devices, events, ``context.models``."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from gen_configs import DictLookup, TestModelConfig
from invoke_sdk import ModelIdentifierField
from invoke_sdk.models.loading import LoadedModel, ModelLoader

from invoke_host.model_cache import ModelCache, ModelLoadEvent, ModelsService, UnknownModelError, measure_size
from invoke_host.model_cache.devices import resolve_device, resolve_dtype

LINEAR_BYTES = (16 * 16 + 16) * 4  # one float32 Linear(16, 16): weight + bias


class DeviceTrackingModule(torch.nn.Module):
    """A real module whose ``to()`` records the target device instead of moving to a GPU this machine lacks."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(16, 16)
        self.device_name = "cpu"

    def to(self, device: Any, *args: Any, **kwargs: Any) -> DeviceTrackingModule:  # type: ignore[override]
        self.device_name = str(device)
        return self


class LinearLoader:
    """Loads a Linear(16, 16) per model; counts loads; says a GPU exists when told to."""

    model_type = "main"
    model_format = "test"

    def __init__(self, gpu: bool = False) -> None:
        self.gpu = gpu
        self.loads: list[tuple[str, str | None, str]] = []

    def load(self, config: Any, submodel: str | None, *, dtype: str) -> Any:
        self.loads.append((config.key, submodel, dtype))
        return DeviceTrackingModule()

    def device_available(self, device: str) -> bool:
        return self.gpu and device == "cuda"


def _config(key: str) -> TestModelConfig:
    return TestModelConfig(key=key, path=f"/models/{key}", type="main", format="test", base="sd-1", name=key)


def _cache(ram: int, vram: int = 10**9, device: str = "auto", events: list[ModelLoadEvent] | None = None) -> ModelCache:
    listener = events.append if events is not None else None
    return ModelCache(ram_limit_bytes=ram, vram_limit_bytes=vram, device=device, listener=listener)


def test_sizes_are_measured_from_the_tensors() -> None:
    assert measure_size(torch.nn.Linear(16, 16)) == LINEAR_BYTES
    assert measure_size(torch.nn.Linear(16, 16).half()) == LINEAR_BYTES // 2
    tied = torch.nn.Sequential(torch.nn.Linear(16, 16, bias=False), torch.nn.Linear(16, 16, bias=False))
    tied[1].weight = tied[0].weight
    assert measure_size(tied) == 16 * 16 * 4, "a tied weight counts once"
    assert measure_size({"a.lora_down.weight": torch.zeros(4, 16), "a.alpha": torch.tensor(4.0)}) == 4 * 16 * 4 + 4
    assert measure_size(object()) == 0


def test_the_least_recently_used_model_is_dropped_from_ram() -> None:
    cache, loader = _cache(ram=2 * LINEAR_BYTES), LinearLoader()
    cache.get("a", None, _config("a"), loader)
    cache.get("b", None, _config("b"), loader)
    cache.get("a", None, _config("a"), loader)  # a is now the most recently used
    cache.get("c", None, _config("c"), loader)
    assert [e.key for e in cache.entries()] == ["a", "c"]
    stats = cache.stats()
    assert stats.evicted_keys == ["b"]
    assert stats.ram_used_bytes == 2 * LINEAR_BYTES
    assert (stats.loads, stats.hits) == (3, 1)


def test_a_locked_model_is_never_dropped(caplog: pytest.LogCaptureFixture) -> None:
    cache, loader = _cache(ram=LINEAR_BYTES), LinearLoader()
    locked = cache.lock("a", None, _config("a"), loader)
    with caplog.at_level(logging.WARNING, logger="invoke_host.model_cache"):
        cache.get("b", None, _config("b"), loader)
        cache.get("c", None, _config("c"), loader)
    assert "a" in cache and locked.locks == 1
    assert "over its limit" in caplog.text
    assert "b" not in cache, "the unlocked model made room, the locked one stayed"
    cache.unlock(locked)
    assert [e.key for e in cache.entries()] == ["c"], "once unlocked, the over-limit cache shrinks back"


def test_models_move_to_the_device_while_locked_and_back_to_ram_when_room_is_needed() -> None:
    cache, loader = _cache(ram=10 * LINEAR_BYTES, vram=LINEAR_BYTES), LinearLoader(gpu=True)
    a = cache.lock("a", None, _config("a"), loader)
    assert a.model.device_name == "cuda" and a.on_device
    cache.unlock(a)
    assert a.model.device_name == "cuda", "an unlocked model stays on the device until room is needed"
    b = cache.lock("b", None, _config("b"), loader)
    assert (a.model.device_name, a.location) == ("cpu", "cpu")
    assert b.model.device_name == "cuda"
    # b is locked: a locked model is not moved off the device, even over the limit.
    a2 = cache.lock("a", None, _config("a"), loader)
    assert b.model.device_name == "cuda" and a2.model.device_name == "cuda"
    stats = cache.stats()
    assert stats.vram_used_bytes == 2 * LINEAR_BYTES and stats.offloads == 1
    cache.unlock(b)
    cache.unlock(a2)
    assert cache.stats().vram_used_bytes == LINEAR_BYTES, "unlocking brings the device back under its limit"
    assert loader.loads == [("a", None, "float16"), ("b", None, "float16")], "moving never reloads from disk"


def test_device_and_precision_follow_the_config_with_cpu_fallback(caplog: pytest.LogCaptureFixture) -> None:
    assert resolve_device("auto", LinearLoader(gpu=True)) == "cuda"
    assert resolve_device("auto", LinearLoader(gpu=False)) == "cpu"
    with caplog.at_level(logging.WARNING, logger="invoke_host.model_cache"):
        assert resolve_device("cuda", LinearLoader(gpu=False)) == "cpu"
    assert "not available" in caplog.text
    assert resolve_device("cpu", LinearLoader(gpu=True)) == "cpu"
    assert resolve_dtype("auto", "cuda") == "float16"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("float16", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cuda") == "bfloat16"


def test_load_events_are_emitted_once_per_load_and_a_failing_listener_does_not_fail_loading() -> None:
    events: list[ModelLoadEvent] = []
    cache, loader = _cache(ram=10**6, events=events), LinearLoader()
    cache.get("a", "unet", _config("a"), loader)
    cache.get("a", "unet", _config("a"), loader)
    assert [(e.kind, e.key, e.submodel, e.size_bytes) for e in events] == [
        ("started", "a", "unet", None),
        ("complete", "a", "unet", LINEAR_BYTES),
    ]

    def broken(event: ModelLoadEvent) -> None:
        raise RuntimeError("listener down")

    ModelCache(ram_limit_bytes=10**6, vram_limit_bytes=0, listener=broken).get("b", None, _config("b"), loader)


def test_models_service_loads_through_the_registered_loader_and_names_what_is_missing() -> None:
    loader = LinearLoader()
    assert isinstance(loader, ModelLoader)
    lookup = DictLookup([_config("a"), TestModelConfig("v", "/v", "vae", "checkpoint", "sd-1")])
    models = ModelsService(lookup, {"main/test": loader}, _cache(ram=10**6))
    assert models.exists("a") and not models.exists("nope")
    handle = models.load(ModelIdentifierField(key="a", submodel_type="unet"))
    assert isinstance(handle, LoadedModel)
    assert loader.loads == [("a", "unet", "float32")], "load() puts the model in the RAM cache at once"
    with handle as model, handle as same:
        assert model is same
        assert models.cache.entries()[0].locks == 2
    assert models.cache.entries()[0].locks == 0
    with pytest.raises(UnknownModelError, match="'nope'"):
        models.load("nope")
    with pytest.raises(ValueError, match="vae models in the checkpoint format"):
        models.load("v")


def test_a_handle_reloads_a_model_the_cache_dropped_meanwhile() -> None:
    loader = LinearLoader()
    models = ModelsService(DictLookup([_config("a"), _config("b")]), {"main/test": loader}, _cache(ram=LINEAR_BYTES))
    handle = models.load("a")
    models.load("b")  # drops a
    assert "a" not in models.cache
    with handle as model:
        assert isinstance(model, DeviceTrackingModule)
    assert [k for k, _, _ in loader.loads] == ["a", "b", "a"]
