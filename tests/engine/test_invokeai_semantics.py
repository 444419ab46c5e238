"""Graphs written for InvokeAI give InvokeAI's results: a collect closes one loop, an edge wins over a value,
numbers written for text inputs are their text.

Every expectation is derived by hand from the rule in docs/engine.md ("Loops and collects"), with the
arithmetic in a comment; none is read from InvokeAI at test time. Inner loops are ``t_upto`` ranges, which may
be empty (core ``range`` refuses ``stop <= start``, as InvokeAI's does).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import engine_test_nodes
import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from conftest import edge, plugins_for_engine_tests
from invoke_sdk.testing import FakeContext
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.engine import GraphExecutionState, NodeServices, run_graph
from invoke_host.graph import load_validated_graph, parse_graph, validate_graph
from invoke_host.host import Host, build_host
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Host:
    return build_host(HostConfig(root=tmp_path_factory.mktemp("root")), plugins_for_engine_tests(), entry_points=False)


def nested(outer: list[int], collect_from: tuple[str, ...] = ("y",), nodes: dict[str, Any] | None = None,
           edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``it1`` over ``outer``; per item o, ``x = 10 * o`` and ``it2`` over ``range(o)``; per inner i, ``y = i + x``.

    With ``outer = [1, 0, 2]``: x = 10, 0, 20; y = [10], [], [20, 21] (the middle inner loop is empty).
    """
    graph_nodes = {"oc": {"type": "integer_collection", "collection": outer}, "it1": {"type": "iterate"},
                   "rr": {"type": "t_upto"}, "it2": {"type": "iterate"}, "x": {"type": "mul", "b": 10},
                   "y": {"type": "add"}, "c": {"type": "collect"}, **(nodes or {})}
    graph_edges = [edge("oc", "collection", "it1", "collection"), edge("it1", "item", "rr", "stop"),
                   edge("rr", "collection", "it2", "collection"), edge("it1", "item", "x", "a"),
                   edge("it2", "item", "y", "a"), edge("x", "value", "y", "b"),
                   *(edge(s, "value", "c", "item") for s in collect_from), *(edges or [])]
    return {"nodes": graph_nodes, "edges": graph_edges}


def collected(result_or_state: Any, source: str) -> list[tuple[tuple[int, ...], Any]]:
    """(iteration path, collection) of every instance of a source node, in iteration order."""
    state = getattr(result_or_state, "state", result_or_state)
    ids = sorted(state.source_prepared_mapping[source], key=lambda i: state.exec_nodes[i].path)
    return [(state.exec_nodes[i].path, state.results[i].collection) for i in ids]


def run(host: Host, graph: dict[str, Any]) -> Any:
    result = run_graph(host, graph)
    assert result.status == "completed", result.errors
    return result


# -- a collect closes one loop ----------------------------------------------------------------------------------


def test_a_collect_under_nested_loops_is_one_per_item_of_the_outer_loop(host: Host) -> None:
    # y closes it2 and keeps it1 open: one collect per outer item, the empty inner loop giving an empty one.
    result = run(host, nested([1, 0, 2]))
    assert collected(result, "c") == [((0,), [10]), ((1,), []), ((2,), [20, 21])]


def test_range_iterate_range_of_size_iterate_add_collect(host: Host) -> None:
    # The issue's graph: range(1, 4) -> iterate -> range_of_size(start 0, size o) -> iterate -> add(i, 100 * o).
    graph = {"nodes": {"r": {"type": "range", "start": 1, "stop": 4}, "it1": {"type": "iterate"},
                       "rs": {"type": "range_of_size", "start": 0}, "it2": {"type": "iterate"},
                       "m": {"type": "mul", "b": 100}, "add": {"type": "add"}, "c": {"type": "collect"}},
             "edges": [edge("r", "collection", "it1", "collection"), edge("it1", "item", "rs", "size"),
                       edge("rs", "collection", "it2", "collection"), edge("it1", "item", "m", "a"),
                       edge("it2", "item", "add", "a"), edge("m", "value", "add", "b"),
                       edge("add", "value", "c", "item")]}
    result = run(host, graph)
    assert collected(result, "c") == [((0,), [100]), ((1,), [200, 201]), ((2,), [300, 301, 302])]


def test_an_empty_outer_loop_gives_one_empty_collect_and_what_follows_runs_once(host: Host) -> None:
    # No outer item: the group stays at the level around the loop (no loop at all), so one collect of [];
    # what follows it runs once: t_concat([], oc = []) and a collect of that one list.
    graph = nested([], nodes={"j": {"type": "t_concat"}, "cj": {"type": "collect"}},
                   edges=[edge("c", "collection", "j", "left"), edge("oc", "collection", "j", "right"),
                          edge("j", "collection", "cj", "item")])
    result = run(host, graph)
    assert collected(result, "c") == [((), [])]
    assert collected(result, "j") == [((), [])]
    assert collected(result, "cj") == [((), [[]])]


