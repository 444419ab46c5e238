"""Batch expansion: data zipped within a group, cartesian product across groups, runs repeat."""

from __future__ import annotations

import datetime

import pytest
from pydantic import ValidationError

from invoke_host.queue.batch import Batch, batch_size, expand


def _batch(**kw: object) -> Batch:
    return Batch.model_validate({"graph": {"nodes": {}}, **kw})


def test_zip_within_product_across_runs_repeat() -> None:
    batch = _batch(
        data=[
            [
                {"node_path": "n", "field_name": "a", "items": [1, 2]},
                {"node_path": "n", "field_name": "b", "items": [10, 20]},
            ],
            [{"node_path": "m", "field_name": "c", "items": ["x", "y", "z"]}],
        ],
        runs=2,
    )
    sessions = [[(v.node_path, v.field_name, v.value) for v in values] for values in expand(batch)]
    assert batch_size(batch) == len(sessions) == 2 * 2 * 3
    assert sessions[0] == [("n", "a", 1), ("n", "b", 10), ("m", "c", "x")]
    assert sessions[1] == [("n", "a", 1), ("n", "b", 10), ("m", "c", "y")]
    assert sessions[3] == [("n", "a", 2), ("n", "b", 20), ("m", "c", "x")]
    assert sessions[6:] == sessions[:6]


def test_no_data_gives_one_session_per_run() -> None:
    batch = _batch(runs=3)
    assert batch_size(batch) == 3
    assert list(expand(batch)) == [[], [], []]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [
                [
                    {"node_path": "n", "field_name": "a", "items": [1]},
                    {"node_path": "n", "field_name": "b", "items": [1, 2]},
                ]
            ],
            "same length",
        ),
        ([[]], "empty"),
        (
            [
                [{"node_path": "n", "field_name": "a", "items": [1]}],
                [{"node_path": "n", "field_name": "a", "items": [2]}],
            ],
            "twice",
        ),
        ([[{"node_path": "n", "field_name": "a", "items": []}]], "at least 1"),
    ],
)
def test_malformed_data_is_refused_with_a_reason(data: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _batch(data=data)


def test_stored_bytes_bounds_what_the_expanded_items_store_without_expanding() -> None:
    import json

    import invoke_core_nodes.plugin

    from invoke_host.host import build_host
    from invoke_host.queue.batch import prepare_items, stored_bytes

    registry = build_host(plugins=[("core_nodes", invoke_core_nodes.plugin)], entry_points=False).registry
    batch = Batch.model_validate({
        "graph": {"nodes": {"s": {"type": "string", "value": "base"}, "n": {"type": "add", "a": 1}}},
        "data": [[{"node_path": "s", "field_name": "value", "items": ["x" * 300, "y", "z" * 40]},
                  {"node_path": "n", "field_name": "b", "items": [1, 22, 333]}],
                 [{"node_path": "n", "field_name": "a", "items": [5, 6]}]],
        "runs": 4,
    })
    _, items = prepare_items("q", batch, registry, max_batch_size=1000)
    actual = sum(len(i.session_json) + len(json.dumps([v.model_dump(mode="json") for v in i.field_values or []]))
                 for i in items)
    assert len(items) == 24
    assert actual <= stored_bytes(batch) <= actual * 1.25


def test_sessions_of_a_batch_without_data_share_one_encoding_of_the_graph() -> None:
    import json

    import invoke_core_nodes.plugin

    from invoke_host.graph import registry_fingerprint
    from invoke_host.graph.migration import stamp_versions
    from invoke_host.host import build_host
    from invoke_host.queue.batch import prepare_batch

    registry = build_host(plugins=[("core_nodes", invoke_core_nodes.plugin)], entry_points=False).registry
    graph = {"id": "g", "nodes": {"s": {"type": "string", "value": "\u00e9\"\n"}, "n": {"type": "add", "a": 1}},
             "edges": []}
    stored_graph = stamp_versions(registry, graph)  # every stored node carries its version
    workflow = json.dumps({"name": "w\u00e9", "nodes": []})
    for extra in ({}, {"workflow": workflow}):
        batch = Batch.model_validate({"batch_id": "b\"1", "graph": graph, "runs": 3, **extra})
        prepared = prepare_batch("q", batch, registry, max_batch_size=10)
        assert len({i.session_id for i in prepared.items}) == 3
        assert prepared.graph_sessions == [prepared.items[0].session_id]  # node objects are never shared
        for item in prepared.items:
            # Byte for byte what encoding the whole session gives: the stored text does not depend on the shortcut.
            session = {"id": item.session_id, "batch_id": 'b"1', "graph": stored_graph,
                       "validated_with": registry_fingerprint(registry), **extra}
            assert item.session_json == json.dumps(session, separators=(",", ":"))


@pytest.mark.parametrize(
    "graph",
    [
        {"nodes": {"n": {"type": "float", "value": 1e16, "small": 1e-7, "neg": -0.0, "flag": True, "none": None}}},
        {"nodes": {"n": {"value": float("nan")}}, "edges": [float("inf"), -float("inf")]},  # NaN / Infinity kept
        {"nodes": {"\u00e9": {"prompt": "\u00fc \U0001f600 \u2028 \x00 \x7f \"\\"}}},  # escaped as json.dumps does
        {"nodes": {"n": {"pair": (1, 2), "big": 2**70, "lone": "\ud800"}}},
        {"nodes": {1: {"type": "add"}, 1e16: {"type": "add"}}},  # keys json.dumps writes as text (1e+16)
        {"nodes": {"n": {"value": None, "text": "nullable", "pair": (None, 1.5)}}},  # null: read back to compare
    ],
)
def test_the_stored_graph_reads_back_as_json_dumps_would_have_stored_it(graph: dict[str, object]) -> None:
    import json
    import math

    from invoke_host.queue.batch import graph_json

    text = graph_json(graph)  # type: ignore[arg-type]
    assert text.isascii()  # the item's size in bytes is its length (_SharedSession.item_bytes)
    expected = json.dumps(graph, separators=(",", ":"))

    def same(a: object, b: object) -> bool:  # equality where NaN equals NaN
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
            return math.isnan(b)
        if isinstance(a, dict) and isinstance(b, dict):
            return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return type(a) is type(b) and a == b

    assert same(json.loads(text), json.loads(expected))


@pytest.mark.parametrize("value", [{1, 2}, datetime.date(2026, 12, 6), b"bytes"])
def test_a_graph_json_dumps_refuses_is_refused_alike(value: object) -> None:
    import json

    from invoke_host.queue.batch import graph_json

    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        graph_json({"nodes": {"n": {"value": value}}})
