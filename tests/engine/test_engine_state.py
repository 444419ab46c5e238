"""``GraphExecutionState`` step by step: iteration paths, collect order, idempotent completion, errors.

These drive the state directly (``next()`` / ``complete()``) so every rule of the module is pinned by an
exact expectation, not only by a run that happens to finish.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from conftest import edge, plugins_for_engine_tests
from invoke_sdk.testing import FakeContext

from invoke_host.config import HostConfig
from invoke_host.engine import GraphExecutionState, NodeErrorRecord, run_graph
from invoke_host.graph import parse_graph
from invoke_host.host import Host, build_host


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Host:
    """One host for the module: these tests only read its registry and run graphs without its services."""
    return build_host(HostConfig(root=tmp_path_factory.mktemp("root")), plugins_for_engine_tests(), entry_points=False)


def _state(host: Any, graph: dict[str, Any]) -> GraphExecutionState:
    return GraphExecutionState(host.registry, parse_graph(host.registry, graph))


def _run(state: GraphExecutionState) -> list[str]:
    """Run every node in the state's order; the prepared ids in the order they ran."""
    ran = []
    while (node := state.next()) is not None:
        state.complete(node.id, node.invoke(FakeContext()))
        ran.append(node.id)
    return ran


def _two_iterates(node_order: list[str], edge_order: list[int]) -> dict[str, Any]:
    """Iterates ``ia`` over [1, 2] and ``ib`` over [10, 20, 30], independent, both feeding ``sum``."""
    nodes = {"ca": {"type": "integer_collection", "collection": [1, 2]},
             "cb": {"type": "integer_collection", "collection": [10, 20, 30]},
             "ia": {"type": "iterate"}, "ib": {"type": "iterate"}, "sum": {"type": "add"}, "col": {"type": "collect"}}
    edges = [edge("ca", "collection", "ia", "collection"), edge("cb", "collection", "ib", "collection"),
             edge("ia", "item", "sum", "a"), edge("ib", "item", "sum", "b"), edge("sum", "value", "col", "item")]
    return {"nodes": {n: nodes[n] for n in node_order}, "edges": [edges[i] for i in edge_order]}


ORDERS = [
    (["ca", "cb", "ia", "ib", "sum", "col"], [0, 1, 2, 3, 4]),
    (["col", "sum", "ib", "ia", "cb", "ca"], [4, 3, 2, 1, 0]),
    (["cb", "ib", "ca", "ia", "col", "sum"], [1, 3, 0, 2, 4]),
    (["sum", "ia", "col", "cb", "ca", "ib"], [3, 0, 4, 2, 1]),
]


@pytest.mark.parametrize(("node_order", "edge_order"), ORDERS)
def test_collect_order_of_two_independent_iterates_follows_the_iteration_path_only(
    host: Any, node_order: list[str], edge_order: list[int]
) -> None:
    # Equal depth: 'ia' sorts before 'ib', so it is the outer loop of every path, however the JSON is ordered;
    # the collect closes the inner loop, 'ib', once per item of 'ia'.
    result = run_graph(host, _two_iterates(node_order, edge_order))
    assert result.status == "completed"
    assert [o.collection for o in result.outputs["col"]] == [[11, 21, 31], [12, 22, 32]]  # type: ignore[attr-defined]
    assert [o.value for o in result.outputs["sum"]] == [11, 21, 31, 12, 22, 32]  # type: ignore[attr-defined]