def test_items_from_two_loop_depths_join_the_group_of_their_outer_item(host: Host) -> None:
    # x (under it1 only) closes nothing the group keeps: x_o joins the group of o, before its y (shorter path).
    result = run(host, nested([1, 0, 2], collect_from=("x", "y")))
    assert collected(result, "c") == [((0,), [10, 10]), ((1,), [0]), ((2,), [20, 20, 21])]


def test_items_one_loop_deep_are_all_gathered_by_one_collect(host: Host) -> None:
    result = run(host, nested([1, 0, 2], collect_from=("x",)))
    assert collected(result, "c") == [((), [10, 0, 20])]


def test_an_item_outside_every_loop_goes_into_every_group(host: Host) -> None:
    graph = nested([1, 0, 2], nodes={"r": {"type": "integer", "value": 7}}, edges=[edge("r", "value", "c", "item")])
    assert collected(run(host, graph), "c") == [((0,), [7, 10]), ((1,), [7]), ((2,), [7, 20, 21])]


def test_a_collect_fed_only_by_a_collection_from_inside_a_loop_is_one_per_item(host: Host) -> None:
    # A collection edge closes no loop: rr sits under it1, so the collect is per outer item, each holding rr's list.
    graph = nested([1, 0, 2], collect_from=(), edges=[edge("rr", "collection", "c", "collection")])
    assert collected(run(host, graph), "c") == [((0,), [0]), ((1,), []), ((2,), [0, 1])]


@pytest.mark.parametrize(("into", "expected"), [
    ("rr", [((0,), [0, 10]), ((1,), []), ((2,), [0, 1, 20, 21])]),  # the group's own range, then its items
    ("oc", [((0,), [1, 0, 2, 10]), ((1,), [1, 0, 2]), ((2,), [1, 0, 2, 20, 21])]),  # outside every loop: all
])
def test_a_collection_and_items_together_collection_first(host: Host, into: str, expected: list[Any]) -> None:
    graph = nested([1, 0, 2], edges=[edge(into, "collection", "c", "collection")])
    assert collected(run(host, graph), "c") == expected


def test_collect_then_iterate_then_collect_keeps_the_outer_grouping(host: Host) -> None:
    # it3 iterates each group's list (opening a loop inside it1); z = item + 100; c3 closes it3: per outer item.
    graph = nested([1, 0, 2], nodes={"it3": {"type": "iterate"}, "z": {"type": "add", "b": 100},
                                     "c3": {"type": "collect"}},
                   edges=[edge("c", "collection", "it3", "collection"), edge("it3", "item", "z", "a"),
                          edge("z", "value", "c3", "item")])
    assert collected(run(host, graph), "c3") == [((0,), [110]), ((1,), []), ((2,), [120, 121])]


def test_a_loop_over_a_group_joins_the_outer_loop_it_came_from(host: Host) -> None:
    # z = it3.item + x: it3 runs inside it1 (through c), so it meets x of the same outer item only.
    graph = nested([1, 0, 2], nodes={"it3": {"type": "iterate"}, "z": {"type": "add"}, "c3": {"type": "collect"}},
                   edges=[edge("c", "collection", "it3", "collection"), edge("it3", "item", "z", "a"),
                          edge("x", "value", "z", "b"), edge("z", "value", "c3", "item")])
    # outer 1: 10 + 10; outer 0: nothing; outer 2: 20 + 20, 21 + 20.
    assert collected(run(host, graph), "c3") == [((0,), [20]), ((1,), []), ((2,), [40, 41])]


def test_a_loop_opened_after_a_collect_is_the_innermost(host: Host) -> None:
    # z = it3.item - y joins it3 (over c's group of outer o) with y of the same o: loops it1, it2, it3, and it3,
    # the deepest, is the one c3 closes: one c3 per (o, inner item), each over the group's items minus that y.
    graph = nested([2, 3], nodes={"it3": {"type": "iterate"}, "z": {"type": "sub"}, "c3": {"type": "collect"}},
                   edges=[edge("c", "collection", "it3", "collection"), edge("it3", "item", "z", "a"),
                          edge("y", "value", "z", "b"), edge("z", "value", "c3", "item")])
    # outer 2: y = 20, 21 and c = [20, 21]; outer 3: y = 30, 31, 32 and c = [30, 31, 32].
    assert collected(run(host, graph), "c3") == [
        ((0, 0), [0, 1]), ((0, 1), [-1, 0]), ((1, 0), [0, 1, 2]), ((1, 1), [-1, 0, 1]), ((1, 2), [-2, -1, 0])]


