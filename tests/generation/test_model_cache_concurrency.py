"""The model cache under several threads (processors on several devices), and models that change under it.

Every wait is on a threading event with a bound: a thread that should not be blocked must finish while another is
held inside a load, and the test says which one waited.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from gen_configs import DictLookup, TestModelConfig

from invoke_host.model_cache import ModelCache, ModelsService
from tests.waiting import wait_until

BOUND_S = 10.0


class GatedLoader:
    """Loads a plain object per model; a load of a key in ``gates`` waits until its gate is opened."""

    model_type = "main"
    model_format = "test"

    def __init__(self, *gated: str) -> None:
        self.gates = {key: threading.Event() for key in gated}
        self.entered = {key: threading.Event() for key in gated}
        self.loads: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def load(self, config: Any, submodel: str | None, *, dtype: str) -> dict[str, Any]:
        with self._lock:
            self.loads.append((config.key, config.prediction_type))
        if config.key in self.gates:
            self.entered[config.key].set()
            assert self.gates[config.key].wait(3 * BOUND_S), "the test never opened the gate"
        return {"key": config.key, "prediction_type": config.prediction_type}

    def device_available(self, device: str) -> bool:
        return False


def _config(key: str, prediction: str | None = None) -> TestModelConfig:
    return TestModelConfig(key=key, path=f"/m/{key}", type="main", format="test", base="sd-1", name=key,
                           prediction_type=prediction)


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, threading.Event, list[Any]]:
    done, result = threading.Event(), []

    def target() -> None:
        result.append(work())
        done.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, done, result


def _waiting_in_get(thread: threading.Thread) -> bool:
    """Whether ``thread`` is waiting for another thread's load of the same model (inside the cache's ``_get``)."""
    frame = sys._current_frames().get(thread.ident or -1)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return "_get" in names and "wait" in names and "load" not in names


def test_a_load_of_one_model_blocks_neither_a_hit_on_another_nor_a_load_of_a_third() -> None:
    cache = ModelCache(ram_limit_bytes=10**9, vram_limit_bytes=10**9, device="cpu")
    loader = GatedLoader("a")
    cache.get("b", None, _config("b"), loader)  # b is cached
    slow, slow_done, _ = _in_thread(lambda: cache.get("a", None, _config("a"), loader))
    assert loader.entered["a"].wait(BOUND_S)
    try:
        _, hit_done, hit = _in_thread(lambda: cache.lock("b", None, _config("b"), loader))
        assert hit_done.wait(BOUND_S), "a hit on model b waited behind the disk load of model a"
        cache.unlock(hit[0])
        _, other_done, _ = _in_thread(lambda: cache.get("c", None, _config("c"), loader))
        assert other_done.wait(BOUND_S), "a load of model c waited behind the disk load of model a"
        assert not slow_done.is_set()
    finally:
        loader.gates["a"].set()
    assert slow_done.wait(BOUND_S)
    slow.join(BOUND_S)
    assert [key for key, _ in loader.loads] == ["b", "a", "c"]
    assert {e.key for e in cache.entries()} == {"a", "b", "c"}


def test_two_threads_asking_for_one_model_load_it_once() -> None:
    cache = ModelCache(ram_limit_bytes=10**9, vram_limit_bytes=10**9, device="cpu")
    loader = GatedLoader("a")
    _, first_done, got_first = _in_thread(lambda: cache.get("a", None, _config("a"), loader))
    assert loader.entered["a"].wait(BOUND_S)
    second, second_done, got_second = _in_thread(lambda: cache.get("a", None, _config("a"), loader))
    try:
        # The second asks while the first is inside the loader: it must wait for that load, not start its own.
        wait_until(lambda: _waiting_in_get(second) or len(loader.loads) > 1 or second_done.is_set(),
                   "the second request to wait or to load", timeout=BOUND_S)
        assert len(loader.loads) == 1 and _waiting_in_get(second)
    finally:
        loader.gates["a"].set()
    assert first_done.wait(BOUND_S) and second_done.wait(BOUND_S)
    assert got_first[0] is got_second[0]
    assert loader.loads == [("a", None)] and cache.stats().loads == 1


def test_a_failed_load_is_not_cached_and_the_next_request_tries_again() -> None:
    cache = ModelCache(ram_limit_bytes=10**9, vram_limit_bytes=10**9, device="cpu")

    class Flaky(GatedLoader):
        def load(self, config: Any, submodel: str | None, *, dtype: str) -> dict[str, Any]:
            if not self.loads:
                self.loads.append((config.key, None))
                raise OSError("the disk hiccuped")
            return super().load(config, submodel, dtype=dtype)

    loader = Flaky()
    with pytest.raises(OSError, match="hiccuped"):
        cache.get("a", None, _config("a"), loader)
    assert "a" not in cache
    assert cache.get("a", None, _config("a"), loader).model["key"] == "a"


def test_an_edited_model_is_reloaded_and_one_in_use_is_retired_until_released() -> None:
    lookup = DictLookup([_config("a", "epsilon")])
    loader = GatedLoader()
    cache = ModelCache(ram_limit_bytes=10**9, vram_limit_bytes=10**9, device="cpu")
    models = ModelsService(lookup, {"main/test": loader}, cache)
    held = models.load("a")
    with held as model:
        assert model["prediction_type"] == "epsilon"
        lookup.add(_config("a", "v_prediction"))  # the record was edited (here, or by another node)
        with models.load("a") as edited:
            assert edited["prediction_type"] == "v_prediction", "the current config was loaded, not the cached one"
        # The old one is still in use: out of the cache, but not gone.
        assert [e.config.prediction_type for e in cache.entries()] == ["v_prediction"]
        with held as again:
            assert again["prediction_type"] == "v_prediction", "a handle takes the entry the key has now"
    assert loader.loads == [("a", "epsilon"), ("a", "v_prediction")], "no reload back and forth"
    assert cache.stats().loads == 2


def test_invalidate_drops_every_part_of_a_model_and_retires_a_locked_one() -> None:
    cache = ModelCache(ram_limit_bytes=10**9, vram_limit_bytes=10**9, device="cpu")
    loader = GatedLoader()
    cache.get("a", "unet", _config("a"), loader)
    locked = cache.lock("a", "vae", _config("a"), loader)
    cache.get("ab", None, _config("ab"), loader)  # a key that starts with "a" is another model
    assert cache.invalidate("a") == 2
    assert [e.key for e in cache.entries()] == ["ab"]
    assert "a:vae" not in cache and locked.locks == 1
    fresh = cache.lock("a", "vae", _config("a"), loader)
    assert fresh is not locked, "the next request loads it afresh"
    cache.unlock(locked)
    cache.unlock(fresh)
    assert cache.invalidate("nothing-like-it") == 0
