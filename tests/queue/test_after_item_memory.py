"""What an item leaves in memory: its session's state freed by reference counting, freed memory given back once idle."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.queue import processor
from tests.queue.test_processor import enqueue, make_app
from tests.waiting import wait_until

ITERATE = {
    "nodes": {"r": {"type": "range_of_size", "start": 0, "size": 300, "step": 1}, "it": {"type": "iterate"},
              "add": {"type": "add", "b": 1}, "col": {"type": "collect"}},
    "edges": [
        {"source": {"node_id": "r", "field": "collection"}, "destination": {"node_id": "it", "field": "collection"}},
        {"source": {"node_id": "it", "field": "item"}, "destination": {"node_id": "add", "field": "a"}},
        {"source": {"node_id": "add", "field": "value"}, "destination": {"node_id": "col", "field": "item"}},
    ],
}


def _status(client: TestClient[Litestar], item_id: int) -> str:
    status: str = client.get(f"/api/v1/queue/default/i/{item_id}").json()["status"]
    return status


def _outputs() -> int:
    """Node outputs alive in this process (the cache is off in these tests: none should outlive its item)."""
    from invoke_sdk import BaseInvocationOutput

    return sum(isinstance(o, BaseInvocationOutput) for o in gc.get_objects())


@pytest.fixture
def no_collections() -> Iterator[None]:
    """The cyclic garbage collector off: whatever is freed is freed by reference counting alone."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("graph_status", [(ITERATE, "completed"), ({
    "nodes": {"boom": {"type": "proc_fail"}}, "edges": []}, "failed")], ids=["completed", "failed"])
def test_the_state_of_a_finished_item_is_freed_without_a_garbage_collection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_collections: None, graph_status: tuple[Any, str]) -> None:
    graph, status = graph_status
    states: list[weakref.ref[Any]] = []
    real = processor.free_in_steps

    def watched(held: list[Any]) -> None:
        states.append(weakref.ref(held[0]))
        real(held)

    collections: list[object] = []
    monkeypatch.setattr(processor, "free_in_steps", watched)
    monkeypatch.setattr(processor.gc, "collect", lambda *a: collections.append(a) or 0)
    with TestClient(make_app(tmp_path, output_cache_max_bytes=0)) as client:
        outputs_before = _outputs()
        [item_id] = enqueue(client, graph)
        wait_until(lambda: _status(client, item_id) == status, f"item {item_id} {status}")
        wait_until(lambda: bool(states) and states[0]() is None,
                   "the finished item's state to be freed (something still refers to it)")
        assert _outputs() == outputs_before, "outputs of the finished item are still held"
    assert collections == [], "the processor needed a garbage collection to free the state"


def test_freed_memory_is_given_back_once_no_item_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[int] = []
    monkeypatch.setattr(processor, "release_due", lambda threshold: threshold > 0)
    monkeypatch.setattr(processor, "release_if_grown", lambda threshold: released.append(threshold) or True)
    with TestClient(make_app(tmp_path, memory_release_bytes=12345)) as client:
        [item_id] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, item_id) == "completed", "the item to complete")
        wait_until(lambda: bool(released), "a release by the idle processor")
    assert set(released) == {12345}  # the setting reaches the processor


def test_the_release_threshold_is_a_setting_that_refuses_a_negative_value() -> None:
    from pydantic import ValidationError

    from invoke_host.config import HostConfig

    assert HostConfig().memory_release_bytes == 8 * 1024 * 1024
    with pytest.raises(ValidationError, match="memory_release_bytes"):
        HostConfig(memory_release_bytes=-1)


