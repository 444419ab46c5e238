"""The output cache in the engine: a byte limit, and entries that hold only while what they name exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cache_test_nodes
import engine_test_nodes
import pytest
from conftest import plugins_for_engine_tests
from invoke_sdk.outputs import IntegerCollectionOutput, IntegerOutput, StringOutput

from invoke_host.config import HostConfig
from invoke_host.engine import NodeCompleted, NodeServices, OutputCache, run_graph
from invoke_host.engine.object_store import tensor_store
from invoke_host.engine.references import Reference, references
from invoke_host.host import Host, build_host


@pytest.fixture
def host(tmp_path: Path) -> Host:
    plugins = [*plugins_for_engine_tests(), ("cache_test_nodes", cache_test_nodes)]
    return build_host(HostConfig(root=tmp_path / "root"), plugins, entry_points=False)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    cache_test_nodes.CALLS.clear()
    yield
    cache_test_nodes.DURING_INVOKE.clear()


def one(node_type: str, **fields: Any) -> dict[str, Any]:
    return {"nodes": {"n": {"type": node_type, **fields}}, "edges": []}


def cached_flags(host: Host, graph: dict[str, Any], cache: OutputCache, **kwargs: Any) -> list[bool]:
    events: list[Any] = []
    result = run_graph(host, graph, cache=cache, on_event=events.append, **kwargs)
    assert result.status == "completed", [e.message for e in result.errors]
    return [e.cached for e in events if isinstance(e, NodeCompleted)]


def test_the_byte_limit_evicts_the_least_recently_used(host: Host) -> None:
    probe = OutputCache(min_node_seconds=0)  # t_count is quicker than the default keeps
    run_graph(host, one("t_count", a=0), cache=probe)
    entry_bytes = probe.stats().size_bytes  # every `t_count` with a one-digit `a` has this size
    assert entry_bytes > len('{"type":"t_count","a":0}')
    engine_test_nodes.CALLS.clear()

    cache = OutputCache(max_bytes=2 * entry_bytes, min_node_seconds=0)
    for a in (0, 1, 0, 2):  # 0 is used again after 1, so 1 is the least recently used when 2 arrives
        run_graph(host, one("t_count", a=a), cache=cache)
    stats = cache.stats()
    assert (stats.entries, stats.size_bytes, stats.evictions) == (2, 2 * entry_bytes, 1)
    assert engine_test_nodes.CALLS == ["n#0"] * 3
    assert cached_flags(host, one("t_count", a=0), cache) == [True]
    assert cached_flags(host, one("t_count", a=1), cache) == [False], "the evicted entry runs again"


def test_an_output_larger_than_the_limit_is_not_cached_and_zero_turns_the_cache_off(host: Host) -> None:
    small = OutputCache(max_bytes=300)
    assert cached_flags(host, one("t_list", count=200), small) == [False]
    assert len(small) == 0
    off = OutputCache(max_bytes=0)
    assert not off.enabled
    cached_flags(host, one("t_count"), off)
    assert cached_flags(host, one("t_count"), off) == [False] and len(off) == 0


def test_entries_are_dropped_with_the_image_their_output_or_input_names(host: Host) -> None:
    cache = OutputCache()
    assert cached_flags(host, one("t_image_ref", name="a"), cache) == [False]
    assert cached_flags(host, one("t_image_ref", name="b"), cache) == [False]
    assert cached_flags(host, one("t_image_in", image={"image_name": "a"}), cache) == [False]
    assert cache.invalidate([Reference("image", "a")]) == 2, "the output naming a and the node reading it"
    assert cached_flags(host, one("t_image_ref", name="a"), cache) == [False]
    assert cached_flags(host, one("t_image_ref", name="b"), cache) == [True], "b's entry stays"
    assert cache.stats().invalidations == 2


def test_entries_are_dropped_with_a_model_named_deep_in_their_inputs(host: Host) -> None:
    cache = OutputCache()
    unet = {"unet": {"key": "base-model", "submodel_type": "unet"}, "loras": [{"key": "style"}]}
    assert cached_flags(host, one("t_model_in", unet=unet), cache) == [False]
    assert cached_flags(host, one("t_model_in", unet=unet), cache) == [True]
    assert cache.invalidate([Reference("model", "style")]) == 1
    assert cached_flags(host, one("t_model_in", unet=unet), cache) == [False]
    assert cache_test_nodes.CALLS == ["n#0", "n#0"]


def test_a_hit_naming_latents_whose_file_is_gone_is_a_miss(host: Host, tmp_path: Path) -> None:
    tensors = tensor_store(tmp_path / "objects", memory_items=0)
    name = "tensor_" + "ab" * 16
    (tmp_path / "objects" / "tensors").mkdir(parents=True)
    stored = tmp_path / "objects" / "tensors" / name
    stored.write_bytes(b"latents")
    cache = OutputCache(object_checks={"tensor": tensors.exists})
    graph = one("t_latents_ref", name=name)
    assert cached_flags(host, graph, cache) == [False]
    assert cached_flags(host, graph, cache) == [True]
    stored.unlink()
    assert cached_flags(host, graph, cache) == [False]
    assert cache_test_nodes.CALLS == ["n#0", "n#0"]
    assert cache.stats().invalidations == 1


def test_the_hosts_cache_checks_the_hosts_own_tensor_store(host: Host) -> None:
    services: NodeServices = host.node_services
    name = "tensor_" + "cd" * 16
    folder = host.config.root / "tensors"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"latents")
    graph = one("t_latents_ref", name=name)
    assert cached_flags(host, graph, host.output_cache, services=services) == [False]
    (folder / name).unlink()
    assert cached_flags(host, graph, host.output_cache, services=services) == [False]


def test_an_output_made_while_an_invalidation_came_is_not_cached(host: Host) -> None:
    cache = OutputCache()
    cache_test_nodes.DURING_INVOKE.append(lambda: cache.invalidate([Reference("image", "img")]))
    assert cached_flags(host, one("t_ref_during"), cache) == [False]
    assert len(cache) == 0, "its image may be the one just deleted"
    cache_test_nodes.DURING_INVOKE.clear()
    assert cached_flags(host, one("t_ref_during"), cache) == [False]
    assert cached_flags(host, one("t_ref_during"), cache) == [True]


def test_references_are_found_only_where_a_class_can_hold_them() -> None:
    assert references(IntegerOutput(value=3)) == frozenset()
    assert references(IntegerCollectionOutput(collection=list(range(1000)))) == frozenset()
    node = cache_test_nodes.ModelInInvocation(
        id="m", unet={"unet": {"key": "k1"}, "loras": [{"key": "k2"}, {"key": "k1"}]}  # type: ignore[arg-type]
    )
    assert references(node) == {Reference("model", "k1"), Reference("model", "k2")}
    anything = engine_test_nodes.TypeOfInvocation(id="t", value={"deep": [{"image_name": "not typed"}]})
    assert references(anything) == frozenset(), "a plain dict that looks like an image field names nothing"


def _fill(cache: OutputCache, count: int, output: Any) -> int:
    """Put ``count`` outputs made by ``output(i)`` under their own keys; return the bytes this left allocated."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            cache.put(f'{{"type":"t_count","a":{i}}}', output(i))
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("output", [
    lambda i: IntegerOutput(value=1000 + i),  # the small output an iterate makes 100,000 of
    lambda i: IntegerCollectionOutput(collection=list(range(i, i + 50))),
    lambda i: StringOutput(value=f"{i}" * 200),
], ids=["integer", "collection", "text"])
def test_the_size_counted_is_the_memory_the_entries_take(output: Any) -> None:
    cache = OutputCache(max_bytes=1 << 40)
    allocated = _fill(cache, 2_000, output)
    counted = cache.stats().size_bytes
    assert cache.stats().entries == 2_000
    # Errs high (the allocator's headers, shared strings counted), never low: the limit bounds real memory.
    assert allocated <= counted <= 2 * allocated, (allocated, counted)


