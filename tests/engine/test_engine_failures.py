"""Node errors, NodeInputError, cancellation, and the output cache."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import engine_test_nodes
import pytest
from conftest import edge

from invoke_host.engine import (
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    OutputCache,
    SessionFinished,
    run_graph,
    run_graph_async,
)


def test_node_exception_fails_that_node_and_stops_the_session(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer", "value": 3}, "boom": {"type": "t_boom"}, "after": {"type": "t_count"}},
             "edges": [edge("a", "value", "boom", "a"), edge("boom", "value", "after", "a")]}
    events: list[Any] = []
    result = run_graph(host, graph, on_event=events.append)
    assert result.status == "failed"
    [error] = result.errors
    assert (error.source_node_id, error.error_type, error.message) == ("boom", "RuntimeError", "boom at 3")
    assert "raise RuntimeError" in error.traceback
    assert engine_test_nodes.CALLS == []
    assert any(isinstance(e, NodeFailed) and e.source_node_id == "boom" for e in events)
    assert result.state.errors_by_source()["boom"][0] is error


def test_invalid_incoming_input_is_a_node_input_error(host: Any) -> None:
    graph = {"nodes": {"zero": {"type": "integer", "value": 0}, "size": {"type": "t_size"}},
             "edges": [edge("zero", "value", "size", "width")]}
    result = run_graph(host, graph)
    assert result.status == "failed"
    [error] = result.errors
    assert error.error_type == "NodeInputError"
    assert error.field == "width"
    assert error.message.startswith("Node size has invalid incoming input for width")


def test_output_of_the_wrong_class_fails_the_node(host: Any) -> None:
    result = run_graph(host, {"nodes": {"w": {"type": "t_wrong_output"}}, "edges": []})
    assert result.status == "failed"
    assert result.errors[0].error_type == "TypeError"
    message = result.errors[0].message
    assert "returned engine_test_nodes.TStrOutput (output type 't_str_output')" in message, message
    assert "declared to return engine_test_nodes.TIntOutput (output type 't_int_output')" in message


def test_cancel_before_start_runs_nothing(host: Any) -> None:
    cancel = threading.Event()
    cancel.set()
    result = run_graph(host, {"nodes": {"c": {"type": "t_count"}}, "edges": []}, cancel=cancel)
    assert result.status == "canceled"
    assert engine_test_nodes.CALLS == []


def test_node_sees_cancel_and_nothing_after_it_runs(host: Any) -> None:
    cancel = threading.Event()
    graph = {"nodes": {"wait": {"type": "t_wait_cancel"}, "after": {"type": "t_count"}},
             "edges": [edge("wait", "value", "after", "a")]}

    def on_event(event: Any) -> None:
        if isinstance(event, NodeProgress):
            cancel.set()

    result = run_graph(host, graph, cancel=cancel, on_event=on_event)
    assert result.status == "canceled"
    assert result.state.results == {}
    assert engine_test_nodes.CALLS == []


def test_a_node_raising_invocation_canceled_cancels_the_session_without_a_node_error(host: Any) -> None:
    graph = {"nodes": {"stop": {"type": "t_raise_canceled", "a": 4}, "after": {"type": "t_count"}},
             "edges": [edge("stop", "value", "after", "a")]}
    events: list[Any] = []
    result = run_graph(host, graph, on_event=events.append)
    assert result.status == "canceled"
    assert result.errors == []
    assert not any(isinstance(e, NodeFailed) for e in events)
    assert [e.status for e in events if isinstance(e, SessionFinished)] == ["canceled"]
    assert engine_test_nodes.CALLS == ["stop#0"], "nothing runs after the canceled node"


async def test_async_run_keeps_the_loop_free_and_cancels(host: Any) -> None:
    cancel = threading.Event()
    task = asyncio.create_task(run_graph_async(host, {"nodes": {"w": {"type": "t_wait_cancel"}}, "edges": []},
                                               cancel=cancel))
    # The loop keeps running while the node blocks in its worker thread.
    while not engine_test_nodes.STARTED.is_set() and not task.done():
        await asyncio.sleep(0.005)
    cancel.set()
    result = await task
    assert result.status == "canceled"


def test_cache_hits_skip_the_node_and_misses_run_it(host: Any) -> None:
    cache = OutputCache(min_node_seconds=0)  # t_count is quicker than the default keeps
    graph = {"nodes": {"c": {"type": "t_count", "a": 1}}, "edges": []}
    events: list[Any] = []
    run_graph(host, graph, cache=cache)
    run_graph(host, graph, cache=cache, on_event=events.append)
    assert engine_test_nodes.CALLS == ["c#0"]
    assert [e.cached for e in events if isinstance(e, NodeCompleted)] == [True]
    run_graph(host, {"nodes": {"c": {"type": "t_count", "a": 2}}, "edges": []}, cache=cache)
    assert len(engine_test_nodes.CALLS) == 2
    run_graph(host, {"nodes": {"c": {"type": "t_count", "a": 2, "use_cache": False}}, "edges": []}, cache=cache)
    assert len(engine_test_nodes.CALLS) == 3
    assert (cache.hits, cache.misses) == (1, 2)


def test_random_nodes_are_never_cached(host: Any) -> None:
    cache = OutputCache()
    graph = {"nodes": {"r": {"type": "rand_int", "seed": 5}}, "edges": []}
    run_graph(host, graph, cache=cache)
    run_graph(host, graph, cache=cache)
    assert len(cache) == 0


def test_cache_is_bounded(host: Any) -> None:
    cache = OutputCache(max_size=2, min_node_seconds=0)
    for a in range(3):
        run_graph(host, {"nodes": {"c": {"type": "t_count", "a": a}}, "edges": []}, cache=cache)
    assert len(cache) == 2
    run_graph(host, {"nodes": {"c": {"type": "t_count", "a": 0}}, "edges": []}, cache=cache)
    assert len(engine_test_nodes.CALLS) == 4  # the oldest entry was evicted, so it ran again


@pytest.mark.parametrize("value", [0, -3])
def test_constraint_failure_names_node_and_field(host: Any, value: int) -> None:
    graph = {"nodes": {"v": {"type": "integer", "value": value}, "s": {"type": "t_size", "width": 4}},
             "edges": [edge("v", "value", "s", "height")]}
    result = run_graph(host, graph)
    assert result.errors[0].field == "height"