def test_a_nested_iterate_is_the_inner_index_even_when_its_id_sorts_first(host: Any) -> None:
    # 'a_inner' iterates over a range made per item of 'z_outer', so it is deeper and its index comes second.
    graph = {"nodes": {"cz": {"type": "integer_collection", "collection": [2, 3]}, "z_outer": {"type": "iterate"},
                       "rr": {"type": "range"}, "a_inner": {"type": "iterate"}, "m": {"type": "sub"},
                       "col": {"type": "collect"}},
             "edges": [edge("cz", "collection", "z_outer", "collection"), edge("z_outer", "item", "rr", "stop"),
                       edge("rr", "collection", "a_inner", "collection"), edge("a_inner", "item", "m", "a"),
                       edge("z_outer", "item", "m", "b"), edge("m", "value", "col", "item")]}
    # z_outer 2: a_inner over [0, 1]; z_outer 3: over [0, 1, 2]; m = inner - outer, one collect per outer item.
    outputs = run_graph(host, graph).outputs["col"]
    assert [o.collection for o in outputs] == [[-2, -1], [-3, -2, -1]]  # type: ignore[attr-defined]


@pytest.mark.parametrize("first", ["x", "y"])
def test_collect_items_of_one_path_are_ordered_by_source_node_not_by_edge(host: Any, first: str) -> None:
    graph = {"nodes": {"r": {"type": "range", "stop": 3}, "it": {"type": "iterate"},
                       "x": {"type": "add", "b": 0}, "y": {"type": "add", "b": 100}, "col": {"type": "collect"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "x", "a"),
                       edge("it", "item", "y", "a")]}
    into = [edge("x", "value", "col", "item"), edge("y", "value", "col", "item")]
    graph["edges"] += into if first == "x" else into[::-1]
    # Path first (0, 1, 2), then node id: x before y at every path.
    assert run_graph(host, graph).output("col").collection == [0, 100, 1, 101, 2, 102]  # type: ignore[attr-defined]


def test_collect_items_from_nodes_outside_any_iterate_are_ordered_by_node_id(host: Any) -> None:
    graph = {"nodes": {"c": {"type": "integer", "value": 3}, "a": {"type": "integer", "value": 1},
                       "b": {"type": "integer", "value": 2}, "col": {"type": "collect"}},
             "edges": [edge(n, "value", "col", "item") for n in ("c", "b", "a")]}
    assert run_graph(host, graph).output("col").collection == [1, 2, 3]  # type: ignore[attr-defined]


def test_source_results_follow_the_iteration_path_not_the_order_instances_were_made(host: Any) -> None:
    made_in_other_order = 0
    for node_order, edge_order in ORDERS:
        state = _state(host, _two_iterates(node_order, edge_order))
        _run(state)
        made = [state.exec_nodes[i].path for i in state.source_prepared_mapping["sum"]]
        made_in_other_order += made != sorted(made)
        expected = [11, 21, 31, 12, 22, 32]
        assert [o.value for o in state.source_results("sum")] == expected  # type: ignore[attr-defined]
        by_source = state.results_by_source()
        assert [o.value for o in by_source["sum"]] == expected  # type: ignore[attr-defined]
        assert sorted(by_source) == sorted(node_order)
    assert made_in_other_order  # at least one order made the instances out of iteration order


def test_an_empty_outer_iterate_with_a_nested_one_collects_an_empty_list(host: Any) -> None:
    graph = {"nodes": {"outer_src": {"type": "integer_collection", "collection": []}, "outer": {"type": "iterate"},
                       "inner_src": {"type": "range_of_size", "start": 0}, "inner": {"type": "iterate"},
                       "m": {"type": "mul"}, "col": {"type": "collect"}},
             "edges": [edge("outer_src", "collection", "outer", "collection"),
                       edge("outer", "item", "inner_src", "size"),
                       edge("inner_src", "collection", "inner", "collection"), edge("inner", "item", "m", "a"),
                       edge("m", "value", "col", "item")]}
    state = _state(host, graph)
    assert _run(state) == ["outer_src#0", "col#0"]
    assert state.is_complete() and not state.has_error()
    assert state.source_results("col")[0].collection == []  # type: ignore[attr-defined]
    assert {s: len(ids) for s, ids in state.source_prepared_mapping.items()} == {
        "outer_src": 1, "outer": 0, "inner_src": 0, "inner": 0, "m": 0, "col": 1}