def test_the_byte_limit_bounds_the_memory_of_many_small_outputs() -> None:
    limit = 1 << 20
    cache = OutputCache(max_bytes=limit)
    allocated = _fill(cache, 20_000, lambda i: IntegerOutput(value=1000 + i))
    stats = cache.stats()
    assert stats.evictions > 0 and stats.size_bytes <= limit
    assert allocated <= limit, f"{stats.entries} entries took {allocated} bytes, over the {limit}-byte limit"


def test_compact_copies_new_entries_and_keeps_what_a_copy_would_change() -> None:
    from invoke_sdk.outputs import FloatOutput

    cache = OutputCache()
    small = IntegerOutput(value=1234)
    odd = FloatOutput(value=float("inf"))  # JSON carries no infinity: a copy through it would not be equal
    image_named = IntegerOutput(value=7)
    cache.put("small", small)
    cache.put("odd", odd)
    cache.put("named", image_named)
    cache.invalidate([])  # an invalidation that drops nothing leaves the entries as they are
    cache._by_reference.setdefault(Reference("image", "x"), set()).add("named")  # as if its node named image x
    cache._items["named"].refs = frozenset({Reference("image", "x")})
    cache.get("small")  # most recently used, last
    before = cache.stats()
    assert cache.unsettled == 3
    assert cache.compact() == 2
    assert cache.unsettled == 0 and cache.compact() == 0, "nothing new: nothing copied again"
    assert list(cache._items) == ["odd", "named", "small"], "the order of use is kept"
    got = cache.get("small")
    assert got == small and got is not small and got.__pydantic_fields_set__ == {"value"}
    assert cache.get("odd") is odd
    after = cache.stats()
    assert (after.entries, after.size_bytes) == (before.entries, before.size_bytes)
    assert cache.invalidate([Reference("image", "x")]) == 1 and cache.get("named") is None, "the index still works"
    cache.put("later", IntegerOutput(value=99999))
    assert cache.unsettled == 1 and cache.compact() == 1


