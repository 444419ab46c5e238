"""The session processor through the real app: events over /ws, results, errors, cancel, pause and resume."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue import processor_nodes
from tests.waiting import wait_until

Message = dict[str, Any]


def make_app(root: Path, **config: Any) -> Litestar:
    return create_app(
        HostConfig(root=root, **config),
        plugins=[("core_nodes", core_nodes_plugin), ("sqlite_storage", sqlite_plugin),
                 ("core_events", core_events_plugin), ("proc_test_nodes", processor_nodes)],
        entry_points=False,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with TestClient(make_app(tmp_path)) as c:
        yield c


def subscribe(ws: WebSocketTestSession, queue_id: str = "default") -> None:
    ws.send_text(json.dumps({"subscribe": "queue", "queue_id": queue_id}))
    assert ws.receive_json()["event"] == "subscribed"


def read_until(ws: WebSocketTestSession, done: Callable[[Message], bool]) -> list[Message]:
    """Every message up to and including the first for which ``done`` is true."""
    got: list[Message] = []
    while True:
        message = ws.receive_json()
        got.append(message)
        if done(message):
            return got


def status_is(item_id: int, status: str) -> Callable[[Message], bool]:
    return lambda m: (m["event"] == "queue_item_status_changed" and m["data"]["item_id"] == item_id
                      and m["data"]["status"] == status)


def enqueue(client: TestClient[Litestar], graph: dict[str, Any], **batch: Any) -> list[int]:
    r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": graph, **batch}})
    assert r.status_code == 201, r.text
    ids: list[int] = r.json()["item_ids"]
    return ids


CHAIN = {
    "nodes": {"first": {"id": "first", "type": "add", "a": 1, "b": 2},
              "second": {"id": "second", "type": "add", "b": 10}},
    "edges": [{"source": {"node_id": "first", "field": "value"}, "destination": {"node_id": "second", "field": "a"}}],
}


def test_a_batch_runs_end_to_end_with_its_events_in_order(client: TestClient[Litestar]) -> None:
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        ids = enqueue(client, CHAIN, data=[[{"node_path": "first", "field_name": "a", "items": [1, 5]}]])
        messages = read_until(ws, status_is(ids[1], "completed"))
    seen = [(m["event"], m["data"].get("item_id"), m["data"].get("invocation_source_id"), m["data"].get("status"))
            for m in messages]
    assert seen == [
        ("batch_enqueued", None, None, None),
        ("queue_item_status_changed", ids[0], None, "in_progress"),
        ("invocation_started", ids[0], "first", None),
        ("invocation_complete", ids[0], "first", None),
        ("invocation_started", ids[0], "second", None),
        ("invocation_complete", ids[0], "second", None),
        ("queue_item_status_changed", ids[0], None, "completed"),
        ("queue_item_status_changed", ids[1], None, "in_progress"),
        ("invocation_started", ids[1], "first", None),
        ("invocation_complete", ids[1], "first", None),
        ("invocation_started", ids[1], "second", None),
        ("invocation_complete", ids[1], "second", None),
        ("queue_item_status_changed", ids[1], None, "completed"),
    ]
    completes = [m["data"] for m in messages if m["event"] == "invocation_complete"]
    assert [c["result"]["value"] for c in completes] == [3, 13, 7, 17]
    # The node is published with its direct inputs (batch data included); an input fed by an edge is left out:
    # it is the earlier node's result, already in that node's complete event.
    assert completes[0]["invocation"]["a"] == 1 and completes[0]["invocation"]["b"] == 2
    assert completes[1]["invocation"]["b"] == 10 and completes[1]["invocation_type"] == "add"
    assert "a" not in completes[1]["invocation"]

    item = client.get(f"/api/v1/queue/default/i/{ids[1]}").json()
    assert item["status"] == "completed" and item["error_type"] is None
    assert item["results"] == {"count": 2, "by_node": {"first": 1, "second": 1}} and item["errors"] == []
    # As enqueued: results are asked for separately.
    assert set(item["session"]) == {"id", "batch_id", "graph", "validated_with"}
    whole = client.get(f"/api/v1/queue/default/i/{ids[1]}?include=session").json()
    assert {k: v for k, v in whole.items() if k != "session"} == {k: v for k, v in item.items() if k != "session"}
    session = whole["session"]
    assert session["batch_id"] == item["batch_id"] and session["id"] == item["session_id"]
    assert session["graph"] == item["session"]["graph"] and session["graph"]["nodes"]["first"]["a"] == 5
    outputs = {source: [session["results"][i]["value"] for i in prepared]
               for source, prepared in session["source_results"].items()}
    assert outputs == {"first": [7], "second": [17]}
    assert session["executed_history"] == ["first#0", "second#0"]
    assert session["errors"] == {} and session["source_errors"] == {}
    status = client.get("/api/v1/queue/default/status").json()
    assert status["queue"]["completed"] == 2 and status["queue"]["item_id"] is None
    assert status["processor"] == {"is_started": True, "is_processing": False}


def test_an_iterate_session_keeps_every_result_per_source_node(client: TestClient[Litestar]) -> None:
    graph = {
        "nodes": {"range": {"id": "range", "type": "range", "start": 0, "stop": 4, "step": 1},
                  "it": {"id": "it", "type": "iterate"},
                  "add": {"id": "add", "type": "add", "b": 100}},
        "edges": [{"source": {"node_id": "range", "field": "collection"},
                   "destination": {"node_id": "it", "field": "collection"}},
                  {"source": {"node_id": "it", "field": "item"}, "destination": {"node_id": "add", "field": "a"}}],
    }
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        [item_id] = enqueue(client, graph)
        read_until(ws, status_is(item_id, "completed"))
    item = client.get(f"/api/v1/queue/default/i/{item_id}").json()
    assert item["results"] == {"count": 9, "by_node": {"range": 1, "it": 4, "add": 4}}
    page = client.get(f"/api/v1/queue/default/i/{item_id}/results", params={"node_id": "add"}).json()
    assert [r["output"]["value"] for r in page["items"]] == [100, 101, 102, 103]
    assert [r["path"] for r in page["items"]] == [[0], [1], [2], [3]]
    assert {r["source_node_id"] for r in page["items"]} == {"add"} and page["has_more"] is False
    its = client.get(f"/api/v1/queue/default/i/{item_id}/results", params={"node_id": "it"}).json()["items"]
    assert [r["output"]["item"] for r in its] == [0, 1, 2, 3]


def test_a_failing_node_fails_the_item_with_its_error(client: TestClient[Litestar]) -> None:
    graph = {"nodes": {"ok": {"id": "ok", "type": "add", "a": 1},
                       "bad": {"id": "bad", "type": "proc_fail", "message": "the disk is on fire"}}, "edges": []}
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        [item_id] = enqueue(client, graph)
        messages = read_until(ws, status_is(item_id, "failed"))
    error_event = next(m["data"] for m in messages if m["event"] == "invocation_error")
    assert error_event["invocation_source_id"] == "bad" and error_event["error_type"] == "ValueError"
    assert error_event["error_message"] == "the disk is on fire"
    assert messages[-1]["data"]["error_type"] == "ValueError"
    item = client.get(f"/api/v1/queue/default/i/{item_id}").json()
    assert item["status"] == "failed" and item["error_type"] == "ValueError"
    assert item["error_message"] == "the disk is on fire"
    assert "raise ValueError(self.message)" in item["error_traceback"]
    [error] = item["errors"]
    assert (error["source_node_id"], error["error_type"], error["message"]) == (
        "bad", "ValueError", "the disk is on fire")
    assert "raise ValueError(self.message)" in error["traceback"] and error["field"] is None


def test_cancel_of_the_running_item_stops_it_inside_its_node_and_the_next_runs(client: TestClient[Litestar]) -> None:
    graph = {"nodes": {"wait": {"id": "wait", "type": "proc_wait"},
                       "after": {"id": "after", "type": "add", "a": 1}},
             "edges": []}
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        first, = enqueue(client, {"nodes": {"wait": graph["nodes"]["wait"]}, "edges": []})
        second, = enqueue(client, {"nodes": {"after": graph["nodes"]["after"]}, "edges": []})
        before = read_until(ws, lambda m: m["event"] == "invocation_progress")
        assert before[-1]["data"]["item_id"] == first and before[-1]["data"]["percentage"] == 0.5
        r = client.put(f"/api/v1/queue/default/i/{first}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "canceled"
        messages = read_until(ws, status_is(second, "completed"))
    # The waiting node saw the cancel and returned: no result, no error, and the next item ran.
    assert not any(m["event"] in ("invocation_complete", "invocation_error") and m["data"]["item_id"] == first
                   for m in messages)
    item = client.get(f"/api/v1/queue/default/i/{first}").json()
    assert item["status"] == "canceled"
    assert item["results"] == {"count": 0, "by_node": {}} and item["errors"] == []
    assert client.get(f"/api/v1/queue/default/i/{second}").json()["status"] == "completed"


def test_pause_stops_claiming_and_resume_continues(client: TestClient[Litestar]) -> None:
    queue = client.app.state.host.queue
    idles: list[float] = []
    wait_for_work = queue.wait_for_work

    async def counted_wait_for_work(timeout: float | None = None) -> None:
        idles.append(time.monotonic())  # the worker is about to sleep: it has decided not to claim
        await wait_for_work(timeout)

    queue.wait_for_work = counted_wait_for_work
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        assert client.put("/api/v1/queue/default/processor/pause").json()["is_started"] is False
        wait_until(lambda: len(idles) > 0, "the worker to wait for work")
        asleep = len(idles)
        [item_id] = enqueue(client, CHAIN)
        # The enqueue wakes the sleeping worker; when it next goes to sleep it has looked at the queue with
        # the item in it, and a paused worker must have left the item pending.
        wait_until(lambda: len(idles) > asleep, "the paused worker to go back to sleep after the enqueue")
        assert client.get(f"/api/v1/queue/default/i/{item_id}").json()["status"] == "pending"
        assert client.get("/api/v1/queue/default/status").json()["queue"]["pending"] == 1
        assert client.put("/api/v1/queue/default/processor/resume").json()["is_started"] is True
        messages = read_until(ws, status_is(item_id, "completed"))
    assert [m["event"] for m in messages][:2] == ["batch_enqueued", "queue_item_status_changed"]
    assert messages[1]["data"] == {**messages[1]["data"], "item_id": item_id, "status": "in_progress"}


def test_enqueue_validates_the_whole_graph(client: TestClient[Litestar]) -> None:
    bad_edge = {
        "nodes": {"a": {"id": "a", "type": "add"}, "b": {"id": "b", "type": "add"}},
        "edges": [{"source": {"node_id": "a", "field": "nope"}, "destination": {"node_id": "b", "field": "a"}}],
    }
    r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": bad_edge}})
    assert r.status_code == 422, r.text
    errors = r.json()["extra"]["errors"]
    assert any(e["node_id"] == "a" and "nope" in e["message"] for e in errors)
    assert set(errors[0]) == {"node_id", "field", "message"}
    unknown = {"nodes": {"x": {"id": "x", "type": "no_such_node"}}, "edges": []}
    r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": unknown}})
    assert r.status_code == 422 and "no_such_node" in r.json()["detail"]
    # Nothing of a refused batch was stored; per-value checks still name the item.
    assert client.get("/api/v1/queue/default/status").json()["queue"]["total"] == 0
    r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {
        "graph": CHAIN, "data": [[{"node_path": "first", "field_name": "a", "items": [1, "x"]}]]}})
    assert r.status_code == 422 and r.json()["extra"]["errors"][0]["item_index"] == 1


def test_batch_data_may_fill_a_required_input_the_graph_leaves_out(client: TestClient[Litestar]) -> None:
    graph = {"nodes": {"r": {"id": "r", "type": "proc_required"}}, "edges": []}
    r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": graph}})
    assert r.status_code == 422 and r.json()["extra"]["errors"][0]["field"] == "value"
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        ids = enqueue(client, graph, data=[[{"node_path": "r", "field_name": "value", "items": [4, 2]}]])
        messages = read_until(ws, status_is(ids[1], "completed"))
    results = [m["data"]["result"]["value"] for m in messages if m["event"] == "invocation_complete"]
    assert results == [4, 2]