@pytest.mark.parametrize(("node", "value", "expected"), [("float", 2.5, "2.5!"), ("integer", 7, "7!")])
def test_numbers_feed_string_inputs_as_their_text(host: Any, node: str, value: Any, expected: str) -> None:
    graph = {"nodes": {"n": {"type": node, "value": value}, "j": {"type": "string_join", "string_right": "!"}},
             "edges": [edge("n", "value", "j", "string_left")]}
    assert run_graph(host, graph).output("j").value == expected  # type: ignore[attr-defined]


def test_a_string_output_feeding_a_string_input_is_passed_as_is(host: Any) -> None:
    graph = {"nodes": {"s": {"type": "string", "value": "0.50"}, "j": {"type": "string_join", "string_right": "!"}},
             "edges": [edge("s", "value", "j", "string_left")]}
    assert run_graph(host, graph).output("j").value == "0.50!"  # type: ignore[attr-defined]


def test_complete_is_idempotent(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer", "value": 2}, "b": {"type": "add", "b": 1}, "c": {"type": "add"}},
             "edges": [edge("a", "value", "b", "a"), edge("a", "value", "c", "a"), edge("b", "value", "c", "b")]}
    state = _state(host, graph)
    a = state.next()
    assert a is not None and a.id == "a#0"
    out = a.invoke(FakeContext())
    state.complete(a.id, out)
    state.complete(a.id, out)  # a repeated report (a retry, say) changes nothing
    b = state.next()
    assert b is not None and b.id == "b#0"
    state.complete(b.id, b.invoke(FakeContext()))
    state.complete(b.id, b.invoke(FakeContext()))
    c = state.next()
    assert c is not None and c.id == "c#0" and (c.a, c.b) == (2, 3)  # type: ignore[attr-defined]
    state.complete(c.id, c.invoke(FakeContext()))
    assert state.next() is None and state.is_complete()
    assert state.executed_history == ["a#0", "b#0", "c#0"]


def test_nothing_runs_after_a_node_error(host: Any) -> None:
    graph = {"nodes": {"a": {"type": "integer", "value": 1}, "b": {"type": "integer", "value": 2},
                       "c": {"type": "integer", "value": 3}}, "edges": []}
    state = _state(host, graph)
    first = state.next()
    assert first is not None
    assert not state.is_complete()
    state.set_node_error(NodeErrorRecord(node_id=first.id, source_node_id=first.id.split("#")[0],
                                         error_type="RuntimeError", message="boom", traceback=""))
    assert state.has_error() and state.is_complete()
    assert state.next() is None  # two nodes were still ready: none is handed out
    assert state.errors_by_source() == {first.id.split("#")[0]: [state.errors[first.id]]}


def test_the_deepest_ready_node_runs_first_and_ties_go_to_the_lowest_path(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range", "stop": 3}, "it": {"type": "iterate"}, "a": {"type": "add"},
                       "b": {"type": "add"}, "solo": {"type": "integer"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "a", "a"),
                       edge("a", "value", "b", "a")]}
    state = _state(host, graph)
    ran = _run(state)
    # 'solo' and 'r' are both roots (depth 0); after r, the iterate branches run to their leaf one by one.
    assert ran.index("r#0") < ran.index("it#0")
    branch = [i for i in ran if i.split("#")[0] in ("it", "a", "b")]
    assert branch == ["it#0", "a#0", "b#0", "it#1", "a#1", "b#1", "it#2", "a#2", "b#2"]
    assert [state.exec_nodes[i].path for i in branch] == [(0,), (0,), (0,), (1,), (1,), (1,), (2,), (2,), (2,)]


def test_an_invalid_value_from_an_edge_names_that_input(host: Any) -> None:
    from invoke_host.engine.errors import NodeInputError

    graph = {"nodes": {"z": {"type": "integer", "value": 0}, "s": {"type": "t_size", "height": 4}},
             "edges": [edge("z", "value", "s", "width")]}
    state = _state(host, graph)
    z = state.next()
    assert z is not None
    state.complete(z.id, z.invoke(FakeContext()))
    with pytest.raises(NodeInputError) as caught:
        state.next()
    assert (caught.value.node_id, caught.value.source_node_id, caught.value.field) == ("s#0", "s", "width")


