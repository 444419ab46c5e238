"""A served host's start-up objects are frozen out of the garbage collector's scans (invoke_host/heap_freeze.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoke_host import heap_freeze
from invoke_host.heap_freeze import freeze_startup_objects, freeze_survivors, stop_freezing
from invoke_host.start_gc import collections_paused
from tests.waiting import wait_until

CLI = Path(sys.executable).parent / "invoke-host"


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def thawed() -> Iterator[None]:
    """This test process's objects go back to the collector afterwards (a test runner must not keep them frozen)."""
    stop_freezing()
    yield
    stop_freezing()


def _in_tracked_generations(obj: object) -> bool:
    # gc.get_objects() lists the three generations the collector scans, never the permanent (frozen) one.
    return any(o is obj for o in gc.get_objects())


@pytest.mark.usefixtures("thawed")
def test_live_objects_are_frozen_without_a_full_collection_first() -> None:
    live = _Node()
    full_collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full_collections.append(1)

    gc.callbacks.append(count)
    try:
        freeze_startup_objects()
    finally:
        gc.callbacks.remove(count)

    # A full collection walks every start-up object (65-114 ms of an empty host's start) and found nothing in
    # serve: the freeze does without it (heap_freeze.py).
    assert full_collections == []
    assert gc.get_freeze_count() > 0
    assert not _in_tracked_generations(live)


@pytest.mark.usefixtures("thawed")
def test_the_freeze_turns_the_collector_back_on_inside_the_start_up_pause() -> None:
    # serve and worker stay paused until this freeze: the first collection after a pause walks everything made
    # during it, the start-up objects the freeze is there to keep out of collections (h-start5).
    with collections_paused():
        assert not gc.isenabled()
        freeze_startup_objects()
        assert gc.isenabled()
    assert gc.isenabled()


@pytest.mark.usefixtures("thawed")
def test_garbage_frozen_at_start_up_is_freed_once_the_frozen_objects_are_given_back() -> None:
    garbage_a, garbage_b = _Node(), _Node()
    garbage_a.other, garbage_b.other = garbage_b, garbage_a  # a cycle only the collector can free
    gone = weakref.ref(garbage_a)
    del garbage_a, garbage_b
    freeze_startup_objects()
    stop_freezing()
    gc.collect()
    assert gone() is None


@pytest.mark.usefixtures("thawed")
def test_objects_made_after_the_freeze_are_still_collected() -> None:
    freeze_startup_objects()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_survivors_are_frozen_only_in_a_process_that_froze_its_start_up_objects() -> None:
    # This test runner never froze its start-up objects: nothing is frozen however many objects it tracks.
    stop_freezing()
    assert freeze_survivors(1) == 0
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("thawed")
def test_survivors_are_collected_then_frozen_once_there_are_enough() -> None:
    freeze_startup_objects()
    survivors = [_Node() for _ in range(50)]
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert freeze_survivors(10**9) == 0, "below the threshold nothing is collected or frozen"
    assert gone() is not None

    frozen = freeze_survivors(1)

    assert gone() is None, "garbage present at the freeze must be collected, not kept for ever"
    assert frozen >= len(survivors)
    assert not any(_in_tracked_generations(s) for s in survivors)


@pytest.mark.usefixtures("thawed")
def test_an_evicted_frozen_cache_entry_is_freed_by_reference_counting() -> None:
    from invoke_sdk import BaseInvocationOutput, OutputField, invocation_output

    from invoke_host.engine import OutputCache

    @invocation_output("heap_freeze_test_output")
    class _Output(BaseInvocationOutput):
        value: int = OutputField()
        values: list[int] = OutputField()

    cache = OutputCache(max_size=1)
    cache.put("first", _Output(value=1, values=[1, 2]))
    first = cache.get("first")
    assert first is not None
    freeze_startup_objects()
    assert not _in_tracked_generations(first), "the entry is frozen"
    gone = weakref.ref(first)
    del first

    cache.put("second", _Output(value=2, values=[3]))  # evicts the frozen entry

    assert cache.get("first") is None
    assert gone() is None, "a frozen entry the cache dropped is never freed"


