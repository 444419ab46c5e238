"""The queue HTTP API against a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.conftest import graph, make_app
from tests.queue.live_server import live_server
from tests.waiting import wait_until

Q = "/api/v1/queue/default"


def _enqueue(client: TestClient[Litestar], body: dict[str, Any], queue: str = Q) -> Any:
    return client.post(f"{queue}/enqueue_batch", content=json.dumps(body), headers={"content-type": "application/json"})


def test_enqueue_expands_data_and_stores_each_session(client: TestClient[Litestar]) -> None:
    data = [
        [
            {"node_path": "add", "field_name": "a", "items": [1, 2]},
            {"node_path": "add", "field_name": "b", "items": [5, 6]},
        ],
        [{"node_path": "add", "field_name": "use_cache", "items": [True, False]}],
    ]
    r = _enqueue(client, {"batch": {"graph": graph(), "data": data, "runs": 2, "origin": "test"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enqueued"] == body["requested"] == 8 and len(body["item_ids"]) == 8
    assert body["batch"]["origin"] == "test"
    first = client.get(f"{Q}/i/{body['item_ids'][0]}").json()
    assert first["status"] == "pending"
    assert first["session"]["graph"]["nodes"]["add"] == {
        "id": "add",
        "type": "test_add",
        "a": 1,
        "b": 5,
        "use_cache": True,
        "version": "1.0.0",  # graphs the server stores carry their nodes' versions
    }
    second = client.get(f"{Q}/i/{body['item_ids'][1]}").json()
    assert [(v["field_name"], v["value"]) for v in second["field_values"]] == [("a", 1), ("b", 5), ("use_cache", False)]
    status = client.get(f"{Q}/b/{body['batch']['batch_id']}/status").json()
    assert status["pending"] == status["total"] == 8


def test_bad_batches_get_4xx_with_a_message(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path, max_batch_size=10)) as client:
        r = client.post(f"{Q}/enqueue_batch", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]

        r = _enqueue(client, {"batch": {"data": []}})
        assert r.status_code == 422 and "batch.graph" in r.json()["detail"]

        r = _enqueue(
            client, {"batch": {"graph": graph(), "data": [[{"node_path": "nope", "field_name": "a", "items": [1]}]]}}
        )
        assert r.status_code == 422 and "'nope'" in r.json()["detail"]

        g = graph()
        g["nodes"]["add"]["type"] = "no_such_type"
        r = _enqueue(client, {"batch": {"graph": g, "data": [[{"node_path": "add", "field_name": "a", "items": [1]}]]}})
        assert r.status_code == 422 and "'no_such_type'" in r.json()["detail"]

        r = _enqueue(
            client, {"batch": {"graph": graph(), "data": [[{"node_path": "add", "field_name": "zzz", "items": [1]}]]}}
        )
        assert r.status_code == 422 and "'zzz'" in r.json()["detail"]

        r = _enqueue(
            client,
            {"batch": {"graph": graph(), "data": [[{"node_path": "add", "field_name": "a", "items": [1, 5000]}]]}},
        )
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert "'add'" in detail and "'a'" in detail and "item 1" in detail
        assert r.json()["extra"]["errors"][0]["field_name"] == "a"

        r = _enqueue(client, {"batch": {"graph": graph(), "runs": 11}})
        assert r.status_code == 413 and "limit of 10" in r.json()["detail"]

        r = _enqueue(client, {"batch": {"graph": graph(), "runs": 1}, "prepend": "sideways"})
        assert r.status_code == 422
        # Nothing of the refused batches was stored.
        assert client.get(f"{Q}/status").json()["queue"]["total"] == 0


def test_list_get_cancel_prune_clear_and_status(client: TestClient[Litestar]) -> None:
    b1 = _enqueue(client, {"batch": {"graph": graph(), "runs": 3}}).json()
    b2 = _enqueue(client, {"batch": {"graph": graph(), "runs": 2}, "prepend": True}).json()
    page = client.get(f"{Q}/list", params={"limit": 3}).json()
    assert [i["item_id"] for i in page["items"]] == b2["item_ids"] + b1["item_ids"][:1]
    assert page["has_more"] and page["total"] == 5
    rest = client.get(f"{Q}/list", params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert [i["item_id"] for i in rest["items"]] == b1["item_ids"][1:] and not rest["has_more"]
    by_offset = client.get(f"{Q}/list", params={"limit": 2, "offset": 1}).json()
    assert [i["item_id"] for i in by_offset["items"]] == b2["item_ids"][1:] + b1["item_ids"][:1]
    assert client.get(f"{Q}/list", params={"cursor": "bogus"}).status_code == 400
    assert client.get(f"{Q}/list", params={"limit": 0}).status_code == 400
    assert client.get(f"{Q}/list", params={"limit": 1001}).status_code == 400  # a page is at most 1,000 summaries
    assert client.get(f"{Q}/list", params={"status": "weird"}).status_code == 400

    assert client.get(f"{Q}/i/999999").status_code == 404
    assert client.get(f"/api/v1/queue/other/i/{b1['item_ids'][0]}").status_code == 404
    r = client.put(f"{Q}/i/{b1['item_ids'][0]}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    r = client.put(f"{Q}/cancel_by_batch_ids", json={"batch_ids": [b2["batch"]["batch_id"]]})
    assert r.json() == {"canceled": 2, "item_ids": b2["item_ids"]}
    assert client.put(f"{Q}/cancel_by_batch_ids", json={"batch_ids": "x"}).status_code == 400

    status = client.get(f"{Q}/status").json()
    assert status["queue"]["pending"] == 2 and status["queue"]["canceled"] == 3 and status["queue"]["item_id"] is None
    assert status["processor"] == {"is_started": True, "is_processing": False}
    assert client.put(f"{Q}/processor/pause").json()["is_started"] is False
    assert client.get(f"{Q}/status").json()["processor"]["is_started"] is False
    assert client.put(f"{Q}/processor/resume").json()["is_started"] is True

    assert client.put(f"{Q}/cancel_all_except_current").json()["canceled"] == 2
    assert client.put(f"{Q}/prune").json() == {"deleted": 5}
    assert client.get(f"{Q}/b/{b1['batch']['batch_id']}/status").status_code == 404
    _enqueue(client, {"batch": {"graph": graph(), "runs": 2}})
    assert client.put(f"{Q}/clear").json() == {"deleted": 2}
    assert client.get(f"{Q}/status").json()["queue"]["total"] == 0


def test_without_a_storage_backend_the_queue_answers_503(tmp_path: Path) -> None:
    with TestClient(create_app(HostConfig(root=tmp_path), entry_points=False)) as client:
        r = client.get(f"{Q}/status")
        assert r.status_code == 503 and "invoke-sqlite-storage" in r.json()["detail"]
        assert client.get("/api/v1/app/version").status_code == 200


def test_an_item_whose_worker_stopped_is_reclaimed_after_its_lease_not_failed_at_start(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_attempts=1)  # should this node reclaim them first, it fails them just the same
    with TestClient(app) as client:
        ids = _enqueue(client, {"batch": {"graph": graph(), "runs": 3}}).json()["item_ids"]
        store = app.state.host.queue.store
        for _ in ids[:2]:  # claimed by a worker that then died: it never renews these short leases
            client.blocking_portal.call(lambda: store.claim_next(worker_id="gone", lease_seconds=0.5))
    # A node starting (an API node here) fails nothing; the expired leases are reclaimed: the first attempt of
    # each goes back to pending, and with max_attempts=1 the item is failed with a reason naming the setting.
    with TestClient(make_app(tmp_path, lease_seconds=0.5, max_attempts=1)) as client:
        def reclaimed() -> bool:
            return all(client.get(f"{Q}/i/{i}").json()["status"] == "failed" for i in ids[:2])

        wait_until(reclaimed, "the expired leases to be reclaimed")
        first = client.get(f"{Q}/i/{ids[0]}").json()
        assert (first["error_type"], first["worker_id"], first["attempts"]) == ("LeaseExpiredError", "gone", 1)
        assert "INVOKE_HOST_MAX_ATTEMPTS=1" in first["error_message"]
        assert client.get(f"{Q}/i/{ids[2]}").json()["status"] == "pending"


async def test_200_concurrent_enqueues_store_every_item_once_in_order(tmp_path: Path) -> None:
    with live_server(make_app(tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def one(n: int) -> dict[str, Any]:
                body = {
                    "batch": {
                        "graph": graph(),
                        "data": [[{"node_path": "add", "field_name": "b", "items": [n * 10 + k for k in range(3)]}]],
                    }
                }
                r = await client.post(f"{Q}/enqueue_batch", content=json.dumps(body))
                assert r.status_code == 201, r.text
                return dict(r.json())

            results = await asyncio.gather(*(one(n) for n in range(200)))
            items = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                page = (await client.get(f"{Q}/list", params=params)).json()
                items += page["items"]
                cursor = page["next_cursor"]
                if not page["has_more"]:
                    break
    ids = [i["item_id"] for i in items]
    assert len(ids) == len(set(ids)) == 600
    by_batch: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_batch.setdefault(item["batch_id"], []).append(item)
    for n, result in enumerate(results):
        stored = by_batch[result["batch"]["batch_id"]]
        assert [i["item_id"] for i in stored] == result["item_ids"]
        assert [i["field_values"][0]["value"] for i in stored] == [n * 10 + k for k in range(3)]


def test_item_ids_beyond_the_database_range_are_not_found(client: TestClient[Litestar]) -> None:
    # Found by schemathesis: an id past 2**63 overflowed SQLite's integer and answered 500.
    for path in ("/api/v1/queue/q/i/450619682367417417569597755685339136", "/api/v1/queue/q/i/0"):
        response = client.get(path)
        assert response.status_code == 404, response.text
        assert "has no item" in response.json()["detail"]
    cancel = client.put("/api/v1/queue/q/i/279392699108678116048896/cancel")
    assert cancel.status_code == 404


def test_offsets_and_cursors_beyond_the_database_range_are_refused_with_400(client: TestClient[Litestar]) -> None:
    huge = "99999999999999999999999"
    for query in (f"offset={huge}", f"cursor=1:{huge}", f"cursor={huge}:1"):
        response = client.get(f"/api/v1/queue/q/list?{query}")
        assert response.status_code == 400, (query, response.text)
    assert client.get(f"/api/v1/images/?offset={huge}").status_code == 400