@pytest.mark.parametrize(("kind", "expected"), [
    ("collection", [((0,), [10]), ((1,), []), ((2,), [20, 21])]),  # closes nothing: the same groups
    ("item", [((), [[10], [], [20, 21]])]),  # closes it1: one list of the groups' lists
])
def test_a_collect_fed_by_a_grouped_collect(host: Host, kind: str, expected: list[Any]) -> None:
    graph = nested([1, 0, 2], nodes={"c3": {"type": "collect"}}, edges=[edge("c", "collection", "c3", kind)])
    assert collected(run(host, graph), "c3") == expected


def test_a_grouped_collection_and_an_item_of_its_outer_loop(host: Host) -> None:
    graph = nested([1, 0, 2], nodes={"c3": {"type": "collect"}},
                   edges=[edge("c", "collection", "c3", "collection"), edge("x", "value", "c3", "item")])
    assert collected(run(host, graph), "c3") == [((0,), [10, 10]), ((1,), [0]), ((2,), [20, 21, 20])]


def test_an_iterates_item_collected_directly(host: Host) -> None:
    graph = nested([1, 0, 2], collect_from=(), edges=[edge("it2", "item", "c", "item")])
    assert collected(run(host, graph), "c") == [((0,), [0]), ((1,), []), ((2,), [0, 1])]


def _three_levels(extra_nodes: dict[str, Any] | None = None, extra_edges: list[dict[str, Any]] | None = None
                  ) -> dict[str, Any]:
    """i0 over [0, 2]; i1 over range(o); i2 over range(m, 2); s = 100 o + 10 m + n, collected by c (closes i2).

    o = 0: i1 is empty. o = 2: m = 0 gives n in [0, 1], m = 1 gives n in [1].
    """
    return {"nodes": {"oc": {"type": "integer_collection", "collection": [0, 2]}, "i0": {"type": "iterate"},
                      "r1": {"type": "t_upto"}, "i1": {"type": "iterate"}, "r2": {"type": "t_upto", "stop": 2},
                      "i2": {"type": "iterate"}, "m0": {"type": "mul", "b": 100}, "m1": {"type": "mul", "b": 10},
                      "s1": {"type": "add"}, "s": {"type": "add"}, "c": {"type": "collect"}, **(extra_nodes or {})},
            "edges": [edge("oc", "collection", "i0", "collection"), edge("i0", "item", "r1", "stop"),
                      edge("r1", "collection", "i1", "collection"), edge("i1", "item", "r2", "start"),
                      edge("r2", "collection", "i2", "collection"), edge("i0", "item", "m0", "a"),
                      edge("i1", "item", "m1", "a"), edge("m0", "value", "s1", "a"), edge("m1", "value", "s1", "b"),
                      edge("s1", "value", "s", "a"), edge("i2", "item", "s", "b"), edge("s", "value", "c", "item"),
                      *(extra_edges or [])]}


def test_three_loops_with_an_empty_middle_loop(host: Host) -> None:
    # c keeps i0 and i1 open. Under o = 0 there is no i1 item, so that group stays at i0's level: one empty c.
    # cc takes c's collections (closing nothing): the same groups. c4 takes c's lists as items (closing i1).
    graph = _three_levels({"cc": {"type": "collect"}, "c4": {"type": "collect"}},
                          [edge("c", "collection", "cc", "collection"), edge("c", "collection", "c4", "item")])
    result = run(host, graph)
    assert collected(result, "c") == [((0,), []), ((1, 0), [200, 201]), ((1, 1), [211])]
    assert collected(result, "cc") == [((0,), []), ((1, 0), [200, 201]), ((1, 1), [211])]
    assert collected(result, "c4") == [((0,), [[]]), ((1,), [[200, 201], [211]])]


def _two_loops(ca: list[int], cb: list[int], deeper_a: bool = False) -> dict[str, Any]:
    """Loops ``ia`` over ``ca`` and ``ib`` over ``cb``, independent, both feeding ``sum``, collected by ``c``."""
    nodes: dict[str, Any] = {"ca": {"type": "integer_collection", "collection": ca},
                             "cb": {"type": "integer_collection", "collection": cb},
                             "ia": {"type": "iterate"}, "ib": {"type": "iterate"}, "sum": {"type": "add"},
                             "c": {"type": "collect"}}
    edges = [edge("cb", "collection", "ib", "collection"), edge("ia", "item", "sum", "a"),
             edge("ib", "item", "sum", "b"), edge("sum", "value", "c", "item")]
    if deeper_a:  # ca passes through t_concat first, so ia is deeper than ib
        nodes["cat"] = {"type": "t_concat"}
        edges += [edge("ca", "collection", "cat", "left"), edge("cat", "collection", "ia", "collection")]
    else:
        edges.append(edge("ca", "collection", "ia", "collection"))
    return {"nodes": nodes, "edges": edges}