def test_an_idle_processor_moves_the_new_cache_entries_together(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from invoke_host.engine import OutputCache

    compacted: list[tuple[int, str]] = []
    real = OutputCache.compact

    def watched(cache: OutputCache) -> int:
        copied = real(cache)
        compacted.append((copied, threading.current_thread().name))
        return copied

    monkeypatch.setattr(processor, "on_system_allocator", lambda: True)  # tests run on pymalloc
    monkeypatch.setattr(OutputCache, "compact", watched)
    graph = json.loads(json.dumps(ITERATE))
    graph["nodes"]["r"]["size"] = processor._COMPACT_AFTER_ENTRIES + 10
    # `add` is far quicker than what the cache keeps by default: keep every output, as a slower node's would be.
    with TestClient(make_app(tmp_path, output_cache_min_node_seconds=0)) as client:
        [item_id] = enqueue(client, graph)
        wait_until(lambda: _status(client, item_id) == "completed", "the item to complete")
        wait_until(lambda: bool(compacted), "the idle processor to compact the output cache")
        # Every output (the range's and each `add`'s) was copied, by the one thread kept for it (in_own_arena).
        assert compacted[0][0] == processor._COMPACT_AFTER_ENTRIES + 11
        assert compacted[0][1].startswith("invoke-own-arena")
        status = client.get("/api/v1/app/invocation_cache/status").json()
        assert status["size"] == processor._COMPACT_AFTER_ENTRIES + 11
        [again] = enqueue(client, graph)
        wait_until(lambda: _status(client, again) == "completed", "the item to complete again")
        hits = client.get("/api/v1/app/invocation_cache/status").json()["hits"]
        assert hits == processor._COMPACT_AFTER_ENTRIES + 11, "the copied entries are hits"


def test_a_failing_release_leaves_the_heartbeat_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def broken(threshold: int) -> bool:
        calls.append(threshold)
        raise OSError("no /proc here")

    monkeypatch.setattr(processor, "release_due", broken)
    with TestClient(make_app(tmp_path)) as client:
        wait_until(lambda: len(calls) >= 2, "the idle heartbeat to try again after a failure")
        [item_id] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, item_id) == "completed", "an item to run after the failures")


def test_an_idle_processor_freezes_what_survived_once_after_each_item(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    looks: list[int] = []
    monkeypatch.setattr(processor, "freeze_survivors", lambda least: looks.append(least) or 0)
    with TestClient(make_app(tmp_path)) as client:
        time.sleep(1.2)  # idle heartbeats before any item: nothing ended, so nothing is looked at
        assert looks == []
        [item_id] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, item_id) == "completed", "the item to complete")
        wait_until(lambda: bool(looks), "the idle processor to look at what survived the item")
        time.sleep(1.2)  # more idle heartbeats: still one look for the one item
        assert looks == [processor._FREEZE_AFTER_OBJECTS]


def test_an_idle_processor_leaves_its_after_item_work_while_an_enqueue_is_under_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from invoke_host.queue.service import QueueService

    looks: list[int] = []
    released: list[int] = []
    coming = [False]
    monkeypatch.setattr(processor, "freeze_survivors", lambda least: looks.append(least) or 0)
    monkeypatch.setattr(processor, "release_due", lambda threshold: True)
    monkeypatch.setattr(processor, "release_if_grown", lambda threshold: released.append(threshold) or True)
    real = QueueService.work_coming
    monkeypatch.setattr(QueueService, "work_coming", lambda self: coming[0] or real(self))
    with TestClient(make_app(tmp_path)) as client:
        [item_id] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, item_id) == "completed", "the item to complete")
        coming[0] = True  # as if the next batch were being validated from now on
        released.clear()
        time.sleep(1.2)  # idle heartbeats, each of which found work coming
        assert looks == [] and released == []
        coming[0] = False
        wait_until(lambda: bool(looks) and bool(released), "the after-item work once no work is coming")
    assert looks == [processor._FREEZE_AFTER_OBJECTS]


def test_work_is_coming_while_an_enqueue_prepares_its_batch_and_not_once_the_processor_took_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from invoke_host.queue import service

    seen: list[bool] = []
    real = service.prepare_batch

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(queue.work_coming())
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "prepare_batch", watched)
    with TestClient(make_app(tmp_path)) as client:
        queue = client.app.state.host.queue
        [item_id] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, item_id) == "completed", "the item to complete")
        wait_until(lambda: not queue.work_coming(), "the idle processor to have taken the signal of work")
    assert seen == [True]


def test_the_graph_validated_at_enqueue_is_freed_with_the_state_in_the_worker_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_collections: None) -> None:
    outlived: list[bool] = []
    real = processor.free_in_steps

    def watched(held: list[Any]) -> None:
        graph = weakref.ref(held[0].graph)
        real(held)
        outlived.append(graph() is not None)

    monkeypatch.setattr(processor, "free_in_steps", watched)
    with TestClient(make_app(tmp_path, output_cache_max_bytes=0)) as client:
        assert client.app.state.host.queue.held_graphs.max_nodes > 0  # the item runs the graph held at enqueue
        [item_id] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, item_id) == "completed", "the item to complete")
        wait_until(lambda: bool(outlived), "the finished item's state to be freed")
    assert outlived == [False], "the held graph outlived its state (freed later, on the event loop)"


