"""Node shapes as processes on one data root: two `invoke-host worker` processes and one `serve --no-processor`.

They share one SQLite file (WAL lets several processes use it). The processes start once for the module; the
test that kills a worker runs last. Items block on files (the `proc_hold` node), never on timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.queue.test_server_kill import _free_port, _test_plugin_site

Q = "/api/v1/queue/default"
LEASE_S = 2


def _call(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_for(check: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    base: str = ""
    api: subprocess.Popen[str] | None = None
    workers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start_api(self) -> None:
        port = _free_port()
        cli = Path(sys.executable).parent / "invoke-host"
        self.api = subprocess.Popen([str(cli), "serve", "--no-processor", "--port", str(port), "--log-level",
                                     "warning"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        self.base = f"http://127.0.0.1:{port}"
        api = self.api

        def up() -> bool:
            assert api.poll() is None, api.communicate()[0]
            try:
                _call("GET", f"{self.base}/api/v1/app/version")
            except OSError:
                return False
            return True

        _wait_for(up, "the API node to answer")

    def start_worker(self, name: str) -> None:
        cli = Path(sys.executable).parent / "invoke-host"
        self.workers[name] = subprocess.Popen([str(cli), "worker", "--name", name, "--log-level", "info"],
                                              env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              text=True)

    def stop(self, process: subprocess.Popen[str] | None) -> str:
        if process is None:
            return ""
        if process.poll() is None:
            process.terminate()
        return process.communicate(timeout=30)[0]

    def item(self, item_id: int) -> dict[str, Any]:
        result: dict[str, Any] = _call("GET", f"{self.base}{Q}/i/{item_id}")
        return result

    def enqueue(self, graph: dict[str, Any], queue: str = Q) -> int:
        [item_id] = _call("POST", f"{self.base}{queue}/enqueue_batch", {"batch": {"graph": graph}})["item_ids"]
        return int(item_id)

    def finished(self, item_id: int) -> bool:
        return self.item(item_id)["status"] in ("completed", "failed", "canceled")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("cluster")
    site = _test_plugin_site(base)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(repo)]), "INVOKE_HOST_ROOT": str(base / "root"),
           "INVOKE_HOST_LEASE_SECONDS": str(LEASE_S), "INVOKE_HOST_WORKER_POLL_INTERVAL_S": "0.1"}
    cluster = Cluster(base / "root", env)
    cluster.start_api()  # first: it creates and migrates the database the workers open
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    # Both workers are up once each has run an item (several rounds: either may take any one).
    seen: set[str] = set()
    add = {"nodes": {"a": {"id": "a", "type": "add", "a": 1, "b": 2}}, "edges": []}
    deadline = time.monotonic() + 90
    while seen != {"w1", "w2"}:
        if time.monotonic() > deadline:
            logs = [cluster.stop(p) for p in cluster.workers.values()]
            raise AssertionError(f"only {seen} ran items; the workers wrote: {logs}")
        ids = [cluster.enqueue(add) for _ in range(4)]
        _wait_for(lambda ids=ids: all(cluster.finished(i) for i in ids), "the warm-up items")  # type: ignore[misc]
        seen |= {cluster.item(i)["worker_id"] for i in ids}
    try:
        yield cluster
    finally:
        for process in [*cluster.workers.values(), cluster.api]:
            cluster.stop(process)


def _hold(folder: Path, *, save: bool = False) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return {"nodes": {"h": {"id": "h", "type": "proc_hold", "folder": str(folder), "save": save}}, "edges": []}


def _started_pid(folder: Path) -> int | None:
    started = sorted(folder.glob("started-*"))
    return int(started[0].name.removeprefix("started-")) if started else None


def test_an_item_enqueued_on_the_api_node_runs_on_a_worker_and_shows_it(cluster: Cluster, tmp_path: Path) -> None:
    add = {"nodes": {"a": {"id": "a", "type": "add", "a": 2, "b": 3}}, "edges": []}
    item_id = cluster.enqueue(add)
    _wait_for(lambda: cluster.finished(item_id), "the item to run")
    item = cluster.item(item_id)
    assert (item["status"], item["attempts"]) == ("completed", 1)
    assert item["worker_id"] in {"w1", "w2"}
    [result] = _call("GET", f"{cluster.base}{Q}/i/{item_id}/results?node_id=a")["items"]
    assert result["output"]["value"] == 5


def test_a_cancel_on_the_api_node_reaches_the_worker_process_running_the_item(
    cluster: Cluster, tmp_path: Path
) -> None:
    folder = tmp_path / "cancel"
    item_id = cluster.enqueue(_hold(folder))
    _wait_for(lambda: _started_pid(folder) is not None, "the item to start on a worker")
    pid = _started_pid(folder)
    _call("PUT", f"{cluster.base}{Q}/i/{item_id}/cancel")
    # The worker sees the cancel through its lease check (about twice a second), and the node sees is_canceled().
    _wait_for(lambda: (folder / f"saw-cancel-{pid}").exists(), "the worker to see the cancel", limit_s=10)
    assert cluster.item(item_id)["status"] == "canceled"


def test_a_paused_queue_stays_paused_for_every_worker_and_across_a_restart(cluster: Cluster, tmp_path: Path) -> None:
    paused = "/api/v1/queue/paused-q"
    assert _call("PUT", f"{cluster.base}{paused}/processor/pause")["is_started"] is False
    held = cluster.enqueue(_hold(tmp_path / "p"), queue=paused)
    cluster.stop(cluster.api)
    cluster.start_api()
    assert _call("GET", f"{cluster.base}{paused}/status")["processor"]["is_started"] is False
    # Workers kept polling meanwhile; items of other queues still run, the paused one's never started.
    add = {"nodes": {"a": {"id": "a", "type": "add", "a": 1, "b": 1}}, "edges": []}
    ids = [cluster.enqueue(add) for _ in range(4)]
    _wait_for(lambda: all(cluster.finished(i) for i in ids), "items of a running queue")
    assert _call("GET", f"{cluster.base}{paused}/i/{held}")["status"] == "pending"
    (tmp_path / "p" / "release").touch()
    assert _call("PUT", f"{cluster.base}{paused}/processor/resume")["is_started"] is True
    _wait_for(lambda: _call("GET", f"{cluster.base}{paused}/i/{held}")["status"] == "completed", "the resumed item")


def test_a_killed_worker_loses_its_lease_and_the_other_worker_completes_the_item_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    folder = tmp_path / "kill"
    item_id = cluster.enqueue(_hold(folder, save=True))
    _wait_for(lambda: _started_pid(folder) is not None, "the item to start on a worker")
    first = cluster.item(item_id)
    assert (first["status"], first["attempts"]) == ("in_progress", 1)
    victim = first["worker_id"]
    survivor = ({"w1", "w2"} - {victim}).pop()
    assert cluster.workers[victim].pid == _started_pid(folder)
    cluster.workers[victim].send_signal(signal.SIGKILL)
    cluster.workers[victim].wait(30)

    def retried() -> bool:
        item = cluster.item(item_id)
        return bool(item["status"] == "in_progress" and item["attempts"] == 2)

    _wait_for(retried, "the item to be retried after the lease")
    assert cluster.item(item_id)["worker_id"] == survivor
    _wait_for(lambda: len(list(folder.glob("started-*"))) == 2, "the retry to reach the node")
    (folder / "release").touch()
    _wait_for(lambda: cluster.finished(item_id), "the retried item to finish")
    done = cluster.item(item_id)
    assert (done["status"], done["attempts"], done["worker_id"]) == ("completed", 2, survivor)
    [result] = _call("GET", f"{cluster.base}{Q}/i/{item_id}/results?node_id=h")["items"]
    assert result["output"]["value"] == cluster.workers[survivor].pid  # the survivor's run is the one stored
    # The node saved its image on both runs; the retry reused the first run's record (keyed by session and node).
    images = _call("GET", f"{cluster.base}/api/v1/images/?limit=100")["items"]
    mine = [i for i in images if i["session_id"] == done["session_id"]]
    assert len(mine) == 1 and mine[0]["node_id"] == "h"