@pytest.mark.parametrize(("ca", "cb", "deeper_a", "expected"), [
    # Equal depth: ia (its id sorts first) is the outer loop; c closes ib, once per item of ia. (InvokeAI adds a
    # third, empty, collect for ib's third index: docs/engine.md, "matching by index".)
    ([1, 2], [10, 20, 30], False, [((0,), [11, 21, 31]), ((1,), [12, 22, 32])]),
    ([10, 20, 30], [1, 2], False, [((0,), [11, 12]), ((1,), [21, 22]), ((2,), [31, 32])]),
    # ia is deeper: ib is the outer loop whatever the ids say.
    ([1, 2], [10, 20, 30], True, [((0,), [11, 12]), ((1,), [21, 22]), ((2,), [31, 32])]),
    # The inner loop is empty: one empty collect per item of the outer loop.
    ([1, 2], [], False, [((0,), []), ((1,), [])]),
    # The outer loop is empty: one empty collect. (InvokeAI makes one per index of ib.)
    ([], [1, 2], False, [((), [])]),
])
def test_two_independent_loops_make_a_product_collected_per_item_of_the_outer(
    host: Host, ca: list[int], cb: list[int], deeper_a: bool, expected: list[Any]
) -> None:
    result = run(host, _two_loops(ca, cb, deeper_a))
    assert len(result.outputs.get("sum", [])) == len(ca) * len(cb)  # a product, not a zip
    assert collected(result, "c") == expected


def test_an_item_from_a_loop_the_collect_does_not_keep_goes_into_every_group(host: Host) -> None:
    # rr = range(o) sits under it1; ib is another loop, over [3, 4], closed by the collect: every group gets all of it
    # (InvokeAI gives each group the ib item of its own index: docs/engine.md, "matching by index").
    graph = nested([1, 2], collect_from=(), nodes={"cb": {"type": "integer_collection", "collection": [3, 4]},
                                                   "ib": {"type": "iterate"}},
                   edges=[edge("rr", "collection", "c", "collection"), edge("cb", "collection", "ib", "collection"),
                          edge("ib", "item", "c", "item")])
    assert collected(run(host, graph), "c") == [((0,), [0, 3, 4]), ((1,), [0, 1, 3, 4])]


# -- what follows a grouped collect is per group ----------------------------------------------------------------


def test_a_node_after_a_grouped_collect_runs_per_group_and_meets_values_outside_the_loop(host: Host) -> None:
    graph = nested([1, 0, 2], nodes={"j": {"type": "t_concat"}},
                   edges=[edge("c", "collection", "j", "left"), edge("oc", "collection", "j", "right")])
    assert collected(run(host, graph), "j") == [((0,), [10, 1, 0, 2]), ((1,), [1, 0, 2]), ((2,), [20, 21, 1, 0, 2])]


def test_two_grouped_collects_of_one_loop_meet_group_by_group(host: Host) -> None:
    graph = nested([1, 0, 2], nodes={"y2": {"type": "add", "b": 1}, "c2": {"type": "collect"},
                                     "j": {"type": "t_concat"}},
                   edges=[edge("y", "value", "y2", "a"), edge("y2", "value", "c2", "item"),
                          edge("c", "collection", "j", "left"), edge("c2", "collection", "j", "right")])
    assert collected(run(host, graph), "j") == [((0,), [10, 11]), ((1,), []), ((2,), [20, 21, 21, 22])]


def test_a_loop_over_a_groups_result_joined_with_the_outer_item(host: Host) -> None:
    # j = group + [] per outer item; it3 over j; k = it3.item + o; ck closes it3: per outer item.
    graph = nested([1, 0, 2], nodes={"j": {"type": "t_concat"}, "it3": {"type": "iterate"}, "k": {"type": "add"},
                                     "ck": {"type": "collect"}},
                   edges=[edge("c", "collection", "j", "left"), edge("j", "collection", "it3", "collection"),
                          edge("it3", "item", "k", "a"), edge("it1", "item", "k", "b"),
                          edge("k", "value", "ck", "item")])
    assert collected(run(host, graph), "ck") == [((0,), [11]), ((1,), []), ((2,), [22, 23])]


# -- the rule, written a second time: a slow reference run against the engine on random graphs ------------------

_VALUE = {"integer": lambda v: v["value"], "integer_collection": lambda v: list(v["collection"]),
          "add": lambda v: v["a"] + v["b"], "t_upto": lambda v: list(range(v["start"], v["stop"])),
          "t_concat": lambda v: v["left"] + v["right"]}