def test_a_served_host_freezes_its_start_up_objects(tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "INVOKE_HOST_ROOT": str(tmp_path / "root"),
           "INVOKE_HOST_PLUGINS_ALLOW": "sqlite_storage,local_file_storage,core_events,core_nodes"}
    process = subprocess.Popen([str(CLI), "serve", "--port", str(port), "--log-level", "debug"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/app/version", timeout=5) as response:
                return int(response.status) == 200
        except OSError:
            return False

    try:
        wait_until(lambda: process.poll() is not None or answers(), "the server to answer", timeout=60, interval=0.1)
        assert process.poll() is None, process.communicate()[0]
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    frozen = [line for line in output.splitlines() if "start-up objects frozen" in line]
    assert len(frozen) == 1, output[-3000:]
    assert int(frozen[0].split(" DEBUG invoke_host: ")[1].split()[0]) > 10_000  # the app's objects, not a handful


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.mark.usefixtures("thawed")
def test_a_full_collection_during_a_run_freezes_what_it_leaves_and_the_thaw_gives_it_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap_freeze, "RUN_FREEZE_MIN_OBJECTS", 0)
    freeze_startup_objects()
    heap_freeze.run_started()
    try:
        live = _Node()
        gc.collect()  # a full collection during the run: what it left (``live``) is frozen
        assert not _in_tracked_generations(live)
        gone = _cycle()
        # Once a full collection of this run froze, a young collection freezes what it leaves too: what dies
        # acyclic is still freed, a cycle that was garbage already is collected by it.
        later, short = _Node(), _Node()
        short_gone = weakref.ref(short)
        gc.collect(0)
        assert not _in_tracked_generations(later)
        del short
        assert short_gone() is None
        gc.collect(1)
        assert gone() is None
        # An object frozen while alive that then becomes garbage in a cycle stays while frozen.
        kept = _Node()
        kept.other = _Node()
        kept.other.other = kept
        kept_gone = weakref.ref(kept)
        gc.collect()
        del kept
        gc.collect()
        assert kept_gone() is not None
        assert not heap_freeze.thaw_due(), "no thaw while an item runs"
        assert heap_freeze.thaw_run_objects() is False
    finally:
        heap_freeze.run_ended()
    assert heap_freeze.thaw_due()
    assert heap_freeze.thaw_run_objects() is True
    assert kept_gone() is None, "the thaw must free what became garbage in a cycle while frozen"
    assert gone() is None
    assert not _in_tracked_generations(live), "what survives the thaw's collection is frozen again"
    assert not heap_freeze.thaw_due() and heap_freeze.thaw_run_objects() is False  # once per freezing run


@pytest.mark.usefixtures("thawed")
def test_full_collections_during_a_run_freeze_nothing_below_the_threshold_or_outside_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_startup_objects()
    live = _Node()
    gc.collect()  # no item runs: nothing frozen
    assert _in_tracked_generations(live)
    monkeypatch.setattr(heap_freeze, "RUN_FREEZE_MIN_OBJECTS", len(gc.get_objects()) + 10_000)
    heap_freeze.run_started()
    try:
        gc.collect()  # fewer objects left than the threshold: nothing frozen
        young = _Node()
        gc.collect(0)  # nor by a young collection, until a full one of this run froze
        assert _in_tracked_generations(live) and _in_tracked_generations(young)
    finally:
        heap_freeze.run_ended()
    assert not heap_freeze.thaw_due()


@pytest.mark.usefixtures("thawed")
def test_runs_freeze_nothing_in_a_process_that_did_not_freeze_its_start_up_objects(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap_freeze, "RUN_FREEZE_MIN_OBJECTS", 0)
    heap_freeze.run_started()
    try:
        live = _Node()
        gc.collect()
        assert _in_tracked_generations(live)
    finally:
        heap_freeze.run_ended()
    assert not heap_freeze.thaw_due()
