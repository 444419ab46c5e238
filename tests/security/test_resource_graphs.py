"""Threat: a small request that makes the server build something huge (a list, an expansion, a session, a batch).

Every size a request drives is bounded by a setting. Where the size is written in the request, the
request is refused with a 4xx that names the setting; where it only appears while the graph runs, the
node that would pass it fails with an error naming the setting, and the stored queue item stays small.
All through a real server on 127.0.0.1, with the real SQLite queue and the first-party node plugins.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_diffusers_nodes.plugin as diffusers_nodes_plugin
import invoke_image_nodes.plugin as image_nodes_plugin
import invoke_local_file_storage.plugin as local_files_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    InputField,
    InvocationContext,
    OutputField,
    hookimpl,
    invocation,
    invocation_output,
)
from invoke_sdk.hookspecs import RegisterInvocation

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.live_server import live_server

DEFAULT_PIXELS = HostConfig.model_fields["max_image_pixels"].default

Q = "/api/v1/queue/default"


# -- a third-party pack, as a pack author would write it: it trusts nothing of the host's limits ------------------

@invocation_output("hoard_list_output")
class HoardListOutput(BaseInvocationOutput):
    collection: list[int] = OutputField()


@invocation_output("hoard_text_output")
class HoardTextOutput(BaseInvocationOutput):
    text: str = OutputField()


@invocation("hoard_list", title="Huge list")
class HoardListInvocation(BaseInvocation):
    """Returns as many integers as it is asked for, without asking the host."""

    count: int = InputField(default=1_000_000)

    def invoke(self, context: InvocationContext) -> HoardListOutput:
        return HoardListOutput(collection=list(range(self.count)))


@invocation("hoard_text", title="Huge text")
class HoardTextInvocation(BaseInvocation):
    """Returns a string of ``length`` characters; ``seed`` only makes each instance distinct."""

    length: int = InputField(default=2_000_000)
    seed: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> HoardTextOutput:
        return HoardTextOutput(text="x" * self.length)


class HoardPack:
    @hookimpl
    def register_invocations(self, register: RegisterInvocation) -> None:
        register(HoardListInvocation)
        register(HoardTextInvocation)


# -- helpers ---------------------------------------------------------------------------------------------------------

@contextmanager
def server(root: Path, **config: Any) -> Iterator[httpx.Client]:
    app = create_app(
        HostConfig(root=root, **config),
        plugins=[("core_nodes", core_nodes_plugin), ("image_nodes", image_nodes_plugin),
                 ("diffusers_nodes", diffusers_nodes_plugin), ("sqlite_storage", sqlite_plugin),
                 ("local_file_storage", local_files_plugin), ("core_events", core_events_plugin),
                 ("hoard_pack", HoardPack())],
        entry_points=False,
    )
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


def edge(src: str, src_field: str, dst: str, dst_field: str) -> dict[str, Any]:
    return {"source": {"node_id": src, "field": src_field}, "destination": {"node_id": dst, "field": dst_field}}


def enqueue(client: httpx.Client, graph: dict[str, Any], **batch: Any) -> httpx.Response:
    return client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph, **batch}})


def run_to_end(client: httpx.Client, graph: dict[str, Any]) -> httpx.Response:
    """Enqueue the graph and wait (bounded) until its item finished; the raw response of the stored item."""
    r = enqueue(client, graph)
    assert r.status_code == 201, r.text
    [item_id] = r.json()["item_ids"]
    deadline = time.monotonic() + 60
    while True:
        item = client.get(f"{Q}/i/{item_id}")
        if item.json()["status"] in ("completed", "failed", "canceled"):
            return item
        assert time.monotonic() < deadline, f"item {item_id} did not finish: {item.json()['status']}"
        time.sleep(0.02)


def names_setting(message: str, setting: str, value: int) -> bool:
    return f"{setting} (INVOKE_HOST_{setting.upper()}={value})" in message


def assert_queue_empty(client: httpx.Client) -> None:
    assert client.get(f"{Q}/status").json()["queue"]["total"] == 0


def failed_node(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [error] = item["errors"]
    return error["source_node_id"], error


# -- sizes written in the request: refused when it arrives ----------------------------------------------------------

@pytest.mark.parametrize("size", [20_000_000, 10**9])
def test_the_130_byte_range_of_size_request_is_refused_with_the_setting_named(tmp_path: Path, size: int) -> None:
    body = json.dumps({"batch": {"graph": {"nodes": {"r": {"id": "r", "type": "range_of_size", "start": 0,
                                                          "size": size, "step": 1}}, "edges": []}}}).encode()
    assert len(body) == 130 + len(str(size)) - len("20000000")  # the request of the report, and its 10^9 twin
    # The processor is off so that, without the fix, the test fails on the 201 and never runs the graph.
    with server(tmp_path, processor_enabled=False) as client:
        r = client.post(f"{Q}/enqueue_batch", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert names_setting(detail, "max_collection_size", 10_000) and str(size) in detail
        assert_queue_empty(client)

        graph = json.loads(body)["batch"]["graph"]
        checked = client.post("/api/v1/graphs/validate", json=graph)
        assert checked.status_code == 422
        [error] = checked.json()["extra"]["errors"]
        assert error["node_id"] == "r" and error["field"] == "size"
        assert names_setting(error["message"], "max_collection_size", 10_000)


def test_a_range_longer_than_the_limit_is_refused_at_enqueue(tmp_path: Path) -> None:
    with server(tmp_path, processor_enabled=False) as client:
        r = enqueue(client, {"nodes": {"r": {"type": "range", "start": 0, "stop": 10**12, "step": 1}}})
        assert r.status_code == 422 and names_setting(r.json()["detail"], "max_collection_size", 10_000), r.text
        # A range within the limit is fine, however large its numbers.
        r = enqueue(client, {"nodes": {"r": {"type": "range", "start": 0, "stop": 10**12, "step": 10**8}}})
        assert r.status_code == 201, r.text


def test_collections_and_strings_written_in_the_graph_or_batch_data_are_bounded(tmp_path: Path) -> None:
    with server(tmp_path, processor_enabled=False, max_collection_size=10, max_string_length=100) as client:
        r = enqueue(client, {"nodes": {"c": {"type": "integer_collection", "collection": list(range(11))}}})
        assert r.status_code == 422 and names_setting(r.json()["detail"], "max_collection_size", 10), r.text
        r = enqueue(client, {"nodes": {"s": {"type": "string", "value": "x" * 101}}})
        assert r.status_code == 422 and names_setting(r.json()["detail"], "max_string_length", 100), r.text
        r = enqueue(client, {"nodes": {"s": {"type": "string"}}},
                    data=[[{"node_path": "s", "field_name": "value", "items": ["ok", "y" * 101]}]])
        assert r.status_code == 413, r.text
        assert "item 1" in r.json()["detail"] and names_setting(r.json()["detail"], "max_string_length", 100)
        assert_queue_empty(client)
        # At the limit is allowed.
        r = enqueue(client, {"nodes": {"c": {"type": "integer_collection", "collection": list(range(10))},
                                       "s": {"type": "string", "value": "x" * 100}}})
        assert r.status_code == 201, r.text


def test_a_graph_with_too_many_nodes_or_edges_is_refused(tmp_path: Path) -> None:
    with server(tmp_path, processor_enabled=False, max_graph_nodes=20, max_graph_edges=30) as client:
        too_many_nodes = {"nodes": {f"n{i}": {"type": "integer"} for i in range(21)}, "edges": []}
        r = enqueue(client, too_many_nodes)
        assert r.status_code == 422 and names_setting(r.json()["detail"], "max_graph_nodes", 20), r.text
        checked = client.post("/api/v1/graphs/validate", json=too_many_nodes)
        assert checked.status_code == 422
        assert [e["field"] for e in checked.json()["extra"]["errors"]] == ["nodes"]
        assert "21" in checked.json()["extra"]["errors"][0]["message"]

        too_many_edges = {"nodes": {"a": {"type": "integer"}, "c": {"type": "collect"}},
                          "edges": [edge("a", "value", "c", "item")] * 31}
        r = enqueue(client, too_many_edges)
        assert r.status_code == 422 and names_setting(r.json()["detail"], "max_graph_edges", 30), r.text
        assert_queue_empty(client)

        r = enqueue(client, {"nodes": {f"n{i}": {"type": "integer"} for i in range(20)}, "edges": []})
        assert r.status_code == 201, r.text


def test_a_batch_whose_items_would_store_too_much_json_is_refused_before_it_expands(tmp_path: Path) -> None:
    # Each item stores its own copy of the graph: 10 kB x 1,000 runs would be 10 MB from a 10 kB request.
    graph = {"nodes": {"s": {"type": "string", "value": "x" * 10_000}}}
    with server(tmp_path, processor_enabled=False, max_batch_bytes=1_000_000) as client:
        r = enqueue(client, graph, runs=1000)
        assert r.status_code == 413, r.text
        assert names_setting(r.json()["detail"], "max_batch_bytes", 1_000_000) and "1000 queue items" in r.json()[
            "detail"]
        # Batch data count as well: one 10 kB value in every one of 200 items.
        r = enqueue(client, {"nodes": {"s": {"type": "string"}}}, runs=100,
                    data=[[{"node_path": "s", "field_name": "value", "items": ["a" * 5_000, "b" * 5_000]}]])
        assert r.status_code == 413 and names_setting(r.json()["detail"], "max_batch_bytes", 1_000_000), r.text
        assert_queue_empty(client)
        r = enqueue(client, graph, runs=50)
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(("node", "setting"), [
    ({"type": "blank_image", "width": 10_000, "height": 10_000}, "max_image_pixels"),
    ({"type": "img_resize", "image": {"image_name": "x.png"}, "width": 16_000, "height": 16_000}, "max_image_pixels"),
    ({"type": "img_crop", "image": {"image_name": "x.png"}, "width": 9_000, "height": 9_000}, "max_image_pixels"),
    ({"type": "noise", "width": 80_000, "height": 80_000}, "max_image_pixels"),
])
def test_image_and_latent_sizes_written_in_the_graph_are_bounded(
    tmp_path: Path, node: dict[str, Any], setting: str
) -> None:
    with server(tmp_path, processor_enabled=False) as client:
        r = enqueue(client, {"nodes": {"n": node}})
        assert r.status_code == 422, r.text
        assert names_setting(r.json()["detail"], setting, DEFAULT_PIXELS)
        assert f"{node['width']}x{node['height']}" in r.json()["detail"]


# -- sizes that only appear while the graph runs: that node fails, the stored item stays small ----------------------

def test_a_size_known_only_at_run_time_fails_that_node_and_the_item_stays_small(tmp_path: Path) -> None:
    graph = {"nodes": {"add": {"type": "add", "a": 10_000_000, "b": 10_000_000},
                       "r": {"type": "range_of_size"}, "it": {"type": "iterate"}, "after": {"type": "add"}},
             "edges": [edge("add", "value", "r", "size"), edge("r", "collection", "it", "collection"),
                       edge("it", "item", "after", "a")]}
    with server(tmp_path) as client:
        stored = run_to_end(client, graph)
        item = stored.json()
        results = client.get(f"{Q}/i/{item['item_id']}/results").json()["items"]
    assert item["status"] == "failed"
    assert names_setting(item["error_message"], "max_collection_size", 10_000)
    assert "20000000" in item["error_message"]
    source_id, error = failed_node(item)
    assert source_id == "r" and error["field"] == "size"
    assert [(r["source_node_id"], r["output"]["value"]) for r in results] == [("add", 20_000_000)]
    assert item["results"]["by_node"] == {"add": 1}
    assert len(stored.content) < 20_000


@pytest.mark.parametrize(("node", "setting", "limit", "field"), [
    ({"type": "hoard_list"}, "max_collection_size", 10_000, "collection"),
    ({"type": "hoard_text"}, "max_string_length", 1_000_000, "text"),
])
def test_a_third_party_node_returning_too_much_fails_with_the_setting_named(
    tmp_path: Path, node: dict[str, Any], setting: str, limit: int, field: str
) -> None:
    graph = {"nodes": {"big": node, "after": {"type": "add", "a": 1}}, "edges": []}
    with server(tmp_path) as client:
        stored = run_to_end(client, graph)
    item = stored.json()
    assert item["status"] == "failed" and item["error_type"] == "LimitExceededError"
    message = item["error_message"]
    assert names_setting(message, setting, limit) and f"output {field!r} of node 'big'" in message
    assert failed_node(item)[0] == "big"
    assert "big" not in item["results"]["by_node"]  # the output was dropped, not stored
    assert len(stored.content) < 20_000


def test_results_past_max_session_bytes_fail_the_node_that_passes_it(tmp_path: Path) -> None:
    graph = {"nodes": {"r": {"type": "range_of_size", "size": 10}, "it": {"type": "iterate"},
                       "text": {"type": "hoard_text", "length": 30_000}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "index", "text", "seed")]}
    with server(tmp_path, max_session_bytes=100_000) as client:
        stored = run_to_end(client, graph)
    item = stored.json()
    assert item["status"] == "failed" and names_setting(item["error_message"], "max_session_bytes", 100_000)
    assert failed_node(item)[0] == "text"
    assert item["results"]["by_node"]["text"] == 3  # the fourth 30 kB string would pass 100 kB
    assert len(stored.content) < 200_000


def test_an_iterate_expanding_past_max_session_nodes_fails_before_any_branch_runs(tmp_path: Path) -> None:
    graph = {"nodes": {"r": {"type": "range_of_size", "size": 60}, "it": {"type": "iterate"},
                       "add": {"type": "add", "b": 1}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "add", "a")]}
    with server(tmp_path, max_session_nodes=100) as client:
        item = run_to_end(client, graph).json()
    assert item["status"] == "failed" and names_setting(item["error_message"], "max_session_nodes", 100)
    assert "121" in item["error_message"]  # 1 range + 60 iterations + 60 adds
    assert failed_node(item)[0] == "add"
    assert set(item["results"]["by_node"]) == {"r"}


def test_nested_iterates_multiply_and_are_refused_before_the_product_is_built(tmp_path: Path) -> None:
    graph = {"nodes": {"outer_r": {"type": "range_of_size", "size": 10}, "outer": {"type": "iterate"},
                       "inner_r": {"type": "range_of_size", "size": 10}, "inner": {"type": "iterate"},
                       "add": {"type": "add"}},
             "edges": [edge("outer_r", "collection", "outer", "collection"), edge("outer", "item", "inner_r", "start"),
                       edge("inner_r", "collection", "inner", "collection"), edge("inner", "item", "add", "a")]}
    with server(tmp_path, max_session_nodes=100) as client:
        item = run_to_end(client, graph).json()
    assert item["status"] == "failed" and names_setting(item["error_message"], "max_session_nodes", 100)
    assert failed_node(item)[0] == "inner"  # 1 + 10 + 10 prepared; 10 x 10 more would make 121
    assert "inner" not in item["results"]["by_node"] and "add" not in item["results"]["by_node"]


def test_a_collect_gathering_past_max_collection_size_fails(tmp_path: Path) -> None:
    # One loop of 30, two nodes in it, both collected by one collect (it closes that loop): 2 x 30 items.
    graph = {"nodes": {"r": {"type": "range_of_size", "size": 30}, "it": {"type": "iterate"},
                       "a": {"type": "add", "b": 0}, "b": {"type": "add", "b": 1}, "col": {"type": "collect"}},
             "edges": [edge("r", "collection", "it", "collection"), edge("it", "item", "a", "a"),
                       edge("it", "item", "b", "a"), edge("a", "value", "col", "item"),
                       edge("b", "value", "col", "item")]}
    with server(tmp_path, max_collection_size=50) as client:
        item = run_to_end(client, graph).json()
    assert item["status"] == "failed" and names_setting(item["error_message"], "max_collection_size", 50)
    assert "60" in item["error_message"]  # every collection has 30 items; the collect would gather 2 x 30
    assert failed_node(item)[0] == "col"


def test_strings_growing_at_run_time_fail_the_node_that_grows_them(tmp_path: Path) -> None:
    # Each join doubles the text: 60, 120, ... 960 fit in 1,000 characters, the fifth join's 1,920 does not.
    nodes: dict[str, Any] = {"s": {"type": "string", "value": "x" * 60}}
    edges = []
    previous = "s"
    for n in range(1, 7):
        nodes[f"j{n}"] = {"type": "string_join"}
        edges += [edge(previous, "value", f"j{n}", "string_left"), edge(previous, "value", f"j{n}", "string_right")]
        previous = f"j{n}"
    with server(tmp_path, max_string_length=1000) as client:
        item = run_to_end(client, {"nodes": nodes, "edges": edges}).json()
        assert item["status"] == "failed" and names_setting(item["error_message"], "max_string_length", 1000)
        assert failed_node(item)[0] == "j5" and "1920" in item["error_message"]

        # A replacement that multiplies the text stops inside the node, as soon as the text passes the limit.
        replace = {"nodes": {"r": {"type": "string_replace", "string": "a" * 100, "search_string": "a",
                                   "replace_string": "b" * 50}}, "edges": []}
        item = run_to_end(client, replace).json()
        assert item["status"] == "failed" and item["error_type"] == "LimitExceededError"
        assert names_setting(item["error_message"], "max_string_length", 1000)


def test_an_image_size_known_only_at_run_time_fails_that_node(tmp_path: Path) -> None:
    # Each side is within the node's own bound of 16,384; together they are 100 megapixels.
    graph = {"nodes": {"w": {"type": "add", "a": 9_000, "b": 1_000}, "img": {"type": "blank_image", "height": 10_000}},
             "edges": [edge("w", "value", "img", "width")]}
    with server(tmp_path) as client:
        item = run_to_end(client, graph).json()
        images = client.get("/api/v1/images/").json()
    assert item["status"] == "failed" and names_setting(item["error_message"], "max_image_pixels", DEFAULT_PIXELS)
    assert failed_node(item)[0] == "img" and "10000x10000" in item["error_message"]
    assert images["total"] == 0
