"""Killing `invoke-host serve` mid-run (SIGKILL) loses nothing enqueued; the interrupted item is retried once its
lease expires (docs/deploy.md, "Failure model")."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_for(check: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def _test_plugin_site(tmp_path: Path) -> Path:
    """A folder on PYTHONPATH whose dist-info makes tests/queue/processor_nodes an entry-point plugin."""
    site = tmp_path / "site"
    info = site / "invoke_proc_test_nodes-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: invoke-proc-test-nodes\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[invoke_host.plugins]\nproc_test_nodes = tests.queue.processor_nodes\n")
    return site


@contextmanager
def _server(root: Path, site: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "INVOKE_HOST_ROOT": str(root),
           "INVOKE_HOST_LEASE_SECONDS": "2"}
    cli = Path(sys.executable).parent / "invoke-host"
    process = subprocess.Popen([str(cli), "serve", "--port", str(port), "--log-level", "warning"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, process.communicate()[0]
        try:
            _call("GET", f"{base}/api/v1/app/version")
        except OSError:
            return False
        return True

    try:
        _wait_for(up, "the server to answer")
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def test_sigkill_mid_run_loses_nothing_and_the_interrupted_item_is_retried_after_its_lease(tmp_path: Path) -> None:
    root, site = tmp_path / "root", _test_plugin_site(tmp_path)
    queue = "/api/v1/queue/default"
    with _server(root, site) as (base, process):
        wait = {"nodes": {"w": {"id": "w", "type": "proc_wait"}}, "edges": []}
        [running] = _call("POST", f"{base}{queue}/enqueue_batch", {"batch": {"graph": wait}})["item_ids"]
        add = {"nodes": {"a": {"id": "a", "type": "add", "a": 2}}, "edges": []}
        pending = _call("POST", f"{base}{queue}/enqueue_batch", {"batch": {
            "graph": add, "data": [[{"node_path": "a", "field_name": "b", "items": [1, 2, 3]}]]}})["item_ids"]
        _wait_for(lambda: _call("GET", f"{base}{queue}/i/{running}")["status"] == "in_progress", "the item to run")
        assert _call("GET", f"{base}{queue}/status")["queue"]["pending"] == 3
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    with _server(root, site) as (base, _process):
        def all_done() -> bool:
            return all(_call("GET", f"{base}{queue}/i/{i}")["status"] == "completed" for i in pending)

        def retried() -> bool:
            item = _call("GET", f"{base}{queue}/i/{running}")
            return bool(item["status"] == "in_progress" and item["attempts"] == 2)

        # The retry runs first (it is the oldest item), so it is running again before the pending ones can run.
        _wait_for(retried, "the interrupted item to be retried once its lease expired")
        _call("PUT", f"{base}{queue}/i/{running}/cancel")
        _wait_for(all_done, "the pending items to run after the restart")
        assert _call("GET", f"{base}{queue}/i/{running}")["status"] == "canceled"
        results = []
        for i in pending:
            page = _call("GET", f"{base}{queue}/i/{i}/results?node_id=a")
            results += [r["output"]["value"] for r in page["items"]]
        assert results == [3, 4, 5]
        assert _call("GET", f"{base}{queue}/status")["queue"]["total"] == 4
