"""One composition root, three shapes of node: all-in-one, API only, worker only."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import invoke_core_events.plugin
import invoke_core_nodes.plugin
import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sqlite_storage.plugin
import pytest
from invoke_sdk.session_queue import NodeFieldValue, QueueItem
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.engine import NodeServices, run_graph_async
from invoke_host.events import EventBus
from invoke_host.host import Host, HostStartupError, NodeShape, build_host
from invoke_host.images import ImagesService
from invoke_host.loop_bridge import LoopBridge
from invoke_host.models.manager import ModelManager
from invoke_host.queue import Batch, QueueService
from invoke_host.queue.batch import prepare_items
from invoke_host.queue.model_affinity import main_model_key
from invoke_host.queue.processor import SessionProcessor

PLUGINS = [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin, invoke_core_events.plugin,
           invoke_core_nodes.plugin, invoke_image_nodes.plugin]

ADD = {"nodes": {"add": {"id": "add", "type": "add", "a": 2, "b": 3}}, "edges": []}
# A saved image: the node reaches the images service on the host loop from its worker thread.
SAVE = {
    "nodes": {
        "blank": {"id": "blank", "type": "blank_image", "width": 8, "height": 4, "is_intermediate": True},
        "save": {"id": "save", "type": "save_image"},
    },
    "edges": [{"source": {"node_id": "blank", "field": "image"}, "destination": {"node_id": "save", "field": "image"}}],
}


def _host(root: Path, shape: NodeShape | None = None, **config: Any) -> Host:
    return build_host(HostConfig(root=root, **config), PLUGINS, entry_points=False, shape=shape)


def test_all_in_one_builds_every_part_in_start_order_and_one_processor(tmp_path: Path) -> None:
    host = _host(tmp_path)
    assert host.shape is NodeShape.ALL_IN_ONE
    assert [type(s) for s in host.services[:2]] == [LoopBridge, EventBus]
    assert host.services[2] is host.storage
    assert [type(s) for s in host.services[3:]] == [QueueService, ImagesService, ModelManager, SessionProcessor]
    assert host.services[-1:] == host.processors
    [processor] = host.processors
    # The processor runs nodes with the host's own node services, whose images are the host's images service.
    assert processor.node_services is host.node_services
    assert processor.queue is host.queue and processor.events is host.events and processor.registry is host.registry
    assert isinstance(host.node_services, NodeServices) and host.node_services.images_for_node is not None


def test_processor_enabled_off_is_the_api_shape(tmp_path: Path) -> None:
    host = _host(tmp_path, processor_enabled=False)
    assert host.shape is NodeShape.API
    assert host.processors == []
    assert not any(isinstance(s, SessionProcessor) for s in host.services)


def test_an_api_node_enqueues_and_stores_items_it_never_runs(tmp_path: Path) -> None:
    host = _host(tmp_path, shape=NodeShape.API)
    assert host.processors == [] and host.queue is not None
    with TestClient(create_app(host=host)) as client:
        response = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": ADD}})
        assert response.status_code == 201, response.text
        [item_id] = response.json()["item_ids"]
        status = client.get("/api/v1/queue/default/status").json()["queue"]
        assert (status["pending"], status["in_progress"], status["completed"]) == (1, 0, 0)
        assert client.get(f"/api/v1/queue/default/i/{item_id}").json()["status"] == "pending"


def test_a_worker_serves_no_http(tmp_path: Path) -> None:
    host = _host(tmp_path, shape=NodeShape.WORKER)
    with pytest.raises(ValueError, match="worker node serves no HTTP"):
        create_app(host=host)


async def _finished(queue: QueueService, ids: list[int], *, timeout: float = 30.0) -> list[QueueItem]:
    """The items once every one of them is completed or failed; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        items = [await queue.get(item_id) for item_id in ids]
        if all(item is not None and item.status in ("completed", "failed") for item in items):
            return [item for item in items if item is not None]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for items {ids} to finish: {items}")
        await asyncio.sleep(0.01)


async def test_a_worker_runs_an_item_enqueued_through_its_queue_service(tmp_path: Path) -> None:
    host = _host(tmp_path, shape=NodeShape.WORKER)
    assert len(host.processors) == 1 and host.queue is not None and host.images is not None
    await host.start()
    try:
        added = await host.queue.enqueue_batch("default", Batch(graph=ADD))
        saved = await host.queue.enqueue_batch("default", Batch(graph=SAVE))
        add_item, save_item = await _finished(host.queue, added.item_ids + saved.item_ids)
        assert add_item.status == "completed", add_item.error_message
        [add_result] = await host.queue.list_results(add_item.item_id, source_node_id="add", limit=10)
        assert json.loads(add_result.output_json)["value"] == 5
        assert save_item.status == "completed", save_item.error_message
        [save_result] = await host.queue.list_results(save_item.item_id, source_node_id="save", limit=10)
        record = await host.images.get(json.loads(save_result.output_json)["image"]["image_name"])
        assert (record.session_id, record.node_id) == (save_item.session_id, "save")
    finally:
        await host.stop()