_DEFAULTS = {"add": {"a": 0, "b": 0}, "t_upto": {"start": 0, "stop": 0}, "t_concat": {"left": [], "right": []}}
_OUTPUT = {"integer": "value", "add": "value", "iterate": "item"}


def reference(graph: dict[str, Any]) -> dict[str, list[tuple[tuple[int, ...], Any]]]:
    """Every instance's (iteration path, value), by the rule of docs/engine.md, by brute force: each node's
    instances are the product of its parents' instances, kept where they agree on every loop they share; a
    loop missing from an instance (a group of an empty loop) agrees only with another that misses it."""
    nodes, edges = graph["nodes"], graph["edges"]
    into: dict[str, list[tuple[str, str, str]]] = {n: [] for n in nodes}
    for e in edges:
        into[e["destination"]["node_id"]].append((e["source"]["node_id"], e["source"]["field"],
                                                  e["destination"]["field"]))
    depth: dict[str, int] = {}
    while len(depth) < len(nodes):
        for n in nodes:
            if n not in depth and all(p in depth for p, _, _ in into[n]):
                depth[n] = max((depth[p] + 1 for p, _, _ in into[n]), default=0)
    rank = sorted((n for n in nodes if nodes[n]["type"] == "iterate"), key=lambda n: (depth[n], n))
    loops: dict[str, list[str]] = {}
    # An instance: (ctx: loop -> (token of the loop's item, its index) or None, value).
    inst: dict[str, list[tuple[dict[str, Any], Any]]] = {}

    def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return all(a[k] == b[k] for k in a.keys() & b.keys())

    def path(ctx: dict[str, Any]) -> tuple[int, ...]:
        return tuple(ctx[k][1] for k in rank if ctx.get(k) is not None)

    for n in sorted(nodes, key=lambda n: depth[n]):
        kind = nodes[n]["type"]
        if kind == "collect":
            open_loops: set[str] = set()
            for p, _, d in into[n]:
                open_loops.update(loops[p][:-1] if d == "item" else loops[p])
            loops[n] = [k for k in rank if k in open_loops]
            groups: list[dict[str, Any]] = [{}]
            for k in loops[n]:
                extended = []
                for g in groups:
                    found = [c[k] for c, _ in inst[k] if agree({a: c[a] for a in loops[k] if a != k}, g)]
                    extended += [{**g, k: token} for token in found] if found else [{**g, k: None}]
                groups = extended
            inst[n] = []
            for g in groups:
                gathered = [x for p, f, d in into[n] if d == "collection" for c, v in inst[p] if agree(c, g) for x in v]
                items = sorted(((path(c), p, f, v) for p, f, d in into[n] if d == "item" for c, v in inst[p]
                                if agree(c, g)), key=lambda t: t[:3])
                inst[n].append((g, gathered + [t[3] for t in items]))
            continue
        loops[n] = [k for k in rank if k == n or any(k in loops[p] for p, _, _ in into[n])]
        combos: list[tuple[dict[str, Any], dict[str, Any]]] = [({}, {})]
        for p, _, d in into[n]:
            combos = [({**c, **pc}, {**vals, d: pv}) for c, vals in combos for pc, pv in inst[p] if agree(c, pc)]
        inst[n] = []
        for c, vals in combos:
            values = {**_DEFAULTS.get(kind, {}), **{k: v for k, v in nodes[n].items() if k != "type"}, **vals}
            if kind == "iterate":
                token = json.dumps(sorted(c.items()))
                inst[n] += [({**c, n: (f"{token}/{i}", i)}, item) for i, item in enumerate(values["collection"])]
            else:
                inst[n].append((c, _VALUE[kind](values)))
    return {n: sorted(((path(c), v) for c, v in found), key=json.dumps) for n, found in inst.items()}


