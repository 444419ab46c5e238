"""Execution order, iterate/collect expansion, results by source node, and state persistence."""

from __future__ import annotations

import json
from typing import Any

from conftest import edge
from invoke_sdk.testing import FakeContext

from invoke_host.engine import GraphExecutionState, run_graph
from invoke_host.graph import parse_graph


def _iterate_graph(items: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodes": {"src": items, "it": {"type": "iterate"}, "A": {"type": "add", "b": 10},
                  "B": {"type": "mul", "b": 2}, "col": {"type": "collect"}},
        "edges": [edge("src", "collection", "it", "collection"), edge("it", "item", "A", "a"),
                  edge("A", "value", "B", "a"), edge("B", "value", "col", "item")],
    }


def _order(result: Any) -> list[str]:
    state = result.state
    return [state.exec_nodes[i].source_id for i in state.executed_history]


def test_each_branch_runs_to_its_leaf_before_the_next(host: Any) -> None:
    result = run_graph(host, _iterate_graph({"type": "range_of_size", "start": 0, "size": 3}))
    assert result.status == "completed"
    assert [s for s in _order(result) if s in ("A", "B")] == ["A", "B", "A", "B", "A", "B"]
    assert result.output("col").collection == [20, 22, 24]  # type: ignore[attr-defined]


def test_collect_keeps_iteration_order(host: Any) -> None:
    graph = _iterate_graph({"type": "integer_collection", "collection": [9, 1, 5, 3]})
    result = run_graph(host, graph)
    assert result.output("col").collection == [38, 22, 30, 26]  # type: ignore[attr-defined]
    assert [o.value for o in result.outputs["B"]] == [38, 22, 30, 26]  # type: ignore[attr-defined]
    assert len(result.state.source_prepared_mapping["A"]) == 4


def test_iterate_inside_iterate(host: Any) -> None:
    graph = {
        "nodes": {"outer_src": {"type": "range_of_size", "start": 1, "size": 3}, "outer": {"type": "iterate"},
                  "inner_src": {"type": "range_of_size", "start": 0}, "inner": {"type": "iterate"},
                  "m": {"type": "mul"}, "col": {"type": "collect"}},
        "edges": [edge("outer_src", "collection", "outer", "collection"), edge("outer", "item", "inner_src", "size"),
                  edge("inner_src", "collection", "inner", "collection"), edge("inner", "item", "m", "a"),
                  edge("outer", "item", "m", "b"), edge("m", "value", "col", "item")],
    }
    result = run_graph(host, graph)
    assert result.status == "completed"
    # outer items 1, 2, 3; inner ranges [0], [0, 1], [0, 1, 2]; m = inner * outer, collected per outer item
    assert [o.collection for o in result.outputs["col"]] == [[0], [0, 2], [0, 3, 6]]  # type: ignore[attr-defined]
    assert len(result.outputs["m"]) == 6


def test_collect_appends_items_to_a_given_collection(host: Any) -> None:
    graph = {
        "nodes": {"base": {"type": "integer_collection", "collection": [100]}, "r": {"type": "range", "stop": 3},
                  "it": {"type": "iterate"}, "col": {"type": "collect"}},
        "edges": [edge("base", "collection", "col", "collection"), edge("r", "collection", "it", "collection"),
                  edge("it", "item", "col", "item")],
    }
    assert run_graph(host, graph).output("col").collection == [100, 0, 1, 2]  # type: ignore[attr-defined]


def test_empty_iterate_collects_nothing(host: Any) -> None:
    graph = _iterate_graph({"type": "integer_collection", "collection": []})
    result = run_graph(host, graph)
    assert result.status == "completed"
    assert result.output("col").collection == []  # type: ignore[attr-defined]
    assert result.outputs.get("A", []) == []


def test_numbers_feed_string_inputs_like_invokeai(host: Any) -> None:
    graph = {"nodes": {"n": {"type": "integer", "value": 7}, "j": {"type": "string_join", "string_right": "!"}},
             "edges": [edge("n", "value", "j", "string_left")]}
    assert run_graph(host, graph).output("j").value == "7!"  # type: ignore[attr-defined]


def test_state_saved_mid_run_resumes_to_the_same_results(host: Any) -> None:
    graph = parse_graph(host.registry, _iterate_graph({"type": "range_of_size", "start": 0, "size": 3}))
    state = GraphExecutionState(host.registry, graph)
    for _ in range(4):  # src, it#0, A, B
        node = state.next()
        assert node is not None
        state.complete(node.id, node.invoke(FakeContext()))  # type: ignore[arg-type]
    saved = json.loads(json.dumps(state.to_dict()))
    restored = GraphExecutionState.from_dict(host.registry, saved)
    assert restored.to_dict() == saved
    while (node := restored.next()) is not None:
        restored.complete(node.id, node.invoke(FakeContext()))  # type: ignore[arg-type]
    assert restored.is_complete()
    assert restored.source_results("col")[0].collection == [20, 22, 24]  # type: ignore[attr-defined]
    assert len(restored.executed_history) == 11


def test_long_chain_runs(host: Any) -> None:
    n = 300
    graph = {"nodes": {f"n{i}": {"type": "add", "b": 1} for i in range(n)},
             "edges": [edge(f"n{i - 1}", "value", f"n{i}", "a") for i in range(1, n)]}
    assert run_graph(host, graph).output(f"n{n - 1}").value == n  # type: ignore[attr-defined]
