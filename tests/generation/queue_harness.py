"""Generation through the queue API: a real app (SQLite queue and records, image files, /ws events) with the
diffusers, image and spandrel plugins; graphs are enqueued over HTTP and followed over the websocket."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import invoke_core_events.plugin
import invoke_diffusers_nodes.plugin
import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sd_probers.plugin
import invoke_spandrel_nodes.plugin
import invoke_sqlite_storage.plugin
from litestar import Litestar
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import Host
from tests.waiting import wait_until

PLUGINS = [
    ("sd_probers", invoke_sd_probers.plugin), ("sqlite_storage", invoke_sqlite_storage.plugin),
    ("local_file_storage", invoke_local_file_storage.plugin), ("core_events", invoke_core_events.plugin),
    ("diffusers_nodes", invoke_diffusers_nodes.plugin), ("image_nodes", invoke_image_nodes.plugin),
    ("spandrel_nodes", invoke_spandrel_nodes.plugin),
]
Q = "/api/v1/queue/default"


def edge(src: str, src_field: str, dst: str, dst_field: str) -> dict[str, Any]:
    return {"source": {"node_id": src, "field": src_field}, "destination": {"node_id": dst, "field": dst_field}}


@dataclass
class Run:
    """How one queue item ended: its status, each node's result, its progress events and its error."""

    status: str
    results: dict[str, Any]
    progress: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class QueueApi:
    client: TestClient[Litestar]
    ws: WebSocketTestSession

    @property
    def host(self) -> Host:
        host: Host = self.client.app.state.host
        return host

    def install(self, source: Path, **overrides: Any) -> str:
        r = self.client.post("/api/v2/models/install", params={"source": str(source), "inplace": "true"},
                             json=overrides)
        assert r.status_code == 201, r.text
        url = f"/api/v2/models/install/{r.json()['id']}"
        wait_until(lambda: self.client.get(url).json()["status"] in {"completed", "error"}, "the install", timeout=60)
        job = self.client.get(url).json()
        assert job["status"] == "completed", job
        key: str = job["config_out"]["key"]
        return key

    def model(self, key: str) -> dict[str, Any]:
        r = self.client.get(f"/api/v2/models/i/{key}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def upload(self, image: Any) -> str:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        r = self.client.post("/api/v1/images/upload", params={"image_category": "user", "is_intermediate": "false"},
                             files={"file": ("image.png", buffer.getvalue(), "image/png")})
        assert r.status_code == 201, r.text
        name: str = r.json()["image_name"]
        return name

    def image(self, name: str) -> Any:
        from PIL import Image

        r = self.client.get(f"/api/v1/images/i/{name}/full")
        assert r.status_code == 200, r.text
        return Image.open(io.BytesIO(r.content)).convert("RGB")

    def tensor(self, name: str) -> Any:
        return self.host.node_services.tensors.load(name)

    def enqueue(self, graph: dict[str, Any]) -> int:
        r = self.client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph}})
        assert r.status_code == 201, r.text
        [item_id] = r.json()["item_ids"]
        return int(item_id)

    def follow(self, item_id: int) -> Run:
        """Read /ws until the item ends."""
        results: dict[str, Any] = {}
        progress: list[dict[str, Any]] = []
        error = None
        while True:
            message = self.ws.receive_json()
            data = message["data"]
            if data.get("item_id") != item_id:
                continue
            if message["event"] == "invocation_complete":
                results[data["invocation_source_id"]] = data["result"]
            elif message["event"] == "invocation_progress":
                progress.append(data)
            elif message["event"] == "invocation_error":
                error = data.get("error_message") or data.get("error")
            elif message["event"] == "queue_item_status_changed" and data["status"] in {"completed", "failed",
                                                                                          "canceled"}:
                if data["status"] == "failed" and error is None:
                    error = json.dumps(self.client.get(f"{Q}/i/{item_id}").json())
                return Run(data["status"], results, progress, error)

    def run(self, graph: dict[str, Any], *, expect: str = "completed") -> Run:
        run = self.follow(self.enqueue(graph))
        assert run.status == expect, run.error
        return run


@contextmanager
def queue_api(root: Path, **config: Any) -> Iterator[QueueApi]:
    settings = {"device": "cpu", "precision": "float32", "ram_cache_gb": 2, "vram_cache_gb": 2, **config}
    app = create_app(HostConfig(root=root, **settings), plugins=PLUGINS, entry_points=False)
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "default"}))
        assert ws.receive_json()["event"] == "subscribed"
        yield QueueApi(client, ws)
