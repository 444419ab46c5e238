"""The engine's limits: measuring values, refusing expansion before it is built, dropping outputs past a limit."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import engine_test_nodes
import pytest
from conftest import edge
from invoke_sdk.limits import LimitExceededError
from invoke_sdk.testing import FakeContext
from pydantic import BaseModel

from invoke_host.config import HostConfig
from invoke_host.engine import GraphExecutionState, NodeLimitError, NodeServices, OutputCache, run_graph
from invoke_host.graph import GraphValidationError, parse_graph
from invoke_host.host import Host
from invoke_host.limits import Limits


def limits(**given: int) -> Limits:
    return Limits.from_settings(given)


def services(host: Host, **config: Any) -> NodeServices:
    return NodeServices.default(HostConfig(root=host.config.root, **config))


def test_limits_come_from_the_config_with_the_defaults_for_the_rest() -> None:
    config = HostConfig(max_collection_size=5, max_session_nodes=7)
    assert Limits.from_config(config) == Limits.from_settings(config.model_dump(mode="json"))
    assert Limits.from_config(config).max_collection_size == 5
    assert Limits.from_settings({"max_session_nodes": True}).max_session_nodes == 100_000  # not an int
    assert Limits.from_settings().max_graph_nodes == HostConfig().max_graph_nodes == 10_000
    assert dict(Limits.from_config(config).context)["max_session_nodes"] == 7


class Color(StrEnum):
    RED = "red"


class Box(BaseModel):
    label: str
    values: list[int]


def test_measure_walks_nested_values_and_names_what_passed_which_setting() -> None:
    small = limits(max_collection_size=3, max_string_length=5)
    assert small.measure([1, [2, 3], {"k": "v"}], "x") > 0
    assert small.measure(Box(label="hello", values=[1, 2, 3]), "x") > small.measure(Box(label="h", values=[]), "x")
    with pytest.raises(LimitExceededError) as caught:
        small.measure({"outer": [[1], [1, 2, 3, 4]]}, "output 'o'")
    assert caught.value.setting == "max_collection_size" and caught.value.amount == 4 and caught.value.limit == 3
    assert str(caught.value).startswith("the number of items of a collection in output 'o' is 4, which exceeds "
                                        "max_collection_size (INVOKE_HOST_MAX_COLLECTION_SIZE=3)")
    with pytest.raises(LimitExceededError, match="max_string_length"):
        small.measure([Box(label="toolong", values=[])], "x")
    with pytest.raises(LimitExceededError, match="entries of a mapping"):
        small.measure({str(i): i for i in range(4)}, "x")
    with pytest.raises(LimitExceededError, match="digits of an integer"):
        small.measure(10**6, "x")
    assert small.measure(Color.RED, "x") == small.measure("red", "x")
    with pytest.raises(LimitExceededError, match="max_string_length"):
        small.measure(b"123456", "x")


def test_measure_stops_as_soon_as_the_budget_is_passed() -> None:
    roomy = limits(max_session_bytes=1000)
    # The list counts 102 bytes, each string 102: the ninth string passes 1,000.
    with pytest.raises(LimitExceededError) as caught:
        roomy.measure(["x" * 100] * 100, "output 's'", budget=1000)
    assert caught.value.setting == "max_session_bytes" and caught.value.amount == 102 + 9 * 102
    # With 400 bytes already used, 600 are left: the budget is what remains of max_session_bytes.
    with pytest.raises(LimitExceededError) as caught:
        roomy.measure(["x" * 100] * 100, "output 's'", budget=600)
    assert caught.value.amount == 400 + 102 + 5 * 102
    assert str(caught.value).startswith("the size of the session's results with output 's' is 1012, which exceeds "
                                        "max_session_bytes (INVOKE_HOST_MAX_SESSION_BYTES=1000)")


def test_an_iterate_is_refused_before_any_instance_is_created(host: Host) -> None:
    graph = parse_graph(host.registry, {
        "nodes": {"r": {"type": "integer_collection", "collection": list(range(50))}, "it": {"type": "iterate"},
                  "add": {"type": "add"}},
        "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "add", "a")],
    })
    state = GraphExecutionState(host.registry, graph, limits=limits(max_collection_size=20))
    node = state.next()
    assert node is not None and node.id == "r#0"
    with pytest.raises(NodeLimitError) as caught:
        state.complete(node.id, node.invoke(FakeContext()))
    assert caught.value.source_node_id == "it" and caught.value.node_id == "it#0"
    assert caught.value.original_error.setting == "max_collection_size"
    assert "iterate node 'it' would expand is 50" in str(caught.value)
    assert "it" not in state.source_prepared_mapping and set(state.exec_nodes) == {"r#0"}


def test_a_collect_given_collections_is_counted_before_it_gathers(host: Host) -> None:
    # Each range is within the limit; the collect would gather the 25 of 'big' and the 8 items of the loop.
    graph = {"nodes": {"big": {"type": "range_of_size", "size": 25}, "outer": {"type": "range_of_size", "size": 8},
                       "it": {"type": "iterate"}, "col": {"type": "collect"}},
             "edges": [edge("outer", "collection", "it", "collection"), edge("it", "item", "col", "item"),
                       edge("big", "collection", "col", "collection")]}
    result = run_graph(host, graph, services=services(host, max_collection_size=30))
    assert result.status == "failed"
    [error] = result.errors
    assert error.source_node_id == "col" and error.node_id == "col#0" and error.error_type == "LimitExceededError"
    assert error.message.startswith("the number of items collect node 'col' would gather is 33, which exceeds "
                                    "max_collection_size (INVOKE_HOST_MAX_COLLECTION_SIZE=30)")
    assert len(result.outputs["it"]) == 8
    assert run_graph(host, graph, services=services(host, max_collection_size=33)).status == "completed"


def test_an_output_past_a_limit_is_dropped_and_not_cached(host: Host) -> None:
    graph = {"nodes": {"big": {"type": "t_list", "count": 11}, "after": {"type": "t_count"}}}
    cache = OutputCache(min_node_seconds=0)  # these test nodes are quicker than the default keeps
    for _ in range(2):
        result = run_graph(host, graph, cache=cache, services=services(host, max_collection_size=10))
        assert result.status == "failed"
        [error] = result.errors
        assert error.source_node_id == "big" and error.error_type == "LimitExceededError"
        assert "output 'items' of node 'big' (t_list)" in error.message
        assert result.outputs.get("big", []) == [] and "big#0" not in result.state.results
    # `after` ran once and was a cache hit the second time; the refused output never reached the cache.
    assert engine_test_nodes.CALLS == ["after#0", "big#0", "big#0"] and len(cache) == 1


def test_every_output_counts_towards_max_session_bytes_cached_ones_too(host: Host) -> None:
    # Every iteration gives `big` the same input (the collection's total times 100): one run, then cache hits.
    graph = {"nodes": {"r": {"type": "range_of_size", "size": 6}, "it": {"type": "iterate"},
                       "n": {"type": "mul", "b": 100}, "big": {"type": "t_list"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "total", "n", "a"),
                       edge("n", "value", "big", "count")]}
    result = run_graph(host, graph, cache=OutputCache(min_node_seconds=0),  # quicker than the default keeps
                       services=services(host, max_session_bytes=10_000))
    assert result.status == "failed"
    [error] = result.errors
    assert error.source_node_id == "big" and "max_session_bytes (INVOKE_HOST_MAX_SESSION_BYTES=10000)" in error.message
    assert [c for c in engine_test_nodes.CALLS if c.startswith("big")] == ["big#0"]
    assert 1 <= len(result.outputs["big"]) < 6
    assert run_graph(host, graph, cache=OutputCache(), services=services(host, max_session_bytes=100_000)).status == (
        "completed")


def test_graph_size_and_written_values_are_checked_when_limits_are_given(host: Host) -> None:
    three = {"nodes": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}}
    with pytest.raises(GraphValidationError, match=r"max_graph_nodes \(INVOKE_HOST_MAX_GRAPH_NODES=2\)"):
        parse_graph(host.registry, three, limits=limits(max_graph_nodes=2))
    assert parse_graph(host.registry, three)  # no limits given: sizes are the caller's business
    listed = {"nodes": {"c": {"type": "integer_collection", "collection": [1, 2, 3]}}}
    with pytest.raises(GraphValidationError) as caught:
        parse_graph(host.registry, listed, limits=limits(max_collection_size=2))
    [problem] = caught.value.errors
    assert (problem.node_id, problem.field) == ("c", "collection")
    assert "input 'collection' of node 'c'" in problem.message
    gathered = {"nodes": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"},
                          "col": {"type": "collect"}},
                "edges": [edge(n, "value", "col", "item") for n in "abc"]}
    with pytest.raises(GraphValidationError) as caught:
        parse_graph(host.registry, gathered, limits=limits(max_collection_size=2))
    assert [(e.node_id, e.field) for e in caught.value.errors] == [("col", "item")]
    assert "collect node 'col' gathers from its edges is 3" in str(caught.value)
    model = parse_graph(host.registry, listed)
    with pytest.raises(GraphValidationError, match="max_collection_size"):
        parse_graph(host.registry, model, limits=limits(max_collection_size=2))  # a graph model is measured too


def test_run_graph_validates_with_the_limits_of_its_services(host: Host) -> None:
    graph = {"nodes": {"r": {"type": "range_of_size", "size": 11}}}
    with pytest.raises(GraphValidationError, match="max_collection_size"):
        run_graph(host, graph, services=services(host, max_collection_size=10))
    assert run_graph(host, graph, services=services(host, max_collection_size=11)).status == "completed"
