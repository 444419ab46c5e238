"""What the runner does per node only for a server: images interfaces made on use, node events only when wanted."""

from __future__ import annotations

import dataclasses
from typing import Any

from conftest import edge

from invoke_host.engine import (
    EngineEvent,
    NodeCompleted,
    NodeFailed,
    NodeStarted,
    SessionFinished,
    SessionRunner,
)
from invoke_host.engine.state import GraphExecutionState
from invoke_host.graph import parse_graph
from invoke_host.host import Host


class _Metadata:
    """The images interface one node run got: answers get_metadata with who it was made for."""

    def __init__(self, made_for: tuple[Any, ...]) -> None:
        self.made_for = made_for

    def get_metadata(self, image_name: str) -> dict[str, Any]:
        return {"image": image_name, "session": self.made_for[0], "node": self.made_for[2]}


def _state(host: Host, graph: dict[str, Any]) -> GraphExecutionState:
    return GraphExecutionState(host.registry, parse_graph(host.registry, graph), id="s1")


def _chain_and_reader() -> dict[str, Any]:
    return {"nodes": {"a": {"id": "a", "type": "add", "a": 1, "b": 2}, "b": {"id": "b", "type": "add", "b": 3},
                      "read": {"id": "read", "type": "t_image_metadata", "name": "m.png"}},
            "edges": [edge("a", "value", "b", "a")]}


def test_a_nodes_images_interface_is_made_when_it_first_uses_it_with_that_nodes_arguments(host: Host) -> None:
    made: list[tuple[Any, ...]] = []

    def images_for_node(*args: Any) -> _Metadata:
        made.append(args)
        return _Metadata(args)

    services = dataclasses.replace(host.node_services, images_for_node=images_for_node)
    state = _state(host, _chain_and_reader())
    assert SessionRunner(host.registry, services).run(state, workflow='{"w":1}') == "completed"
    # Two adds that never touch images, one reader: one interface, for the reader, as the runner was asked to.
    [(session_id, node, source_id, graph, workflow)] = made
    assert (session_id, node.id, source_id, workflow) == ("s1", "read#0", "read", '{"w":1}')
    assert set(graph()["nodes"]) == {"a", "b", "read"}  # the graph images embed, made when asked for
    [reader] = state.source_results("read")
    assert reader.text == str({"image": "m.png", "session": "s1", "node": "read"})


def test_node_starts_and_completions_are_reported_only_for_nodes_whose_listener_wants_them(host: Host) -> None:
    events: list[EngineEvent] = []
    answers = iter([False, True, False])  # asked once per node: a, then b, then the failing node
    graph = {"nodes": {"a": {"id": "a", "type": "add", "a": 1}, "b": {"id": "b", "type": "add"},
                       "boom": {"id": "boom", "type": "t_boom"}},
             "edges": [edge("a", "value", "b", "a"), edge("b", "value", "boom", "a")]}
    runner = SessionRunner(host.registry, host.node_services, on_event=events.append,
                           wants_node_events=lambda: next(answers))
    assert runner.run(_state(host, graph)) == "failed"
    # b's start and completion (both), none of a's; the failure and the session's end whatever was answered.
    assert [(type(e).__name__, getattr(e, "source_node_id", None)) for e in events] == [
        ("NodeStarted", "b"), ("NodeCompleted", "b"), ("NodeFailed", "boom"), ("SessionFinished", None)]
    assert isinstance(events[0], NodeStarted) and isinstance(events[1], NodeCompleted)
    assert isinstance(events[2], NodeFailed) and isinstance(events[3], SessionFinished)
    assert next(answers, "asked no more") == "asked no more"


def test_without_a_wants_callback_every_node_is_reported(host: Host) -> None:
    events: list[EngineEvent] = []
    runner = SessionRunner(host.registry, host.node_services, on_event=events.append)
    graph = {"nodes": {"a": {"id": "a", "type": "add", "a": 1}, "b": {"id": "b", "type": "add"}},
             "edges": [edge("a", "value", "b", "a")]}
    assert runner.run(_state(host, graph)) == "completed"
    assert [type(e).__name__ for e in events] == ["NodeStarted", "NodeCompleted"] * 2 + ["SessionFinished"]


class _Hooks:
    """The runner's direct calls for node starts and completions; fails on the first completion if asked to."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.fail = fail

    def node_started(self, invocation: Any, source_node_id: str) -> None:
        self.calls.append(("started", source_node_id, invocation.id))

    def node_completed(self, invocation: Any, source_node_id: str, output: Any, cached: bool) -> None:
        if self.fail:
            self.fail = False
            raise RuntimeError("this listener is broken")
        self.calls.append(("completed", source_node_id, output.value))


def test_node_hooks_are_called_instead_of_records_for_the_wanted_nodes_and_a_failing_one_fails_nothing(
        host: Host, caplog: Any) -> None:
    events: list[EngineEvent] = []
    answers = iter([True, False, True])
    graph = {"nodes": {"a": {"id": "a", "type": "add", "a": 1, "b": 2}, "b": {"id": "b", "type": "add", "b": 3},
                       "c": {"id": "c", "type": "add", "b": 4}},
             "edges": [edge("a", "value", "b", "a"), edge("b", "value", "c", "a")]}
    hooks = _Hooks(fail=True)
    runner = SessionRunner(host.registry, host.node_services, on_event=events.append,
                           wants_node_events=lambda: next(answers), node_hooks=hooks)
    state = _state(host, graph)
    assert runner.run(state) == "completed"
    # a's completion raised (logged); b was not wanted; c reported in full. No start/complete record was made.
    assert hooks.calls == [("started", "a", "a#0"), ("started", "c", "c#0"), ("completed", "c", 10)]
    assert [type(e).__name__ for e in events] == ["SessionFinished"]
    assert "An event listener failed on node_completed" in caplog.text
    assert [r.value for r in state.source_results("c")] == [10]
