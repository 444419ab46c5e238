"""The output cache through the real server: SQLite queue and images on a temp root, the processor, /ws.

A hit says so (``cached`` on ``invocation_complete``, counters at the status route); one cache serves every
processor of a host; a deleted image or an edited model never comes back out of the cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_image_nodes.plugin as image_nodes_plugin
import invoke_local_file_storage.plugin as file_storage_plugin
import invoke_sd_probers.plugin as probers_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import Host, build_host
from invoke_host.queue.processor import SessionProcessor
from tests.models import model_files
from tests.queue import cache_nodes
from tests.waiting import wait_until

Message = dict[str, Any]

PLUGINS = [("core_nodes", core_nodes_plugin), ("sqlite_storage", sqlite_plugin), ("core_events", core_events_plugin),
           ("image_nodes", image_nodes_plugin), ("local_file_storage", file_storage_plugin),
           ("sd_probers", probers_plugin), ("cache_nodes", cache_nodes)]

ADD = {"nodes": {"sum": {"id": "sum", "type": "add", "a": 2, "b": 3}}, "edges": []}


def _edge(src: str, src_field: str, dst: str, dst_field: str) -> dict[str, dict[str, str]]:
    return {"source": {"node_id": src, "field": src_field}, "destination": {"node_id": dst, "field": dst_field}}


# blank_image is cacheable and saves an (intermediate) image; save_image never is, and loads what it is given.
IMAGES = {
    "nodes": {"blank": {"id": "blank", "type": "blank_image", "width": 8, "height": 8, "is_intermediate": True},
              "save": {"id": "save", "type": "save_image"}},
    "edges": [_edge("blank", "image", "save", "image")],
}


def make_host(root: Path, **config: Any) -> Host:
    # These graphs' nodes (`add`, a blank image) are far quicker than what the cache keeps of outputs that name
    # nothing by default (tests/engine/test_output_cache.py has that rule): keep every output here.
    config.setdefault("output_cache_min_node_seconds", 0)
    return build_host(HostConfig(root=root, **config), PLUGINS, entry_points=False)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(host=make_host(tmp_path))) as c:
        yield c


def _host(client: TestClient[Litestar]) -> Host:
    host: Host = client.app.state.host
    return host


def subscribe(ws: WebSocketTestSession) -> None:
    ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "default"}))
    assert ws.receive_json()["event"] == "subscribed"


def run(client: TestClient[Litestar], ws: WebSocketTestSession, graph: dict[str, Any]) -> tuple[str, list[Message]]:
    """Enqueue ``graph`` once and read /ws until its item ends: its status and its ``invocation_complete`` data."""
    r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": graph}})
    assert r.status_code == 201, r.text
    [item_id] = r.json()["item_ids"]
    completes: list[Message] = []
    while True:
        message = ws.receive_json()
        data = message["data"]
        if message["event"] == "invocation_complete" and data["item_id"] == item_id:
            completes.append(data)
        if (message["event"] == "queue_item_status_changed" and data["item_id"] == item_id
                and data["status"] in {"completed", "failed", "canceled"}):
            return data["status"], completes


def by_node(completes: list[Message]) -> dict[str, Message]:
    return {c["invocation_source_id"]: c for c in completes}


def test_a_hit_says_cached_over_the_websocket_and_the_status_route_counts_it(client: TestClient[Litestar]) -> None:
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        status, first = run(client, ws, ADD)
        assert status == "completed"
        status, second = run(client, ws, ADD)
        assert status == "completed"
    assert [(c["result"]["value"], c["cached"]) for c in first] == [(5, False)]
    assert [(c["result"]["value"], c["cached"]) for c in second] == [(5, True)]
    body = client.get("/api/v1/app/invocation_cache/status").json()
    assert (body["hits"], body["misses"], body["size"], body["enabled"]) == (1, 1, 1, True)
    assert 0 < body["size_bytes"] <= body["max_bytes"] == 64 * 1024 * 1024
    cleared = client.delete("/api/v1/app/invocation_cache")
    assert cleared.status_code == 200
    assert (cleared.json()["hits"], cleared.json()["size"], cleared.json()["size_bytes"]) == (0, 0, 0)


def test_a_deleted_image_is_never_served_from_the_cache(client: TestClient[Litestar]) -> None:
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        status, first = run(client, ws, IMAGES)
        assert status == "completed"
        made = by_node(first)["blank"]["result"]["image"]["image_name"]
        status, second = run(client, ws, IMAGES)
        assert status == "completed"
        assert by_node(second)["blank"]["cached"] is True
        assert by_node(second)["blank"]["result"]["image"]["image_name"] == made

        assert client.delete(f"/api/v1/images/i/{made}").status_code == 200
        status, third = run(client, ws, IMAGES)
    # Had the cache answered, blank would name the deleted image and save_image would fail to load it.
    assert status == "completed"
    blank = by_node(third)["blank"]
    assert blank["cached"] is False
    remade = blank["result"]["image"]["image_name"]
    assert remade != made
    assert client.get(f"/api/v1/images/i/{remade}").status_code == 200
    assert client.get("/api/v1/app/invocation_cache/status").json()["invalidations"] >= 1


def _install(client: TestClient[Litestar], folder: Path) -> str:
    r = client.post("/api/v2/models/install", params={"source": str(folder), "inplace": "true"},
                    json={"name": "probe"})
    assert r.status_code == 201, r.text
    url = f"/api/v2/models/install/{r.json()['id']}"
    wait_until(lambda: client.get(url).json()["status"] in {"completed", "error"}, "the install to finish",
               timeout=60)
    job = client.get(url).json()
    assert job["status"] == "completed", job
    key: str = job["config_out"]["key"]
    return key


def test_editing_a_model_drops_it_from_the_model_cache_and_recomputes_its_outputs(
    client: TestClient[Litestar], tmp_path: Path
) -> None:
    cache_nodes.LOADER.loads.clear()
    key = _install(client, model_files.write_diffusers_main(tmp_path / "src" / "probe", "sd-1"))
    probe = {"nodes": {"p": {"id": "p", "type": "cache_model_probe", "model": {"key": key}}}, "edges": []}
    model_cache = _host(client).node_services.models.cache  # type: ignore[attr-defined]
    with client.websocket_connect("/ws") as ws:
        subscribe(ws)
        assert run(client, ws, probe)[0] == "completed"
        status, again = run(client, ws, probe)
        assert status == "completed" and by_node(again)["p"]["cached"] is True
        assert key in model_cache and cache_nodes.LOADER.loads == ["epsilon"]

        r = client.patch(f"/api/v2/models/i/{key}", json={"prediction_type": "v_prediction"})
        assert r.status_code == 200, r.text
        assert key not in model_cache, "the edit dropped the model from the model cache"
        status, edited = run(client, ws, probe)
        assert status == "completed"
        assert (by_node(edited)["p"]["cached"], by_node(edited)["p"]["result"]["prediction_type"]) == (
            False, "v_prediction")
        assert cache_nodes.LOADER.loads == ["epsilon", "v_prediction"]

        assert client.delete(f"/api/v2/models/i/{key}").status_code == 200
        status, _ = run(client, ws, probe)
    assert status == "failed", "a deleted model's output is not served from the cache"
    assert key not in model_cache


def test_the_processors_of_a_host_share_one_cache_sized_by_the_setting(tmp_path: Path) -> None:
    host = make_host(tmp_path, output_cache_max_bytes=100_000)
    assert host.output_cache.max_bytes == 100_000
    [first] = host.processors
    assert first.cache is host.output_cache
    # A second processor of the same host, as one per device would be, built the way the host builds its own.
    second = SessionProcessor(host.registry, host.queue, host.events, host.node_services,  # type: ignore[arg-type]
                              cache=host.output_cache)
    with TestClient(create_app(host=host)) as client, client.websocket_connect("/ws") as ws:
        subscribe(ws)
        status, on_first = run(client, ws, ADD)
        assert status == "completed" and on_first[0]["cached"] is False
        client.blocking_portal.call(first.stop)
        client.blocking_portal.call(second.start)
        try:
            status, on_second = run(client, ws, ADD)
        finally:
            client.blocking_portal.call(second.stop)
    assert status == "completed" and on_second[0]["cached"] is True
    assert (host.output_cache.hits, host.output_cache.misses) == (1, 1)

