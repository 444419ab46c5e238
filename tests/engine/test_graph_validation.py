"""Validation reports every problem, each with its node id and field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import edge

from invoke_host.graph import GraphValidationError, parse_graph, validate_graph


def _problems(host: Any, graph: Any) -> set[tuple[str | None, str | None]]:
    result = validate_graph(host.registry, graph)
    assert not result.valid
    return {(e.node_id, e.field) for e in result.errors}


def _one(host: Any, graph: Any, node_id: str | None, field: str | None, words: str) -> None:
    result = validate_graph(host.registry, graph)
    matching = [e for e in result.errors if (e.node_id, e.field) == (node_id, field)]
    assert matching, result.errors
    assert words in matching[0].message, matching[0].message


def test_valid_graph_round_trips_exactly(host: Any) -> None:
    text = {"id": "g1", "nodes": {"a": {"id": "a", "type": "integer", "value": 3},
                                  "b": {"type": "add", "b": 2}},
            "edges": [edge("a", "value", "b", "a")]}
    graph = parse_graph(host.registry, json.dumps(text).encode())
    assert graph.to_json_dict() == text
    assert parse_graph(host.registry, graph.to_json_dict()).to_json_dict() == text


def test_unknown_type(host: Any) -> None:
    _one(host, {"nodes": {"x": {"type": "ad"}}, "edges": []}, "x", "type", "unknown node type 'ad'")


def test_bad_value_names_node_and_field(host: Any) -> None:
    _one(host, {"nodes": {"s": {"type": "t_size", "width": 0}}}, "s", "width", "greater than 0")


def test_edge_to_missing_node_and_fields(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "add"}},
             "edges": [edge("ghost", "value", "b", "a"), edge("a", "nope", "b", "b"), edge("a", "value", "b", "zz")]}
    assert _problems(host, graph) >= {("ghost", "value"), ("a", "nope"), ("b", "zz")}


def test_incompatible_types(host: Any) -> None:
    graph = {"nodes": {"s": {"type": "string"}, "b": {"type": "add"}}, "edges": [edge("s", "value", "b", "a")]}
    _one(host, graph, "b", "a", "output type str does not fit input type int")


def test_list_does_not_feed_single_value_and_single_does_not_feed_list(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "b": {"type": "add"}, "i": {"type": "integer"},
                       "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("r", "collection", "b", "a"), edge("i", "value", "t", "items")]}
    _one(host, graph, "b", "a", "put an iterate node between them")
    _one(host, graph, "t", "items", "gather values with a collect node")


def test_collections_feed_matching_collection_inputs(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "it": {"type": "iterate"}, "col": {"type": "collect"},
                       "t": {"type": "t_needs_text", "text": "x"}, "t2": {"type": "t_needs_text", "text": "y"}},
             "edges": [edge("r", "collection", "t", "items"), edge("r", "collection", "it", "collection"),
                       edge("it", "item", "col", "item"), edge("col", "collection", "t2", "items")]}
    assert validate_graph(host.registry, graph).valid


def test_value_and_edge_on_one_input(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "add", "a": 5}}, "edges": [edge("a", "value", "b", "a")]}
    _one(host, graph, "b", "a", "both a value and an incoming edge")


def test_connection_only_input_given_a_value(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range"}, "it": {"type": "iterate", "collection": [1, 2]}},
             "edges": [edge("r", "collection", "it", "collection")]}
    _one(host, graph, "it", "collection", "takes only an edge")


def test_direct_only_input_given_an_edge(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "t": {"type": "t_needs_text", "text": "x"}},
             "edges": [edge("a", "value", "t", "fixed")]}
    _one(host, graph, "t", "fixed", "takes only a value written in the graph")


def test_required_input_left_empty(host: Any) -> None:
    _one(host, {"nodes": {"t": {"type": "t_needs_text"}}}, "t", "text", "required input 'text'")


def test_two_edges_into_one_input(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "add"}},
             "edges": [edge("a", "value", "c", "a"), edge("b", "value", "c", "a")]}
    _one(host, graph, "c", "a", "has 2 incoming edges")


def test_cycle(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "add"}, "b": {"type": "add"}, "c": {"type": "add"}},
             "edges": [edge("a", "value", "b", "a"), edge("b", "value", "a", "a"), edge("a", "value", "c", "a")]}
    problems = _problems(host, graph)
    assert {("a", None), ("b", None)} <= problems
    _one(host, {"nodes": {"a": {"type": "add"}}, "edges": [edge("a", "value", "a", "b")]}, "a", "b", "itself")


def test_iterate_rules(host: Any) -> None:
    _one(host, {"nodes": {"it": {"type": "iterate"}}}, "it", "collection", "needs an incoming edge")
    graph = {"nodes": {"i": {"type": "integer"}, "it": {"type": "iterate"}},
             "edges": [edge("i", "value", "it", "collection")]}
    assert ("it", "collection") in _problems(host, graph)
    graph = {"nodes": {"s": {"type": "string_collection"}, "it": {"type": "iterate"}, "b": {"type": "add"}},
             "edges": [edge("s", "collection", "it", "collection"), edge("it", "item", "b", "a")]}
    _one(host, graph, "b", "a", "output type str does not fit input type int")


def test_collect_rules(host: Any) -> None:
    _one(host, {"nodes": {"col": {"type": "collect"}}}, "col", "item", "at least one incoming")
    graph = {"nodes": {"i": {"type": "integer"}, "s": {"type": "string"}, "col": {"type": "collect"}},
             "edges": [edge("i", "value", "col", "item"), edge("s", "value", "col", "item")]}
    _one(host, graph, "col", "item", "must all be of one type")
    graph = {"nodes": {"i": {"type": "integer"}, "col": {"type": "collect"}, "b": {"type": "add"},
                       "t": {"type": "t_needs_text", "text": "x"}, "ss": {"type": "string"},
                       "col2": {"type": "collect"}},
             "edges": [edge("i", "value", "col", "item"), edge("col", "collection", "b", "a"),
                       edge("ss", "value", "col2", "item"), edge("col2", "collection", "t", "items")]}
    _one(host, graph, "b", "a", "list[int] does not fit input type int")
    _one(host, graph, "t", "items", "list[str] does not fit input type list[int]")


def test_every_problem_is_reported_at_once(host: Any) -> None:
    graph = {"nodes": {"x": {"type": "nope"}, "s": {"type": "t_size", "width": -1}, "t": {"type": "t_needs_text"},
                       "it": {"type": "iterate"}},
             "edges": [edge("ghost", "value", "t", "text")]}
    assert _problems(host, graph) >= {("x", "type"), ("s", "width"), ("ghost", "value"), ("t", "text"),
                                      ("it", "collection")}
    with pytest.raises(GraphValidationError) as caught:
        parse_graph(host.registry, graph)
    assert len(caught.value.errors) >= 5


@pytest.mark.parametrize("body", [b"", b"nope", b"\xff\xfe", b"[]", b"1", b'"x"', b"null", b"[" * 50000,
                                  b'{"nodes": []}', b'{"nodes": {"a": 1}}', b'{"nodes": {"a": {"type": 5}}}',
                                  b'{"edges": {}}', b'{"edges": [1, {"source": 2}]}', b'{"id": 5, "extra": 1}',
                                  b'{"nodes": {"a": {"type": "add", "id": "b"}}}'])
def test_garbage_is_reported_not_raised(host: Any, body: bytes) -> None:
    result = validate_graph(host.registry, body)
    assert not result.valid and result.errors
