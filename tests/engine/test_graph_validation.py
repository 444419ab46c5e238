"""Validation reports every problem, each with its node id and field.

Each test gives a graph with one fault (or says which several) and asserts the complete list of errors, so
a check that stops firing, or one that fires where it should not, fails the test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import edge, plugins_for_engine_tests

from invoke_host.config import HostConfig
from invoke_host.graph import GraphValidationError, graph_model, parse_graph, validate_graph
from invoke_host.graph.edges import Edge
from invoke_host.host import Host, build_host

Problem = tuple[str | None, str | None, str]
PLUGIN_HINT = "If a plugin should provide it, check `invoke-host plugins` for one that failed to load."
ADD_INPUTS = "is_intermediate, use_cache, a, b"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Host:
    """One host for the module: validation only reads its frozen registry."""
    return build_host(HostConfig(root=tmp_path_factory.mktemp("root")), plugins_for_engine_tests(), entry_points=False)


def _errors(host: Any, graph: Any) -> list[Problem]:
    result = validate_graph(host.registry, graph)
    errors = [(e.node_id, e.field, e.message) for e in result.errors]
    assert result.valid is (not errors) and (result.graph is None) is bool(errors)
    return errors


def test_valid_graph_round_trips_exactly(host: Any) -> None:
    text = {"id": "g1", "nodes": {"a": {"id": "a", "type": "integer", "value": 3},
                                  "b": {"type": "add", "b": 2}},
            "edges": [edge("a", "value", "b", "a")]}
    graph = parse_graph(host.registry, json.dumps(text).encode())
    assert graph.to_json_dict() == text
    assert graph.id == "g1" and graph.nodes["b"].id == "b"
    assert parse_graph(host.registry, graph.to_json_dict()).to_json_dict() == text
    assert parse_graph(host.registry, json.dumps(text)).to_json_dict() == text  # text as well as bytes


def test_a_graph_without_id_or_edges_is_valid(host: Any) -> None:
    graph = parse_graph(host.registry, {"nodes": {"a": {"type": "integer"}}})
    assert graph.id is None and graph.edges == [] and list(graph.nodes) == ["a"]
    assert _errors(host, {}) == []


def test_null_edges_are_refused_as_the_document_says(host: Any) -> None:
    # The Graph schema types edges as an array: a null the validator let through reached clients in stored
    # sessions, where it broke the response schema they were generated from. InvokeAI refuses it too.
    assert _errors(host, {"nodes": {}, "edges": None}) == [(None, "edges", "'edges' must be a list of edges")]


def test_unknown_type_with_and_without_a_close_match(host: Any) -> None:
    assert _errors(host, {"nodes": {"x": {"type": "ad"}, "y": {"type": "qqqqqqq"}}, "edges": []}) == [
        ("x", "type", f"unknown node type 'ad'. Did you mean 'add'? {PLUGIN_HINT}"),
        ("y", "type", f"unknown node type 'qqqqqqq'. {PLUGIN_HINT}"),
    ]


def test_bad_value_names_node_and_field(host: Any) -> None:
    assert _errors(host, {"nodes": {"s": {"type": "t_size", "width": 0}}}) == [
        ("s", "width", "Input should be greater than 0")]
    assert _errors(host, {"nodes": {"c": {"type": "integer_collection", "collection": [1, "x"]}}}) == [
        ("c", "collection[1]", "Input should be a valid integer, unable to parse string as an integer")]


def test_a_node_validator_that_raises_anything_is_reported_on_the_node(host: Any) -> None:
    assert _errors(host, {"nodes": {"v": {"type": "t_strict_validator", "value": 13}}}) == [
        ("v", None, "the node's validation failed: RuntimeError: 13 is unlucky")]
    assert _errors(host, {"nodes": {"v": {"type": "t_strict_validator", "value": 12}}}) == []


def test_edges_to_missing_nodes_and_fields(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "add"}},
             "edges": [edge("ghost", "value", "b", "a"), edge("a", "nope", "b", "b"), edge("a", "value", "b", "zz"),
                       edge("a", "value", "nobody", "a")]}
    assert _errors(host, graph) == [
        ("ghost", "value", "edge ghost.value -> b.a: the source node does not exist"),
        ("a", "nope", "edge a.nope -> b.b: node 'a' has no output 'nope' (its outputs: value)"),
        ("b", "zz", f"edge a.value -> b.zz: node 'b' has no input 'zz' (its inputs: {ADD_INPUTS})"),
        ("nobody", "a", "edge a.value -> nobody.a: the destination node does not exist"),
    ]


def test_an_edge_from_the_type_output_is_refused(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "add"}}, "edges": [edge("a", "type", "b", "a")]}
    assert _errors(host, graph) == [
        ("a", "type", "edge a.type -> b.a: node 'a' has no output 'type' (its outputs: value)")]


def test_an_edge_into_a_field_that_is_not_an_input_is_refused(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "add"}}, "edges": [edge("a", "value", "b", "id")]}
    assert _errors(host, graph) == [
        ("b", "id", f"edge a.value -> b.id: node 'b' has no input 'id' (its inputs: {ADD_INPUTS})")]


def test_an_edge_of_an_invalid_node_adds_no_second_error(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "nope"}, "b": {"type": "add"}}, "edges": [edge("a", "value", "b", "a")]}
    assert _errors(host, graph) == [("a", "type", f"unknown node type 'nope'. {PLUGIN_HINT}")]


def test_incompatible_types(host: Any) -> None:
    graph = {"nodes": {"s": {"type": "string"}, "b": {"type": "add"}}, "edges": [edge("s", "value", "b", "a")]}
    assert _errors(host, graph) == [("b", "a", "edge s.value -> b.a: output type str does not fit input type int")]
    graph = {"nodes": {"f": {"type": "float"}, "i": {"type": "add"}}, "edges": [edge("f", "value", "i", "a")]}
    assert _errors(host, graph) == [("i", "a", "edge f.value -> i.a: output type float does not fit input type int")]


def test_int_feeds_float_and_numbers_feed_str(host: Any) -> None:
    assert _errors(host, {"nodes": {"i": {"type": "integer"}, "f": {"type": "add_float"}},
                          "edges": [edge("i", "value", "f", "a")]}) == []
    assert _errors(host, {"nodes": {"f": {"type": "float"}, "j": {"type": "string_join"}},
                          "edges": [edge("f", "value", "j", "string_left")]}) == []


def test_list_does_not_feed_single_value_and_single_does_not_feed_list(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "b": {"type": "add"}, "i": {"type": "integer"},
                       "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("r", "collection", "b", "a"), edge("i", "value", "t", "items")]}
    assert _errors(host, graph) == [
        ("b", "a", "edge r.collection -> b.a: output type list[int] does not fit input type int "
                   "(a collection cannot feed a single-value input; put an iterate node between them)"),
        ("t", "items", "edge i.value -> t.items: output type int does not fit input type list[int] "
                       "(a single value cannot feed a collection input; gather values with a collect node)"),
    ]


def test_collections_feed_matching_collection_inputs(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "it": {"type": "iterate"}, "col": {"type": "collect"},
                       "t": {"type": "t_needs_text", "text": "x"}, "t2": {"type": "t_needs_text", "text": "y"}},
             "edges": [edge("r", "collection", "t", "items"), edge("r", "collection", "it", "collection"),
                       edge("it", "item", "col", "item"), edge("col", "collection", "t2", "items")]}
    assert _errors(host, graph) == []


def test_a_value_and_an_edge_on_one_input_are_accepted(host: Any) -> None:
    # The edge wins when the node runs (tests/engine/test_invokeai_semantics.py), as in InvokeAI.
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "add", "a": 5}}, "edges": [edge("a", "value", "b", "a")]}
    assert _errors(host, graph) == []


def test_a_value_equal_to_the_default_does_not_count_as_given(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "add", "a": 0}}, "edges": [edge("a", "value", "b", "a")]}
    assert _errors(host, graph) == []


def test_connection_only_input_given_a_value(host: Any) -> None:
    graph = {"nodes": {"n": {"type": "integer"}, "col": {"type": "collect", "collection": [1, 2]}},
             "edges": [edge("n", "value", "col", "item")]}
    assert _errors(host, graph) == [("col", "collection", "input 'collection' takes only an edge, but the graph "
                                                          "gives it a value")]


def test_direct_only_input_given_an_edge(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("a", "value", "t", "fixed")]}
    assert _errors(host, graph) == [
        ("t", "fixed", "edge a.value -> t.fixed: input 'fixed' takes only a value written in the graph, not an edge")]


def test_required_input_left_empty(host: Any) -> None:
    assert _errors(host, {"nodes": {"t": {"type": "t_needs_text"}}}) == [
        ("t", "text", "required input 'text' has no value and no incoming edge")]
    graph = {"nodes": {"s": {"type": "string"}, "t": {"type": "t_needs_text"}},
             "edges": [edge("s", "value", "t", "text")]}
    assert _errors(host, graph) == []  # the edge fills it


def test_two_edges_into_one_input(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "add"}},
             "edges": [edge("a", "value", "c", "a"), edge("b", "value", "c", "a")]}
    assert _errors(host, graph) == [("c", "a", "input 'a' has 2 incoming edges (a.value, b.value); only a collect "
                                               "node's 'item' takes more than one")]


def test_several_edges_into_collects_collection_are_refused(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "r2": {"type": "range"}, "col": {"type": "collect"}},
             "edges": [edge("r", "collection", "col", "collection"), edge("r2", "collection", "col", "collection")]}
    assert _errors(host, graph) == [
        ("col", "collection", "input 'collection' has 2 incoming edges (r.collection, r2.collection); only a "
                              "collect node's 'item' takes more than one")]


def test_several_edges_into_collects_item_are_accepted(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "integer"}, "col": {"type": "collect"}},
             "edges": [edge("a", "value", "col", "item"), edge("b", "value", "col", "item")]}
    assert _errors(host, graph) == []


def test_cycle(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "add"}, "b": {"type": "add"}, "c": {"type": "add"}, "free": {"type": "add"}},
             "edges": [edge("a", "value", "b", "a"), edge("b", "value", "c", "a"), edge("c", "value", "a", "a")]}
    assert _errors(host, graph) == [
        (n, None, f"node {n!r} is part of a cycle (nodes that depend on each other: a, b, c)") for n in "abc"]
    assert _errors(host, {"nodes": {"a": {"type": "add"}}, "edges": [edge("a", "value", "a", "b")]}) == [
        ("a", "b", "edge a.value -> a.b connects the node to itself (a cycle)")]


def test_type_errors_are_not_reported_for_a_graph_with_a_cycle(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "add"}, "b": {"type": "add"}, "s": {"type": "string"}},
             "edges": [edge("a", "value", "b", "a"), edge("b", "value", "a", "a"), edge("s", "value", "a", "b")]}
    assert [e[:2] for e in _errors(host, graph)] == [("a", None), ("b", None)]


def test_iterate_rules(host: Any) -> None:
    assert _errors(host, {"nodes": {"it": {"type": "iterate"}}}) == [
        ("it", "collection", "an iterate node needs an incoming edge from a collection")]
    graph = {"nodes": {"i": {"type": "integer"}, "it": {"type": "iterate"}},
             "edges": [edge("i", "value", "it", "collection")]}
    assert _errors(host, graph) == [
        ("it", "collection", "edge i.value -> it.collection: output type int does not fit input type list[Any] "
                             "(a single value cannot feed a collection input; gather values with a collect node)"),
        ("it", "collection", "an iterate node's input must be a collection, not int"),
    ]
    graph = {"nodes": {"s": {"type": "string_collection"}, "it": {"type": "iterate"}, "b": {"type": "add"}},
             "edges": [edge("s", "collection", "it", "collection"), edge("it", "item", "b", "a")]}
    assert _errors(host, graph) == [("b", "a", "edge it.item -> b.a: output type str does not fit input type int")]


def test_the_item_type_flows_through_collect_and_iterate(host: Any) -> None:
    # range -> collect -> iterate: the items are still ints, so they feed an int input and not a str-only one.
    graph = {"nodes": {"r": {"type": "range"}, "col": {"type": "collect"}, "it": {"type": "iterate"},
                       "b": {"type": "add"}},
             "edges": [edge("r", "collection", "col", "collection"), edge("col", "collection", "it", "collection"),
                       edge("it", "item", "b", "a")]}
    assert _errors(host, graph) == []
    graph["nodes"]["t"] = {"type": "t_needs_text", "text": "x"}
    graph["edges"].append(edge("col", "collection", "t", "items"))
    assert _errors(host, graph) == []


def test_collect_rules(host: Any) -> None:
    assert _errors(host, {"nodes": {"col": {"type": "collect"}}}) == [
        ("col", "item", "a collect node needs at least one incoming item or collection edge")]
    graph = {"nodes": {"i": {"type": "integer"}, "s": {"type": "string"}, "col": {"type": "collect"}},
             "edges": [edge("i", "value", "col", "item"), edge("s", "value", "col", "item")]}
    assert _errors(host, graph) == [("col", "item", "a collect node's items must all be of one type, got int, str")]
    graph = {"nodes": {"r": {"type": "range"}, "s": {"type": "string"}, "col": {"type": "collect"}},
             "edges": [edge("r", "collection", "col", "collection"), edge("s", "value", "col", "item")]}
    assert _errors(host, graph) == [("col", "item", "a collect node's items must all be of one type, got str, int")]
    graph = {"nodes": {"i": {"type": "integer"}, "col": {"type": "collect"}, "b": {"type": "add"},
                       "t": {"type": "t_needs_text", "text": "x"}, "ss": {"type": "string"},
                       "col2": {"type": "collect"}},
             "edges": [edge("i", "value", "col", "item"), edge("col", "collection", "b", "a"),
                       edge("ss", "value", "col2", "item"), edge("col2", "collection", "t", "items")]}
    assert _errors(host, graph) == [
        ("b", "a", "edge col.collection -> b.a: output type list[int] does not fit input type int "
                   "(a collection cannot feed a single-value input; put an iterate node between them)"),
        ("t", "items", "edge col2.collection -> t.items: output type list[str] does not fit input type list[int]"),
    ]


def test_ints_and_floats_collect_as_one_kind_only_when_one_is_a_subclass(host: Any) -> None:
    graph = {"nodes": {"i": {"type": "integer"}, "b": {"type": "boolean"}, "col": {"type": "collect"},
                       "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("i", "value", "col", "item"), edge("b", "value", "col", "item"),
                       edge("col", "collection", "t", "items")]}
    assert _errors(host, graph) == []  # bool is an int: the collection is list[int]


def test_every_problem_is_reported_at_once(host: Any) -> None:
    graph = {"nodes": {"x": {"type": "nope"}, "s": {"type": "t_size", "width": -1}, "t": {"type": "t_needs_text"},
                       "it": {"type": "iterate"}},
             "edges": [edge("ghost", "value", "t", "text")]}
    expected = [
        ("x", "type", f"unknown node type 'nope'. {PLUGIN_HINT}"),
        ("s", "width", "Input should be greater than 0"),
        ("ghost", "value", "edge ghost.value -> t.text: the source node does not exist"),
        ("t", "text", "required input 'text' has no value and no incoming edge"),
        ("it", "collection", "an iterate node needs an incoming edge from a collection"),
    ]
    assert _errors(host, graph) == expected
    with pytest.raises(GraphValidationError) as caught:
        parse_graph(host.registry, graph)
    assert [(e.node_id, e.field, e.message) for e in caught.value.errors] == expected
    assert str(caught.value).splitlines()[0] == "The graph is invalid (5 problems):"
    assert str(caught.value).splitlines()[1] == f"  - x.type: unknown node type 'nope'. {PLUGIN_HINT}"


def test_one_problem_is_counted_in_the_singular(host: Any) -> None:
    with pytest.raises(GraphValidationError) as caught:
        parse_graph(host.registry, {"nodes": {"x": {"type": "nope"}}})
    assert str(caught.value).splitlines()[0] == "The graph is invalid (1 problem):"


def test_unknown_top_level_fields_are_refused(host: Any) -> None:
    assert _errors(host, {"nodes": {}, "edges": [], "extra": 1, "graph": {}}) == [
        (None, "extra", "unknown graph field 'extra' (a graph has id, nodes, edges)"),
        (None, "graph", "unknown graph field 'graph' (a graph has id, nodes, edges)"),
    ]


@pytest.mark.parametrize("graph_id", [5, 1.5, ["g"], {"id": "g"}, True])
def test_a_graph_id_that_is_not_a_string_is_refused(host: Any, graph_id: Any) -> None:
    assert _errors(host, {"id": graph_id, "nodes": {}}) == [(None, "id", "the graph's id must be a string")]


def test_a_node_id_that_differs_from_its_key_is_refused(host: Any) -> None:
    assert _errors(host, {"nodes": {"a": {"type": "add", "id": "b"}}}) == [
        ("a", "id", "the node's id 'b' differs from its key 'a'")]


def test_a_graph_model_is_checked_too(host: Any) -> None:
    good = parse_graph(host.registry, {"nodes": {"a": {"type": "integer"}, "b": {"type": "add"}},
                                       "edges": [edge("a", "value", "b", "a")]})
    assert validate_graph(host.registry, good).graph is good
    model = graph_model(host.registry)
    renamed = type(good.nodes["b"])(id="other")
    bad = model.model_construct(nodes={"a": good.nodes["a"], "b": renamed}, edges=list(good.edges))
    assert _errors(host, bad) == [("b", "id", "the node's id 'other' differs from its key 'b'")]
    back = Edge.model_validate(edge("b", "value", "a", "value"))
    cyclic = model.model_construct(nodes=dict(good.nodes), edges=[*good.edges, back])
    assert [e[:2] for e in _errors(host, cyclic)] == [("a", None), ("b", None)]


@pytest.mark.parametrize(("body", "expected"), [
    (b"", [(None, None, "The graph is not valid JSON: Expecting value: line 1 column 1 (char 0)")]),
    (b"nope", [(None, None, "The graph is not valid JSON: Expecting value: line 1 column 1 (char 0)")]),
    (b"\xff\xfe", [(None, None, "The graph is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 0: "
                                "invalid start byte")]),
    (b"[]", [(None, None, "a graph must be a JSON object with 'nodes' and 'edges'")]),
    (b"1", [(None, None, "a graph must be a JSON object with 'nodes' and 'edges'")]),
    (b'"x"', [(None, None, "a graph must be a JSON object with 'nodes' and 'edges'")]),
    (b"null", [(None, None, "a graph must be a JSON object with 'nodes' and 'edges'")]),
    (b'{"nodes": []}', [(None, "nodes", "'nodes' must be an object mapping node ids to nodes")]),
    (b'{"nodes": {"a": 1}}', [("a", None, "a node must be an object with a 'type' and its input values")]),
    (b'{"nodes": {"a": {"type": 5}}}', [("a", "type", "the node has no 'type' (a string naming a node type)")]),
    (b'{"nodes": {"a": {}}}', [("a", "type", "the node has no 'type' (a string naming a node type)")]),
    (b'{"edges": {}}', [(None, "edges", "'edges' must be a list of edges")]),
    (b'{"edges": [1, {"source": 2}]}', [
        (None, "edges[0]", "invalid edge: Input should be a valid dictionary or instance of Edge"),
        (None, "edges[1].source", "invalid edge: Input should be a valid dictionary or instance of EdgeConnection"),
        (None, "edges[1].destination", "invalid edge: Field required"),
    ]),
])
def test_garbage_is_reported_not_raised(host: Any, body: bytes, expected: list[Problem]) -> None:
    assert _errors(host, body) == expected
    assert _errors(host, memoryview(body)) == expected  # any bytes-like body


def test_json_nested_too_deep_is_reported_not_raised(host: Any) -> None:
    [(node, field, message)] = _errors(host, b"[" * 50000)
    assert (node, field) == (None, None) and message.startswith("The graph is not valid JSON: ")


def test_node_keys_of_a_python_dict_are_taken_as_text(host: Any) -> None:
    graph = parse_graph(host.registry, {"nodes": {1: {"type": "integer", "value": 4}, "b": {"type": "add"}},
                                        "edges": [edge("1", "value", "b", "a")]})
    assert list(graph.nodes) == ["1", "b"] and graph.nodes["1"].id == "1"


@pytest.mark.parametrize(("fault", "error"), [
    (1, ("a", None, "a node must be an object with a 'type' and its input values")),
    ({}, ("a", "type", "the node has no 'type' (a string naming a node type)")),
    ({"type": "add", "id": "z"}, ("a", "id", "the node's id 'z' differs from its key 'a'")),
    ({"type": "t_strict_validator", "value": 13}, ("a", None, "the node's validation failed: RuntimeError: 13 is "
                                                               "unlucky")),
    ({"type": "nope"}, ("a", "type", f"unknown node type 'nope'. {PLUGIN_HINT}")),
])
def test_a_faulty_node_does_not_stop_the_checks_of_the_nodes_after_it(host: Any, fault: Any, error: Problem) -> None:
    graph = {"nodes": {"a": fault, "b": {"type": "nope"}}}
    assert _errors(host, graph) == [error, ("b", "type", f"unknown node type 'nope'. {PLUGIN_HINT}")]


def test_a_close_match_hint_names_at_most_three_types(host: Any) -> None:
    assert _errors(host, {"nodes": {"x": {"type": "floa"}}}) == [
        ("x", "type", f"unknown node type 'floa'. Did you mean 'float', 'sub_float', 'mul_float'? {PLUGIN_HINT}")]


def test_a_node_id_that_sorts_before_its_key_is_refused_too(host: Any) -> None:
    assert _errors(host, {"nodes": {"b": {"type": "add", "id": "a"}}}) == [
        ("b", "id", "the node's id 'a' differs from its key 'b'")]
    model = graph_model(host.registry)
    node = host.registry.invocations["add"].value(id="a")
    assert _errors(host, model.model_construct(nodes={"b": node}, edges=[])) == [
        ("b", "id", "the node's id 'a' differs from its key 'b'")]


def test_the_outputs_listed_for_a_bad_edge_leave_out_only_type(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("r", "type", "t", "items")]}
    assert _errors(host, graph) == [
        ("r", "type", "edge r.type -> t.items: node 'r' has no output 'type' (its outputs: collection)")]


def test_a_refused_edge_into_a_direct_input_is_not_checked_any_further(host: Any) -> None:
    graph = {"nodes": {"s": {"type": "string"}, "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("s", "value", "t", "fixed")]}
    assert _errors(host, graph) == [
        ("t", "fixed", "edge s.value -> t.fixed: input 'fixed' takes only a value written in the graph, not an edge")]


@pytest.mark.parametrize("node_type", ["t_item", "a_item"])
def test_only_collect_takes_several_edges_into_an_input_named_item(host: Any, node_type: str) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "integer"}, "x": {"type": node_type}},
             "edges": [edge("a", "value", "x", "item"), edge("b", "value", "x", "item")]}
    assert _errors(host, graph) == [("x", "item", "input 'item' has 2 incoming edges (a.value, b.value); only a "
                                                  "collect node's 'item' takes more than one")]


@pytest.mark.parametrize("node_type", ["t_item", "a_item"])
def test_only_iterate_gives_its_item_the_type_of_its_collection(host: Any, node_type: str) -> None:
    graph = {"nodes": {"x": {"type": node_type}, "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("x", "item", "t", "items")]}
    assert _errors(host, graph) == [
        ("t", "items", "edge x.item -> t.items: output type int does not fit input type list[int] "
                       "(a single value cannot feed a collection input; gather values with a collect node)")]


def test_a_default_made_by_a_factory_counts_as_not_given(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "t": {"type": "t_needs_text", "text": "x", "items": []}},
             "edges": [edge("r", "collection", "t", "items")]}
    assert _errors(host, graph) == []


def test_a_value_for_a_direct_input_is_fine(host: Any) -> None:
    assert _errors(host, {"nodes": {"t": {"type": "t_needs_text", "text": "x", "fixed": 5}}}) == []


def test_an_iterates_index_and_total_are_ints_whatever_it_iterates_over(host: Any) -> None:
    graph = {"nodes": {"s": {"type": "string_collection"}, "it": {"type": "iterate"}, "a": {"type": "add"}},
             "edges": [edge("s", "collection", "it", "collection"), edge("it", "index", "a", "a"),
                       edge("it", "total", "a", "b")]}
    assert _errors(host, graph) == []


def test_a_collect_of_one_type_through_several_edges_has_that_type(host: Any) -> None:
    graph = {"nodes": {"i": {"type": "integer"}, "j": {"type": "integer"}, "col": {"type": "collect"},
                       "b": {"type": "add"}},
             "edges": [edge("i", "value", "col", "item"), edge("j", "value", "col", "item"),
                       edge("col", "collection", "b", "a")]}
    assert _errors(host, graph) == [
        ("b", "a", "edge col.collection -> b.a: output type list[int] does not fit input type int "
                   "(a collection cannot feed a single-value input; put an iterate node between them)")]


def test_a_collect_of_mixed_types_is_a_list_of_anything_downstream(host: Any) -> None:
    graph = {"nodes": {"i": {"type": "integer"}, "s": {"type": "string"}, "col": {"type": "collect"},
                       "it": {"type": "iterate"}, "col2": {"type": "collect"}, "b": {"type": "add"}},
             "edges": [edge("i", "value", "col", "item"), edge("s", "value", "col", "item"),
                       edge("col", "collection", "it", "collection"), edge("it", "item", "col2", "item"),
                       edge("col", "collection", "b", "a")]}
    assert _errors(host, graph) == [
        ("b", "a", "edge col.collection -> b.a: output type list[Any] does not fit input type int "
                   "(a collection cannot feed a single-value input; put an iterate node between them)"),
        ("col", "item", "a collect node's items must all be of one type, got int, str"),
    ]


def test_an_iterate_with_several_collection_edges_is_checked_on_the_first(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "s": {"type": "string_collection"}, "n": {"type": "t_numbers"},
                       "it": {"type": "iterate"}, "a": {"type": "add"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("s", "collection", "it", "collection"),
                       edge("n", "numbers", "it", "collection"), edge("it", "item", "a", "a")]}
    assert _errors(host, graph) == [
        ("it", "collection", "input 'collection' has 3 incoming edges (r.collection, s.collection, n.numbers); "
                             "only a collect node's 'item' takes more than one")]


def test_an_empty_collect_does_not_stop_the_checks_of_the_nodes_after_it(host: Any) -> None:
    assert _errors(host, {"nodes": {"col": {"type": "collect"}, "it": {"type": "iterate"}}}) == [
        ("col", "item", "a collect node needs at least one incoming item or collection edge"),
        ("it", "collection", "an iterate node needs an incoming edge from a collection"),
    ]


def test_only_collect_has_its_collection_type_worked_out_from_its_inputs(host: Any) -> None:
    # boolean_collection (a type id that sorts before 'collect') says list[bool], which no list[str] takes.
    graph = {"nodes": {"b": {"type": "boolean_collection"}, "t": {"type": "t_texts"}},
             "edges": [edge("b", "collection", "t", "texts")]}
    assert _errors(host, graph) == [
        ("t", "texts", "edge b.collection -> t.texts: output type list[bool] does not fit input type list[str]")]


def test_a_collect_of_items_of_unknown_type_is_a_list_of_anything(host: Any) -> None:
    # col is list[Any] (mixed items), so its items are of unknown type, and col2 gathers only those.
    graph = {"nodes": {"i": {"type": "integer"}, "s": {"type": "string"}, "col": {"type": "collect"},
                       "it": {"type": "iterate"}, "col2": {"type": "collect"}, "t": {"type": "t_texts"}},
             "edges": [edge("i", "value", "col", "item"), edge("s", "value", "col", "item"),
                       edge("col", "collection", "it", "collection"), edge("it", "item", "col2", "item"),
                       edge("col2", "collection", "t", "texts")]}
    assert _errors(host, graph) == [("col", "item", "a collect node's items must all be of one type, got int, str")]