def test_a_quick_output_that_names_nothing_is_not_kept_nor_looked_for(host: Host) -> None:
    cache = OutputCache()  # the default: outputs of nodes under 1 ms that name nothing are not kept
    for _ in range(2):
        assert cached_flags(host, one("t_count", a=0), cache) == [False]
    assert engine_test_nodes.CALLS == ["n#0", "n#0"]
    stats = cache.stats()
    # No entry, and no lookup either: a type that never had an output kept has nothing to find.
    assert (stats.entries, stats.not_kept_quick, stats.hits, stats.misses) == (0, 2, 0, 0)
    assert not cache.may_hold("t_count")


def test_a_node_that_ran_long_enough_is_kept_and_its_type_looked_for_from_then_on(host: Host) -> None:
    cache = OutputCache(min_node_seconds=0.002)
    assert cached_flags(host, one("t_slow", seconds=0.01, value=1), cache) == [False]
    assert cached_flags(host, one("t_slow", seconds=0.01, value=1), cache) == [True]
    assert cache.may_hold("t_slow")
    # A quick run of the same type is still looked for (a miss), then not kept.
    assert cached_flags(host, one("t_slow", seconds=0.0, value=2), cache) == [False]
    assert cached_flags(host, one("t_slow", seconds=0.0, value=2), cache) == [False]
    stats = cache.stats()
    # The first run did not look (nothing of its type was kept yet); the two quick ones did, and missed.
    assert (stats.entries, stats.hits, stats.misses, stats.not_kept_quick) == (1, 1, 2, 2)
    assert cache_test_nodes.CALLS == ["n#0", "n#0", "n#0"]


def test_an_output_that_names_an_image_is_kept_however_quick(host: Host) -> None:
    # Reusing it reuses the image it names instead of making another.
    cache = OutputCache(min_node_seconds=3600)
    assert cached_flags(host, one("t_image_ref", name="a"), cache) == [False]
    assert cached_flags(host, one("t_image_ref", name="a"), cache) == [True]
    assert cached_flags(host, one("t_image_in", image={"image_name": "a"}), cache) == [False]
    assert cached_flags(host, one("t_image_in", image={"image_name": "a"}), cache) == [True], "an input names it"
    assert cached_flags(host, one("t_slow"), cache) == [False]
    assert cache.stats().not_kept_quick == 1 and len(cache) == 2


def test_the_host_keeps_what_its_setting_says(tmp_path: Path) -> None:
    plugins = [*plugins_for_engine_tests(), ("cache_test_nodes", cache_test_nodes)]
    every = build_host(HostConfig(root=tmp_path / "a", output_cache_min_node_seconds=0), plugins, entry_points=False)
    default = build_host(HostConfig(root=tmp_path / "b"), plugins, entry_points=False)
    for host, kept in ((every, [False, True]), (default, [False, False])):
        flags = [cached_flags(host, one("t_count", a=5), host.output_cache)[0] for _ in range(2)]
        assert flags == kept