def test_a_state_rebuilt_at_every_step_runs_the_same_nodes_in_the_same_order(host: Any) -> None:
    graph = _two_iterates(["ca", "cb", "ia", "ib", "sum", "col"], [0, 1, 2, 3, 4])
    reference = _state(host, graph)
    expected = _run(reference)
    state = _state(host, graph)
    ran = []
    for _ in itertools.count():
        state = GraphExecutionState.from_dict(host.registry, json.loads(json.dumps(state.to_dict())))
        node = state.next()
        if node is None:
            break
        state.complete(node.id, node.invoke(FakeContext()))
        ran.append(node.id)
    assert ran == expected
    assert state.to_dict()["results"] == reference.to_dict()["results"]
    assert [o.collection for o in state.source_results("col")] == [[11, 21, 31], [12, 22, 32]]  # type: ignore[attr-defined]


def test_a_node_fed_by_an_iterate_and_by_a_node_under_it_gets_one_instance_per_item(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range", "stop": 3}, "it": {"type": "iterate"}, "a": {"type": "add", "b": 10},
                       "c": {"type": "add"}, "col": {"type": "collect"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "a", "a"),
                       edge("it", "item", "c", "a"), edge("a", "value", "c", "b"), edge("c", "value", "col", "item")]}
    state = _state(host, graph)
    _run(state)
    assert len(state.source_prepared_mapping["c"]) == 3  # joined on the iterate: not 3 x 3
    assert state.source_results("col")[0].collection == [10, 12, 14]  # type: ignore[attr-defined]


def test_a_node_with_three_parents_under_one_iterate_joins_them_on_it(host: Any) -> None:
    graph = {"nodes": {"items": {"type": "integer_collection", "collection": [1, 2]}, "it": {"type": "iterate"},
                       "stop": {"type": "add", "b": 10}, "step": {"type": "add", "b": 0}, "r": {"type": "range"},
                       "col": {"type": "collect"}},
             "edges": [edge("items", "collection", "it", "collection"), edge("it", "item", "stop", "a"),
                       edge("it", "item", "step", "a"), edge("it", "item", "r", "start"),
                       edge("stop", "value", "r", "stop"), edge("step", "value", "r", "step"),
                       edge("r", "collection", "col", "item")]}
    state = _state(host, graph)
    _run(state)
    assert len(state.source_prepared_mapping["r"]) == 2
    assert state.source_results("col")[0].collection == [  # type: ignore[attr-defined]
        list(range(1, 11, 1)), list(range(2, 12, 2))]


def test_an_iterate_over_a_collects_output_runs_once_the_collect_has_run(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range", "stop": 3}, "col": {"type": "collect"}, "it": {"type": "iterate"},
                       "a": {"type": "add", "b": 1}, "col2": {"type": "collect"}},
             "edges": [edge("r", "collection", "col", "collection"), edge("col", "collection", "it", "collection"),
                       edge("it", "item", "a", "a"), edge("a", "value", "col2", "item")]}
    state = _state(host, graph)
    ran = _run(state)
    assert ran.index("col#0") < ran.index("it#0")
    assert state.is_complete() and state.source_results("col2")[0].collection == [1, 2, 3]  # type: ignore[attr-defined]


@pytest.mark.parametrize("fields", [["string_1", "string_2"], ["string_2", "string_1"]])
def test_two_outputs_of_one_node_are_collected_in_field_order(host: Any, fields: list[str]) -> None:
    graph = {"nodes": {"s": {"type": "string_split", "string": "b,a", "delimiter": ","}, "col": {"type": "collect"}},
             "edges": [edge("s", f, "col", "item") for f in fields]}
    assert run_graph(host, graph).output("col").collection == ["b", "a"]  # type: ignore[attr-defined]