def test_what_full_collections_froze_during_an_item_is_thawed_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from invoke_host import heap_freeze

    thaws: list[bool] = []
    real = heap_freeze.thaw_run_objects

    def watched() -> bool:
        thaws.append(real())
        return thaws[-1]

    monkeypatch.setattr(heap_freeze, "RUN_FREEZE_MIN_OBJECTS", 0)
    monkeypatch.setattr(processor, "thaw_run_objects", watched)
    heap_freeze.stop_freezing()
    try:
        with TestClient(make_app(tmp_path)) as client:
            heap_freeze.freeze_startup_objects()  # as `serve` does
            monkeypatch.setattr(processor.SessionRunner, "run", _collecting(processor.SessionRunner.run))
            [item_id] = enqueue(client, ITERATE)
            wait_until(lambda: _status(client, item_id) == "completed", "the item to complete")
            wait_until(lambda: bool(thaws), "the thaw after the item")
            assert thaws == [True]
            assert not heap_freeze.thaw_due()
    finally:
        heap_freeze.stop_freezing()


def _collecting(run: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        status = run(*args, **kwargs)
        gc.collect()  # a full collection while the item still counts as running
        return status
    return wrapped


def test_a_finished_state_waits_for_the_idle_heartbeat_or_the_next_item_and_nothing_is_frozen_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state goes after the client's answers about its item, never later than the next item's build, and the
    idle processor neither freezes nor copies while a state waits (it would freeze the state's objects)."""
    import time

    order: list[str] = []
    real_free, real_build = processor.free_in_steps, processor.SessionProcessor._restored_state

    def freed(held: list[Any]) -> None:
        order.append("freed")
        real_free(held)

    def built(self: Any, *args: Any) -> Any:
        order.append("built")
        return real_build(self, *args)

    monkeypatch.setattr(processor, "free_in_steps", freed)
    monkeypatch.setattr(processor.SessionProcessor, "_restored_state", built)
    monkeypatch.setattr(processor, "freeze_survivors", lambda least: order.append("froze") or 0)
    monkeypatch.setattr(processor, "_FREE_AFTER_S", 3600.0)  # the heartbeat never finds a state old enough
    with TestClient(make_app(tmp_path)) as client:
        [first] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, first) == "completed", "the first item to complete")
        time.sleep(1.2)  # idle heartbeats: the state is too young for them, so they leave everything after it
        assert order == ["built"]
        [second] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, second) == "completed", "the second item to complete")
        assert order[:3] == ["built", "freed", "built"]  # the first state went before the second was built
        monkeypatch.setattr(processor, "_FREE_AFTER_S", 0.0)
        wait_until(lambda: order[-2:] == ["freed", "froze"], "the idle heartbeat to free the second state, then freeze")


def test_a_finished_state_is_freed_while_another_worker_still_runs_its_item(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With two workers, the one whose item ended must not keep that state as long as the other's item runs."""
    states: list[weakref.ref[Any]] = []
    real_free = processor.free_in_steps

    def freed(held: list[Any]) -> None:
        states.append(weakref.ref(held[0]))
        real_free(held)

    monkeypatch.setattr(processor, "free_in_steps", freed)
    monkeypatch.setattr(processor, "_FREE_AFTER_S", 0.0)
    hold = {"nodes": {"h": {"type": "proc_hold", "folder": str(tmp_path)}}, "edges": []}
    with TestClient(make_app(tmp_path / "root", processor_workers=2)) as client:
        [held] = enqueue(client, hold)
        wait_until(lambda: any(tmp_path.glob("started-*")), "the holding item to start")
        [quick] = enqueue(client, ITERATE)
        wait_until(lambda: _status(client, quick) == "completed", "the quick item to complete")
        wait_until(lambda: bool(states), "the quick item's state to be freed while the other item runs")
        assert _status(client, held) == "in_progress"
        (tmp_path / "release").touch()
        wait_until(lambda: _status(client, held) == "completed", "the holding item to complete")