def random_graph(rng: random.Random) -> dict[str, Any]:
    """One or two families of one to three nested loops (each inner loop over ``range`` of an outer item, any of
    them maybe empty), adds across them, collects of items and collections, loops over collects, concatenations."""
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    ints: list[tuple[str, str]] = []
    lists: list[tuple[str, str]] = []

    def new(kind: str, **values: Any) -> str:
        node_id = f"{kind[:3]}{len(nodes)}"
        nodes[node_id] = {"type": kind, **values}
        return node_id

    def pick(sources: list[tuple[str, str]]) -> tuple[str, str]:
        return rng.choice(sources[-2:] if rng.random() < 0.6 else sources)  # mostly one of the latest

    if rng.random() < 0.5:
        ints.append((new("integer", value=rng.randint(0, 2)), "value"))
    for _ in range(rng.randint(1, 2)):
        source = (new("integer_collection", collection=[rng.randint(0, 2) for _ in range(rng.randint(0, 3))]),
                  "collection")
        lists.append(source)
        for _ in range(rng.randint(1, 3)):
            it = new("iterate")
            edges.append(edge(*source, it, "collection"))
            ints.append((it, "item"))
            source = (new("t_upto"), "collection")
            edges.append(edge(it, "item", source[0], "stop"))
            lists.append(source)
    for _ in range(rng.randint(0, 3)):
        a = new("add", b=rng.randint(0, 2))
        edges.append(edge(*pick(ints), a, "a"))
        if rng.random() < 0.5:
            edges.append(edge(*rng.choice(ints), a, "b"))  # the edge wins over b's value
        ints.append((a, "value"))
    for _ in range(rng.randint(1, 3)):
        c = new("collect")
        for src in {pick(ints) for _ in range(rng.randint(1, 2))}:
            edges.append(edge(*src, c, "item"))
        if rng.random() < 0.3:
            edges.append(edge(*pick(lists), c, "collection"))
        lists.append((c, "collection"))
        if rng.random() < 0.4:  # a loop over what was collected, meeting another value
            it = new("iterate")
            z = new("add")
            edges += [edge(c, "collection", it, "collection"), edge(it, "item", z, "a"), edge(*pick(ints), z, "b")]
            ints.append((z, "value"))
    if rng.random() < 0.4:
        t = new("t_concat")
        edges += [edge(*pick(lists), t, "left"), edge(*rng.choice(lists), t, "right")]
        c = new("collect")
        edges.append(edge(t, "collection", c, "collection"))
    return {"nodes": nodes, "edges": edges}


def test_random_graphs_give_what_the_rule_gives(host: Host) -> None:
    rng = random.Random(20261201)
    checked = 0
    while checked < 150:
        graph = random_graph(rng)
        expected = reference(graph)
        if sum(len(found) for found in expected.values()) > 300:
            continue
        result = run(host, _shuffled(graph, rng))
        state = result.state
        got = {n: sorted(((state.exec_nodes[i].path, _value(state.results[i], graph["nodes"][n]["type"]))
                          for i in ids), key=json.dumps)
               for n, ids in state.source_prepared_mapping.items()}
        assert got == expected, graph
        checked += 1


def _value(output: Any, kind: str) -> Any:
    return getattr(output, _OUTPUT.get(kind, "collection"))


# -- order, persistence, limits ----------------------------------------------------------------------------------