def test_a_bad_item_of_a_list_from_an_edge_names_the_list_input(host: Any) -> None:
    from invoke_host.engine.errors import NodeInputError

    graph = {"nodes": {"r": {"type": "range", "stop": 3}, "p": {"type": "t_positive_list"}},
             "edges": [edge("r", "collection", "p", "values")]}
    state = _state(host, graph)
    r = state.next()
    assert r is not None
    state.complete(r.id, r.invoke(FakeContext()))
    with pytest.raises(NodeInputError) as caught:
        state.next()
    assert caught.value.field == "values"


@pytest.mark.parametrize(("fields", "value", "field"), [
    ({"b": 5}, 5, "b"),  # an edge made 'b' invalid: the error is at 'b', which no edge feeds
    ({}, 2, "?"),  # a check of the whole node: the error has no field
])
def test_an_edge_value_that_fails_another_inputs_check_names_that_input(
    host: Any, fields: dict[str, int], value: int, field: str
) -> None:
    from invoke_host.engine.errors import NodeInputError

    graph = {"nodes": {"n": {"type": "integer", "value": value}, "p": {"type": "t_pair", **fields}},
             "edges": [edge("n", "value", "p", "a")]}
    state = _state(host, graph)
    n = state.next()
    assert n is not None
    state.complete(n.id, n.invoke(FakeContext()))
    with pytest.raises(NodeInputError) as caught:
        state.next()
    assert (caught.value.node_id, caught.value.field) == ("p#0", field)


def _random_graph(rng: random.Random) -> dict[str, Any]:
    """A small random graph: up to two iterates (maybe empty), adds wired at random, one collect."""
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    outputs: list[tuple[str, str]] = []
    for i in range(rng.randint(0, 2)):
        items = [rng.randint(0, 5) for _ in range(rng.randint(0, 3))]
        nodes[f"c{i}"] = {"type": "integer_collection", "collection": items}
        nodes[f"it{i}"] = {"type": "iterate"}
        edges.append(edge(f"c{i}", "collection", f"it{i}", "collection"))
        outputs.append((f"it{i}", "item"))
    for i in range(rng.randint(1, 6)):
        nodes[f"n{i}"] = {"type": "add"}
        for input_name in ("a", "b"):
            if outputs and rng.random() < 0.7:
                src, out = rng.choice(outputs)
                edges.append(edge(src, out, f"n{i}", input_name))
        outputs.append((f"n{i}", "value"))
    nodes["col"] = {"type": "collect"}
    for src, out in rng.sample(outputs, k=min(len(outputs), rng.randint(1, 3))):
        edges.append(edge(src, out, "col", "item"))
    return {"nodes": nodes, "edges": edges}


