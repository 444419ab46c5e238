"""Every ControlNet / adapter / preprocessor node through the queue API: models installed over HTTP, the control
image uploaded, one batch enqueued, its events read from /ws, the decoded image fetched back."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import invoke_core_events.plugin
import invoke_core_nodes.plugin
import invoke_diffusers_nodes.plugin
import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sd_probers.plugin
import invoke_sqlite_storage.plugin
import pytest
from conftest import TinyModels
from control_fixtures import ControlFiles
from gen_graphs import edge, txt2latents_graph
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from tests.waiting import wait_until

Message = dict[str, Any]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    config = HostConfig(root=tmp_path / "root", device="cpu", precision="float32", ram_cache_gb=2, vram_cache_gb=2)
    plugins = [invoke_core_nodes.plugin, invoke_core_events.plugin, invoke_sd_probers.plugin,
               invoke_sqlite_storage.plugin, invoke_diffusers_nodes.plugin, invoke_image_nodes.plugin,
               invoke_local_file_storage.plugin]
    with TestClient(create_app(host=build_host(config, plugins, entry_points=False))) as c:
        yield c


def install(client: TestClient[Litestar], source: Path, **overrides: Any) -> str:
    r = client.post("/api/v2/models/install", params={"source": str(source), "inplace": "true"}, json=overrides)
    assert r.status_code == 201, r.text
    url = f"/api/v2/models/install/{r.json()['id']}"
    wait_until(lambda: client.get(url).json()["status"] in {"completed", "error"}, "the install to finish",
               timeout=60)
    job = client.get(url).json()
    assert job["status"] == "completed", job
    key: str = job["config_out"]["key"]
    return key


def upload(client: TestClient[Litestar]) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=(200, 120, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    r = client.post("/api/v1/images/upload", params={"image_category": "control"},
                    files={"file": ("control.png", buffer.getvalue(), "image/png")})
    assert r.status_code == 201, r.text
    name: str = r.json()["image_name"]
    return name


def test_a_graph_with_every_control_node_runs_through_the_queue(
    client: TestClient[Litestar], tiny_models: TinyModels, control_files: ControlFiles
) -> None:
    sd1 = install(client, tiny_models.root / "sd1", type="main", format="diffusers", base="sd-1")
    cn = install(client, control_files / "cn_sd1.safetensors", type="controlnet", format="checkpoint", base="sd-1",
                 config_path=str(control_files / "cn_sd1"))
    t2i = install(client, control_files / "t2i_sd1", type="t2i_adapter", format="diffusers", base="sd-1")
    install(client, control_files / "ip_adapter_sd_image_encoder", type="clip_vision", format="diffusers", base="any")
    ip = install(client, control_files / "ip_sd1_invokeai", type="ip_adapter", format="invokeai", base="sd-1",
                 image_encoder_model_id="InvokeAI/ip_adapter_sd_image_encoder")
    image = {"image_name": upload(client)}

    graph = txt2latents_graph(sd1, seed=9, steps=3)
    graph["nodes"].update({
        "canny": {"type": "canny_edge_detection", "image": image, "low_threshold": 50, "high_threshold": 100},
        "canny_old": {"type": "canny_image_processor", "image": image, "detect_resolution": 64,
                      "image_resolution": 64},
        "shuffle": {"type": "content_shuffle", "image": image, "scale_factor": 16},
        "colors": {"type": "color_map", "image": image, "tile_size": 8},
        "tile": {"type": "tile_image_processor", "image": image, "down_sampling_rate": 2.0},
        "cn_a": {"type": "controlnet", "control_model": {"key": cn}, "control_weight": 0.8},
        "cn_b": {"type": "controlnet", "control_model": {"key": cn}, "control_mode": "more_control",
                 "resize_mode": "crop_resize", "end_step_percent": 0.5},
        "controls": {"type": "collect"},
        "t2i": {"type": "t2i_adapter", "t2i_adapter_model": {"key": t2i}, "weight": 0.7},
        "ip": {"type": "ip_adapter", "ip_adapter_model": {"key": ip}, "weight": 0.6},
        "l2i": {"type": "l2i"},
    })
    graph["edges"] += [
        edge("canny", "image", "cn_a", "image"), edge("canny_old", "image", "cn_b", "image"),
        edge("cn_a", "control", "controls", "item"), edge("cn_b", "control", "controls", "item"),
        edge("controls", "collection", "denoise", "control"),
        edge("colors", "image", "t2i", "image"), edge("t2i", "t2i_adapter", "denoise", "t2i_adapter"),
        edge("shuffle", "image", "ip", "image"), edge("ip", "ip_adapter", "denoise", "ip_adapter"),
        edge("denoise", "latents", "l2i", "latents"), edge("model", "vae", "l2i", "vae"),
    ]
    graph["nodes"]["tile_sink"] = {"type": "img_blur", "radius": 0}
    graph["edges"].append(edge("tile", "image", "tile_sink", "image"))

    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "default"}))
        assert ws.receive_json()["event"] == "subscribed"
        r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": graph}})
        assert r.status_code == 201, r.text
        [item_id] = r.json()["item_ids"]
        messages: list[Message] = []
        while True:
            message = ws.receive_json()
            messages.append(message)
            data = message["data"]
            if (message["event"] == "queue_item_status_changed" and data["item_id"] == item_id
                    and data["status"] in {"completed", "failed", "canceled"}):
                break
    assert data["status"] == "completed", data
    done = {m["data"]["invocation_source_id"]: m["data"]["result"] for m in messages
            if m["event"] == "invocation_complete"}
    assert set(graph["nodes"]) <= set(done), "every node ran"
    progress = [m["data"] for m in messages
                if m["event"] == "invocation_progress" and m["data"]["invocation_source_id"] == "denoise"]
    assert len(progress) == 3 and all(p["image"] is not None for p in progress), "a preview per step"
    assert done["tile"]["width"] == 32 and done["canny_old"]["width"] == 64
    assert done["ip"]["ip_adapter"]["image_encoder_model"]["name"] == "ip_adapter_sd_image_encoder"
    png = client.get(f"/api/v1/images/i/{done['l2i']['image']['image_name']}/full")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
