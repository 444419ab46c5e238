"""The item view through a real server: counts in the item, results paged per node, the whole session on request,
rows stored while the item runs, and a retried item resuming from its stored rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_sqlite_storage.session_rows import path_key

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue import processor_nodes
from tests.queue.live_server import live_server
from tests.waiting import wait_until

Q = "/api/v1/queue/default"
ITEMS = 250


def _edge(a: str, fa: str, b: str, fb: str) -> dict[str, Any]:
    return {"source": {"node_id": a, "field": fa}, "destination": {"node_id": b, "field": fb}}


ITERATE = {"nodes": {"range": {"id": "range", "type": "range", "start": 0, "stop": ITEMS, "step": 1},
                     "it": {"id": "it", "type": "iterate"}, "add": {"id": "add", "type": "add", "b": 1000}},
           "edges": [_edge("range", "collection", "it", "collection"), _edge("it", "item", "add", "a")]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[httpx.Client]:
    with serve(tmp_path) as client:
        yield client


@contextmanager
def serve(root: Path, **config: Any) -> Iterator[httpx.Client]:
    app = create_app(HostConfig(root=root, **config),
                     plugins=[("core_nodes", core_nodes_plugin), ("sqlite_storage", sqlite_plugin),
                              ("proc_test_nodes", processor_nodes)],
                     entry_points=False)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _run(client: httpx.Client, graph: dict[str, Any], status: str = "completed") -> int:
    r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph}})
    assert r.status_code == 201, r.text
    [item_id] = r.json()["item_ids"]
    wait_until(lambda: client.get(f"{Q}/i/{item_id}").json()["status"] == status, f"item {item_id} {status}",
               timeout=60)
    return item_id


def _pages(client: httpx.Client, item_id: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages = []
    cursor = None
    while True:
        r = client.get(f"{Q}/i/{item_id}/results", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page["items"])
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            return pages
        cursor = page["next_cursor"]


def test_the_item_answers_counts_and_the_results_come_page_by_page(server: httpx.Client) -> None:
    item_id = _run(server, ITERATE)
    r = server.get(f"{Q}/i/{item_id}")
    item = r.json()
    assert item["results"] == {"count": 2 * ITEMS + 1, "by_node": {"range": 1, "it": ITEMS, "add": ITEMS}}
    assert item["errors"] == [] and set(item["session"]) == {"id", "batch_id", "graph", "validated_with"}
    assert len(r.content) < 4_000  # no result is in it, however many there are

    pages = _pages(server, item_id, node_id="add", limit=100)
    assert [len(p) for p in pages] == [100, 100, 50]
    adds = [row for page in pages for row in page]
    assert [row["output"] for row in adds] == [{"type": "integer_output", "value": 1000 + i} for i in range(ITEMS)]
    assert [row["path"] for row in adds] == [[i] for i in range(ITEMS)]
    assert {row["source_node_id"] for row in adds} == {"add"} and len({row["node_id"] for row in adds}) == ITEMS

    every = [row for page in _pages(server, item_id, limit=77) for row in page]
    assert [row["seq"] for row in every] == list(range(2 * ITEMS + 1))
    assert every[0]["source_node_id"] == "range" and every[0]["output"]["collection"] == list(range(ITEMS))
    # Depth first: each iteration's add runs right after its iterate.
    assert [row["source_node_id"] for row in every[1:5]] == ["it", "add", "it", "add"]


def test_the_whole_session_only_on_request(server: httpx.Client) -> None:
    item_id = _run(server, ITERATE)
    item = server.get(f"{Q}/i/{item_id}").json()
    whole = server.get(f"{Q}/i/{item_id}", params={"include": "session"}).json()
    assert {k: v for k, v in whole.items() if k != "session"} == {k: v for k, v in item.items() if k != "session"}
    session = whole["session"]
    assert {k: session[k] for k in ("id", "batch_id", "graph", "validated_with")} == item["session"]
    assert len(session["executed_history"]) == len(session["results"]) == 2 * ITEMS + 1
    assert [session["results"][i]["value"] for i in session["source_results"]["add"]] == [
        1000 + i for i in range(ITEMS)]
    assert session["executed_history"][:3] == ["range#0", session["source_results"]["it"][0],
                                               session["source_results"]["add"][0]]
    assert session["errors"] == {} and session["source_errors"] == {}


def test_bad_result_requests_get_a_4xx_that_says_why(tmp_path: Path) -> None:
    with serve(tmp_path, max_results_page_size=50) as client:
        item_id = _run(client, ITERATE)
        r = client.get(f"{Q}/i/{item_id}/results", params={"limit": 51})
        assert r.status_code == 422
        assert "max_results_page_size (INVOKE_HOST_MAX_RESULTS_PAGE_SIZE=50)" in r.json()["detail"]
        assert client.get(f"{Q}/i/{item_id}/results", params={"limit": 50}).status_code == 200
        assert client.get(f"{Q}/i/{item_id}/results", params={"limit": 0}).status_code == 400
        r = client.get(f"{Q}/i/{item_id}/results", params={"cursor": "page-two"})  # not a cursor's shape
        assert r.status_code == 400 and [e["key"] for e in r.json()["extra"]] == ["cursor"], r.text
        r = client.get(f"{Q}/i/{item_id}/results", params={"cursor": "9" * 19})  # its shape, out of range
        assert r.status_code == 422 and "not one this server gave out" in r.json()["detail"], r.text
        r = client.get(f"{Q}/i/{item_id}/results", params={"node_id": "nope"})
        assert r.status_code == 404 and "'nope'" in r.json()["detail"]
        assert client.get(f"{Q}/i/{item_id + 1}/results").status_code == 404
        assert client.get(f"/api/v1/queue/other/i/{item_id}/results").status_code == 404
        assert client.get(f"{Q}/i/{item_id}", params={"include": "everything"}).status_code == 400
        assert client.put(f"{Q}/prune").json() == {"deleted": 1}
        assert client.get(f"{Q}/i/{item_id}/results").status_code == 404


def test_results_are_stored_while_the_item_runs(tmp_path: Path) -> None:
    # a -> b -> wait: proc_wait waits for a cancel (at most b's output, 101 s), so a and b ran before it.
    graph = {"nodes": {"a": {"id": "a", "type": "add", "a": 50, "b": 50}, "b": {"id": "b", "type": "add", "b": 1},
                       "wait": {"id": "wait", "type": "proc_wait"}},
             "edges": [_edge("a", "value", "b", "a"), _edge("b", "value", "wait", "limit_s")]}
    with serve(tmp_path, session_save_interval=0) as client:
        r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph}})
        [item_id] = r.json()["item_ids"]
        wait_until(lambda: client.get(f"{Q}/i/{item_id}").json()["results"]["count"] == 2, "two stored results")
        running = client.get(f"{Q}/i/{item_id}").json()
        assert running["status"] == "in_progress" and running["results"]["by_node"] == {"a": 1, "b": 1}
        assert client.put(f"{Q}/i/{item_id}/cancel").json()["status"] == "canceled"
        wait_until(lambda: client.get(f"{Q}/status").json()["processor"]["is_processing"] is False, "the stop")
        done = client.get(f"{Q}/i/{item_id}").json()
        assert done["status"] == "canceled" and done["results"]["by_node"] == {"a": 1, "b": 1}


def _store_rows(db: Path, item_id: int, rows: list[tuple[str, tuple[int, ...], dict[str, Any]]]) -> None:
    """Rows as an earlier run of the item (another worker, say) left them, written straight to the file."""
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO session_results (item_id, seq, node_id, source_node_id, path, output) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(item_id, seq, node_id, node_id.split("#")[0], path_key(path), json.dumps(output))
             for seq, (node_id, path, output) in enumerate(rows)])


CHAIN = {"nodes": {f"n{i}": {"id": f"n{i}", "type": "add", "b": 1} for i in range(4)},
         "edges": [_edge(f"n{i}", "value", f"n{i + 1}", "a") for i in range(3)]}


def test_a_retried_item_resumes_after_its_stored_results_and_stores_each_output_once(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        client.put(f"{Q}/processor/pause")
        [item_id] = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": CHAIN}}).json()["item_ids"]
        # The earlier run stored n0 and n1, with outputs this run would not make (n0 would be 1): had they run
        # again, n3 would end at 4.
        _store_rows(tmp_path / "databases" / "invoke.db", item_id,
                    [("n0#0", (), {"type": "integer_output", "value": 100}),
                     ("n1#0", (), {"type": "integer_output", "value": 101})])
        client.put(f"{Q}/processor/resume")
        wait_until(lambda: client.get(f"{Q}/i/{item_id}").json()["status"] == "completed", "the item to complete")
        rows = client.get(f"{Q}/i/{item_id}/results").json()["items"]
        assert [(r["seq"], r["node_id"], r["output"]["value"]) for r in rows] == [
            (0, "n0#0", 100), (1, "n1#0", 101), (2, "n2#0", 102), (3, "n3#0", 103)]


def test_stored_rows_that_do_not_fit_the_graph_fail_the_item_with_a_reason(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        client.put(f"{Q}/processor/pause")
        [item_id] = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": CHAIN}}).json()["item_ids"]
        _store_rows(tmp_path / "databases" / "invoke.db", item_id,
                    [("n2#0", (), {"type": "integer_output", "value": 1})])
        client.put(f"{Q}/processor/resume")
        wait_until(lambda: client.get(f"{Q}/i/{item_id}").json()["status"] == "failed", "the item to fail")
        item = client.get(f"{Q}/i/{item_id}").json()
        assert "stored result 0 is for node 'n2#0', which the session could not have run" in item["error_message"]
        assert item["results"]["count"] == 1  # nothing was run or added
