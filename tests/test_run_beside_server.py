"""``invoke-host run`` on the data root of a running server: its own session, the server's queue untouched.

Both are real processes on one root. The server holds one item in progress (a node that runs until a file
appears) and one pending behind it; ``run`` saves an image into the same store meanwhile. Starting a whole host
in ``run`` used to mark the running item failed (ServerStoppedError) and claim the pending one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_until

PLUGINS = "sqlite_storage,local_file_storage,core_events,core_nodes,image_nodes,wait_pack"
CLI = Path(sys.executable).parent / "invoke-host"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        _request(url)
    except OSError:
        return False
    return True


@pytest.fixture
def env(wait_pack_site: Path, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(wait_pack_site), "INVOKE_HOST_ROOT": str(tmp_path / "root"),
            "INVOKE_HOST_PLUGINS_ALLOW": PLUGINS}


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([str(CLI), "serve", "--port", str(port), "--log-level", "warning"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _answers(f"{base}/api/v1/app/version"),
                   "the server to answer", timeout=60, interval=0.1)
        assert process.poll() is None, process.communicate()[0]
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _enqueue(base: str, graph: dict[str, Any]) -> int:
    [item_id] = _request(f"{base}/api/v1/queue/default/enqueue_batch", {"batch": {"graph": graph}})["item_ids"]
    return int(item_id)


def _item(base: str, item_id: int) -> dict[str, Any]:
    item: dict[str, Any] = _request(f"{base}/api/v1/queue/default/i/{item_id}")
    return item


def test_run_on_a_live_servers_root_leaves_its_running_and_pending_items_alone(
    server: str, env: dict[str, str], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    running = _enqueue(server, {"nodes": {"w": {"type": "wait_for_file", "path": str(release)}}, "edges": []})
    pending = _enqueue(server, {"nodes": {"add": {"type": "add", "a": 2, "b": 3}}, "edges": []})
    wait_until(lambda: _item(server, running)["status"] == "in_progress", "the server to start the waiting item")

    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps({
        "nodes": {"blank": {"type": "blank_image", "width": 8, "height": 4}, "save": {"type": "save_image"}},
        "edges": [{"source": {"node_id": "blank", "field": "image"},
                   "destination": {"node_id": "save", "field": "image"}}],
    }))
    done = subprocess.run([str(CLI), "run", str(graph), "--quiet"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["status"] == "completed"
    [saved] = body["outputs"]["save"]

    # The server's items are as they were: one running, one waiting behind it.
    assert _item(server, running)["status"] == "in_progress"
    assert _item(server, pending)["status"] == "pending"
    # The image went into the store the server serves.
    record = _request(f"{server}/api/v1/images/i/{saved['image']['image_name']}")
    assert (record["width"], record["height"]) == (8, 4)

    # Written aside and renamed, so the node never sees the file before its text.
    (tmp_path / "release.tmp").write_text("released")
    os.replace(tmp_path / "release.tmp", release)
    wait_until(lambda: _item(server, pending)["status"] in ("completed", "failed"), "the items to finish",
               timeout=30)
    first, second = _item(server, running), _item(server, pending)
    assert (first["status"], second["status"]) == ("completed", "completed"), (first, second)
    [result] = _request(f"{server}/api/v1/queue/default/i/{running}/results?node_id=w")["items"]
    assert result["output"]["value"] == "released"