def _shuffled(graph: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    keys = list(graph["nodes"])
    rng.shuffle(keys)
    return {"nodes": {k: graph["nodes"][k] for k in keys}, "edges": rng.sample(graph["edges"], len(graph["edges"]))}


@pytest.mark.parametrize("seed", range(4))
def test_groups_do_not_depend_on_the_order_of_the_json(host: Host, seed: int) -> None:
    # (InvokeAI's outer loop of two independent ones follows the order of the JSON: docs/engine.md, "loop order".)
    rng = random.Random(seed)
    graph = _shuffled(_three_levels({"c4": {"type": "collect"}}, [edge("c", "collection", "c4", "item")]), rng)
    result = run(host, graph)
    assert collected(result, "c") == [((0,), []), ((1, 0), [200, 201]), ((1, 1), [211])]
    assert collected(result, "c4") == [((0,), [[]]), ((1,), [[200, 201], [211]])]
    assert collected(run(host, _shuffled(_two_loops([1, 2], [10, 20, 30]), rng)), "c") == [
        ((0,), [11, 21, 31]), ((1,), [12, 22, 32])]


def test_a_groups_collect_runs_as_soon_as_its_group_is_done(host: Host) -> None:
    state = GraphExecutionState(host.registry, parse_graph(host.registry, nested([2, 3])))
    ran = []
    while (node := state.next()) is not None:
        state.complete(node.id, node.invoke(FakeContext()))  # type: ignore[arg-type]
        ran.append(state.exec_nodes[node.id])
    first_collect = next(i for i, n in enumerate(ran) if n.source_id == "c")
    assert ran[first_collect].path == (0,)
    # The inner loop is expanded once its ranges have run; then the first group's collect runs before any y of
    # the second outer item.
    assert all(n.path[:1] != (1,) for n in ran[:first_collect] if n.source_id == "y")
    assert any(n.path[:1] == (1,) for n in ran[first_collect:] if n.source_id == "y")


def test_a_state_rebuilt_at_every_step_keeps_the_groups(host: Host) -> None:
    # The empty middle loop leaves a group without i1: its instance map must survive the JSON too.
    graph = parse_graph(host.registry, _three_levels({"c4": {"type": "collect"}},
                                                     [edge("c", "collection", "c4", "item")]))
    state = GraphExecutionState(host.registry, graph)
    while True:
        state = GraphExecutionState.from_dict(host.registry, json.loads(json.dumps(state.to_dict())))
        node = state.next()
        if node is None:
            break
        state.complete(node.id, node.invoke(FakeContext()))  # type: ignore[arg-type]
    assert state.is_complete() and not state.has_error()
    assert collected(state, "c") == [((0,), []), ((1, 0), [200, 201]), ((1, 1), [211])]
    assert collected(state, "c4") == [((0,), [[]]), ((1,), [[200, 201], [211]])]


def _limited(host: Host, **limits: int) -> NodeServices:
    return NodeServices.default(HostConfig(root=host.config.root, **limits))


def test_max_collection_size_bounds_each_group_not_all_groups_together(host: Host) -> None:
    # 4 outer items x 8 inner: 32 items in all, 8 per collect.
    graph = {"nodes": {"outer": {"type": "range_of_size", "size": 4}, "it1": {"type": "iterate"},
                       "inner": {"type": "range_of_size", "size": 8}, "it2": {"type": "iterate"},
                       "c": {"type": "collect"}},
             "edges": [edge("outer", "collection", "it1", "collection"), edge("it1", "item", "inner", "start"),
                       edge("inner", "collection", "it2", "collection"), edge("it2", "item", "c", "item")]}
    result = run_graph(host, graph, services=_limited(host, max_collection_size=8))
    assert result.status == "completed"
    assert [len(c) for _, c in collected(result, "c")] == [8, 8, 8, 8]


def test_a_group_past_max_collection_size_is_refused_before_any_collect_is_made(host: Host) -> None:
    # Two nodes of the inner loop feed one collect: each group gathers 2 x 3 items.
    graph = nested([3, 3], collect_from=("y", "y2"), nodes={"y2": {"type": "add", "b": 1}},
                   edges=[edge("y", "value", "y2", "a")])
    assert [len(c) for _, c in collected(run_graph(host, graph, services=_limited(host, max_collection_size=6)),
                                         "c")] == [6, 6]
    result = run_graph(host, graph, services=_limited(host, max_collection_size=5))
    [error] = result.errors
    assert (error.source_node_id, error.error_type) == ("c", "LimitExceededError")
    assert error.message.startswith("the number of items collect node 'c' would gather is 6, which exceeds "
                                    "max_collection_size (INVOKE_HOST_MAX_COLLECTION_SIZE=5)")
    assert result.state.source_prepared_mapping.get("c") is None


def test_collect_instances_count_against_max_session_nodes(host: Host) -> None:
    # oc, 3 it1, 3 rr, 3 x, 3 it2, 3 y (range(1) each) = 16 instances before the collect's 3.
    graph = nested([1, 1, 1])
    assert len(run_graph(host, graph, services=_limited(host, max_session_nodes=19)).outputs["c"]) == 3
    result = run_graph(host, graph, services=_limited(host, max_session_nodes=18))
    [error] = result.errors
    assert error.source_node_id == "c" and "max_session_nodes (INVOKE_HOST_MAX_SESSION_NODES=18)" in error.message


def test_items_that_go_into_every_group_count_against_max_session_nodes_before_any_is_gathered(host: Host) -> None:
    # 30 groups (one per item of ia, each with its own range) and all 30 items of the unrelated ib in each:
    # 30 x (1 + 30) = 930 gathered, from 1 + 1 + 30 + 30 + 30 = 92 instances and the 30 collects.
    graph = {"nodes": {"ca": {"type": "range_of_size", "size": 30}, "ia": {"type": "iterate"},
                       "cb": {"type": "range_of_size", "size": 30}, "ib": {"type": "iterate"},
                       "u": {"type": "t_upto", "stop": 1}, "c": {"type": "collect"}},
             "edges": [edge("ca", "collection", "ia", "collection"), edge("cb", "collection", "ib", "collection"),
                       edge("ia", "item", "u", "start"), edge("u", "collection", "c", "collection"),
                       edge("ib", "item", "c", "item")]}
    assert len(run_graph(host, graph, services=_limited(host, max_session_nodes=930)).outputs["c"]) == 30
    result = run_graph(host, graph, services=_limited(host, max_session_nodes=929))
    [error] = result.errors
    assert (error.source_node_id, error.error_type) == ("c", "LimitExceededError")
    assert error.message.startswith("the number of items the 30 instances of collect node 'c' would gather "
                                    "together is 930, which exceeds max_session_nodes")
    assert result.state.source_prepared_mapping.get("c") is None


# -- an edge wins over a value -----------------------------------------------------------------------------------


def test_an_edge_wins_over_a_value_written_for_the_same_input(host: Host) -> None:
    graph = {"nodes": {"n": {"type": "integer", "value": 3}, "s": {"type": "add", "a": 1, "b": 100}},
             "edges": [edge("n", "value", "s", "b")]}
    assert validate_graph(host.registry, graph).errors == []
    assert run(host, graph).output("s").value == 4  # type: ignore[attr-defined] # 1 + 3: the edge's, not 100


def test_an_edge_wins_over_a_value_on_a_connection_only_input(host: Host) -> None:
    graph = {"nodes": {"r": {"type": "range", "stop": 3}, "it": {"type": "iterate", "collection": [7, 8]},
                       "c": {"type": "collect"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "c", "item")]}
    assert run(host, graph).output("c").collection == [0, 1, 2]  # type: ignore[attr-defined]


# -- numbers written for text inputs -----------------------------------------------------------------------------


def test_numbers_written_for_text_inputs_are_their_text(host: Host) -> None:
    graph = {"nodes": {"j": {"type": "string_join", "string_left": 5, "string_right": 2.5},
                       "f": {"type": "float", "value": 3}}, "edges": []}
    parsed = parse_graph(host.registry, graph)
    assert parsed.to_json_dict()["nodes"]["j"] == {"type": "string_join", "string_left": "5", "string_right": "2.5"}
    result = run(host, graph)
    assert result.output("j").value == "52.5"  # type: ignore[attr-defined]
    value = result.output("f").value  # type: ignore[attr-defined]
    assert value == 3.0 and type(value) is float


def test_numbers_in_a_list_of_text_are_their_text(host: Host) -> None:
    graph = {"nodes": {"t": {"type": "t_texts", "texts": [1, "b", 2.5]}}, "edges": []}
    assert parse_graph(host.registry, graph).nodes["t"].texts == ["1", "b", "2.5"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [True, [1], {"a": 1}])
def test_only_numbers_become_text(host: Host, value: Any) -> None:
    graph = {"nodes": {"j": {"type": "string_join", "string_left": value}}, "edges": []}
    [error] = validate_graph(host.registry, graph).errors
    assert (error.node_id, error.field) == ("j", "string_left")


def test_a_number_for_text_does_not_hide_another_problem_of_the_node(host: Host) -> None:
    graph = {"nodes": {"s": {"type": "t_size", "width": 0, "height": 4}, "j": {"type": "string_join",
                                                                           "string_left": 5, "string_right": []}},
             "edges": []}
    problems = {(e.node_id, e.field) for e in validate_graph(host.registry, graph).errors}
    assert problems == {("s", "width"), ("j", "string_right")}


def test_a_queued_graph_rebuilt_by_a_worker_takes_numbers_for_text_too(host: Host) -> None:
    graph = {"nodes": {"j": {"type": "string_join", "string_left": 5}}, "edges": []}
    assert load_validated_graph(host.registry, graph).nodes["j"].string_left == "5"  # type: ignore[attr-defined]


# -- through the queue -------------------------------------------------------------------------------------------


def test_the_queue_takes_and_runs_invokeai_graphs(tmp_path: Path) -> None:
    # Each of these was refused with 422 before: a value beside an edge, a number for text. And the nested
    # collect is per outer item.
    graph = nested([1, 0, 2], nodes={"n": {"type": "integer", "value": 3}, "s": {"type": "add", "a": 1, "b": 100},
                                     "j": {"type": "string_join", "string_left": 5, "string_right": "!"}},
                   edges=[edge("n", "value", "s", "b")])
    plugins = [("core_nodes", core_nodes_plugin), ("sqlite_storage", sqlite_plugin),
               ("core_events", core_events_plugin), ("engine_test_nodes", engine_test_nodes)]
    queue = "/api/v1/queue/default"
    with TestClient(create_app(HostConfig(root=tmp_path), plugins, entry_points=False)) as client:
        response = client.post(f"{queue}/enqueue_batch", json={"batch": {"graph": graph}})
        assert response.status_code == 201, response.text
        [item_id] = response.json()["item_ids"]
        item: dict[str, Any] = {}

        def finished() -> bool:
            item.update(client.get(f"{queue}/i/{item_id}").json())
            return item["status"] in ("completed", "failed", "canceled")

        wait_until(finished, f"queue item {item_id} to finish", timeout=30)
        session = client.get(f"{queue}/i/{item_id}", params={"include": "session"}).json()["session"]
    assert item["status"] == "completed", item.get("error_message")
    results, by_source = session["results"], session["source_results"]
    assert [results[i]["collection"] for i in by_source["c"]] == [[10], [], [20, 21]]  # in iteration order
    [s_id], [j_id] = by_source["s"], by_source["j"]
    assert (results[s_id]["value"], results[j_id]["value"]) == (4, "5!")