def test_a_worker_without_a_storage_backend_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(HostStartupError, match=r"worker node runs queue items.*INVOKE_HOST_STORAGE_BACKEND"):
        build_host(HostConfig(root=tmp_path), [invoke_core_nodes.plugin], entry_points=False, shape=NodeShape.WORKER)


def test_without_a_storage_backend_a_host_has_no_queue_images_or_processor(tmp_path: Path) -> None:
    host = build_host(HostConfig(root=tmp_path), [invoke_core_nodes.plugin], entry_points=False)
    assert (host.storage, host.queue, host.images, host.processors) == (None, None, None, [])
    assert [type(s) for s in host.services] == [LoopBridge, EventBus, ModelManager]


async def test_a_services_host_has_no_queue_runs_graphs_itself_and_repairs_nothing_at_start(tmp_path: Path) -> None:
    # What a server on this root may have in flight: an install's job folder.
    job = tmp_path / "models" / ".tmp" / "job-1"
    job.mkdir(parents=True)
    (job / "weights.part").write_bytes(b"downloading")
    host = _host(tmp_path, shape=NodeShape.SERVICES)
    assert host.queue is None and host.processors == []
    assert not host.shape.serves_http and not host.shape.runs_items
    assert [type(s) for s in host.services[3:]] == [ImagesService, ModelManager]
    with pytest.raises(ValueError, match="services node serves no HTTP"):
        create_app(host=host)
    await host.start()
    try:
        result = await run_graph_async(host, SAVE)
        assert result.status == "completed", result.errors
        assert host.images is not None
        record = await host.images.get(result.output("save").image.image_name)  # type: ignore[attr-defined]
        assert (record.width, record.height) == (8, 4)
        assert (job / "weights.part").read_bytes() == b"downloading"
    finally:
        await host.stop()


async def test_devices_cpu_cpu_run_two_processors_each_with_its_own_model_cache(tmp_path: Path) -> None:
    import tests.queue.processor_nodes as proc_nodes

    host = build_host(HostConfig(root=tmp_path, devices="cpu,cpu", worker_name="box"), [*PLUGINS, proc_nodes],
                      entry_points=False, shape=NodeShape.WORKER)
    assert [(p.worker_id, p.device) for p in host.processors] == [("box/0", "cpu"), ("box/1", "cpu")]
    caches = [p.node_services.models.cache for p in host.processors]  # type: ignore[attr-defined]
    assert caches[0] is not caches[1] and [c.device_preference for c in caches] == ["cpu", "cpu"]
    assert host.queue is not None
    await host.start()
    try:
        folders = [tmp_path / "one", tmp_path / "two"]
        ids = []
        for folder in folders:
            folder.mkdir()
            graph = {"nodes": {"h": {"id": "h", "type": "proc_hold", "folder": str(folder)}}, "edges": []}
            ids += (await host.queue.enqueue_batch("default", Batch(graph=graph))).item_ids
        # Each processor takes one item at a time: both items hold at once only if both processors run.
        deadline = time.monotonic() + 30
        while not all(any(f.glob("started-*")) for f in folders):
            assert time.monotonic() < deadline, "the two items did not run at once"
            await asyncio.sleep(0.01)
        running = [await host.queue.get(i) for i in ids]
        assert sorted(item.worker_id for item in running if item is not None) == ["box/0", "box/1"]
        for folder in folders:
            (folder / "release").touch()
        assert [i.status for i in await _finished(host.queue, ids)] == ["completed", "completed"]
    finally:
        await host.stop()


def test_a_bad_device_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"INVOKE_HOST_DEVICES.*'gpu0' is not a device"):
        HostConfig(root=tmp_path, devices="cpu,gpu0")


def test_a_processor_claims_preferring_the_models_its_own_cache_holds(tmp_path: Path) -> None:
    host = _host(tmp_path, devices="cpu,cpu")
    first, second = host.processors
    assert first.held_models is not None and second.held_models is not None
    assert first.held_models() == set() == second.held_models()

    class Loader:
        def device_available(self, device: str) -> bool:
            return device == "cpu"

        def load(self, config: Any, submodel: str | None, *, dtype: str) -> object:
            return object()

    class Config:
        key, name = "m-held", "held"

    first.node_services.models.cache.get("m-held", "unet", Config(), Loader())  # type: ignore[attr-defined]
    assert (first.held_models(), second.held_models()) == ({"m-held"}, set())


def test_the_main_model_key_is_read_from_the_graph_and_from_batch_values() -> None:
    model = {"key": "m1", "type": "main", "base": "sd-1"}
    vae = {"key": "v1", "type": "vae", "base": "sd-1"}
    nodes = {"vae": {"id": "vae", "type": "x", "model": vae}, "m": {"id": "m", "type": "x", "model": model}}
    assert main_model_key(nodes) == "m1"
    assert main_model_key(ADD["nodes"]) is None
    other = NodeFieldValue(node_path="m", field_name="model", value={**model, "key": "m2"})
    assert main_model_key(nodes, [other]) == "m2"
    [item] = prepare_items("default", Batch(graph=ADD), build_host(HostConfig(), [invoke_core_nodes.plugin],
                                                                  entry_points=False).registry, 10)[1]
    assert item.model_key is None