def _shuffled(graph: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    keys = list(graph["nodes"])
    rng.shuffle(keys)
    return {"nodes": {k: graph["nodes"][k] for k in keys}, "edges": rng.sample(graph["edges"], len(graph["edges"]))}


def test_random_graphs_give_the_same_results_however_their_json_is_ordered(host: Any) -> None:
    rng = random.Random(20261201)
    for _ in range(40):
        graph = _random_graph(rng)
        runs = []
        for variant in (graph, _shuffled(graph, rng), _shuffled(graph, rng)):
            state = _state(host, variant)
            _run(state)
            assert state.is_complete() and not state.has_error()
            by_source = state.results_by_source()
            # Sources come in an order of the graph: each after every node it takes an input from.
            order = list(by_source)
            for e in variant["edges"]:
                src, dst = e["source"]["node_id"], e["destination"]["node_id"]
                if src in by_source and dst in by_source:
                    assert order.index(src) < order.index(dst), (src, dst, order)
            runs.append({s: [o.model_dump() for o in outs] for s, outs in by_source.items()})
        assert runs[0] == runs[1] == runs[2], graph


def test_an_iterate_takes_its_collection_from_the_collection_edge_whatever_else_feeds_it(host: Any) -> None:
    # An edge into 'index' listed first, and a list under another output name: the engine still iterates
    # over the 'collection' input, and sets each instance's index itself.
    graph = {"nodes": {"n": {"type": "integer", "value": 7}, "nums": {"type": "t_numbers"},
                       "it": {"type": "iterate"}, "col": {"type": "collect"}},
             "edges": [edge("n", "value", "it", "index"), edge("nums", "numbers", "it", "collection"),
                       edge("it", "item", "col", "item")]}
    result = run_graph(host, graph)
    assert result.status == "completed"
    assert result.output("col").collection == [10, 11, 12]  # type: ignore[attr-defined]
    assert [o.index for o in result.outputs["it"]] == [0, 1, 2]  # type: ignore[attr-defined]


def test_numbers_are_turned_into_text_only_for_string_inputs(host: Any) -> None:
    graph = {"nodes": {"n": {"type": "integer", "value": 7}, "t": {"type": "t_type_of"}},
             "edges": [edge("n", "value", "t", "value")]}
    assert run_graph(host, graph).output("t").text == "int"  # type: ignore[attr-defined]


def test_a_state_keeps_the_id_it_is_given_or_makes_one(host: Any) -> None:
    graph = parse_graph(host.registry, {"nodes": {"a": {"type": "integer"}}})
    assert GraphExecutionState(host.registry, graph, id="session-1").id == "session-1"
    made = GraphExecutionState(host.registry, graph).id
    assert len(made) == 32 and int(made, 16) >= 0 and made != GraphExecutionState(host.registry, graph).id


def test_prepared_nodes_map_back_to_their_source_nodes(host: Any) -> None:
    graph = {"nodes": {"r": {"type": "range", "stop": 2}, "it": {"type": "iterate"}, "a": {"type": "add"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "a", "a")]}
    state = _state(host, graph)
    _run(state)
    assert state.prepared_source_mapping == {"r#0": "r", "it#0": "it", "it#1": "it", "a#0": "a", "a#1": "a"}


def _depths(graph: dict[str, Any]) -> dict[str, int]:
    """Longest path from a root, per source node."""
    depth = dict.fromkeys(graph["nodes"], 0)
    for _ in graph["nodes"]:
        for e in graph["edges"]:
            src, dst = e["source"]["node_id"], e["destination"]["node_id"]
            depth[dst] = max(depth[dst], depth[src] + 1)
    return depth


def _assert_prepared_eagerly(state: GraphExecutionState, graph: dict[str, Any]) -> None:
    """Every source whose parents are prepared is prepared; an iterate waits until its parents have run."""
    parents: dict[str, set[str]] = {n: set() for n in graph["nodes"]}
    for e in graph["edges"]:
        parents[e["destination"]["node_id"]].add(e["source"]["node_id"])
    prepared = state.source_prepared_mapping
    for source, of in parents.items():
        if not all(p in prepared for p in of):
            continue
        if graph["nodes"][source]["type"] == "iterate" and not all(
            i in state.executed for p in of for i in prepared[p]
        ):
            continue
        assert source in prepared, (source, sorted(prepared))


def test_random_graphs_always_run_the_deepest_ready_node_and_then_the_lowest_path(host: Any) -> None:
    rng = random.Random(7)
    for _ in range(60):
        graph = _shuffled(_random_graph(rng), rng)
        depth = _depths(graph)
        state = _state(host, graph)
        while True:
            _assert_prepared_eagerly(state, graph)
            ready = [n for n in state.exec_nodes.values() if n.id not in state.executed
                     and all(p in state.executed for p, _, _ in n.inputs)]
            node = state.next()
            if node is None:
                assert ready == []
                break
            chosen = state.exec_nodes[node.id]
            deepest = max(depth[n.source_id] for n in ready)
            assert depth[chosen.source_id] == deepest, (node.id, [n.id for n in ready])
            assert chosen.path == min(n.path for n in ready if depth[n.source_id] == deepest)
            state.complete(node.id, node.invoke(FakeContext()))
