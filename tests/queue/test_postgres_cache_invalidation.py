"""Cross-node cache invalidation on PostgreSQL (#12), as real processes: an API node (`serve --no-processor`) and a
worker (`invoke-host worker`) on one database and one root. An image deleted or a model edited through the API node
reaches the worker's output cache and model cache (the postgres_events relay carries the events, and a worker takes
only those), so a re-run never reuses a stale entry.

The worker's log is a file: the test waits for the worker to say it dropped the entries before it runs the graph
again (the invalidation travels beside the next enqueue, not before it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.models import model_files
from tests.queue.test_worker_processes import LEASE_S, Cluster, Q, _call, _wait_for

# blank_image is cacheable and saves an (intermediate) image; save_image never is, and loads what it is given.
IMAGES = {
    "nodes": {"blank": {"id": "blank", "type": "blank_image", "width": 8, "height": 8, "is_intermediate": True},
              "save": {"id": "save", "type": "save_image"}},
    "edges": [{"source": {"node_id": "blank", "field": "image"}, "destination": {"node_id": "save", "field": "image"}}],
}


def _plugin_site(tmp_path: Path) -> Path:
    """A folder on PYTHONPATH whose dist-info makes tests/queue/cache_nodes (a loader needing no torch and a node
    that loads through it) an entry-point plugin of every node."""
    info = tmp_path / "site" / "invoke_cache_test_nodes-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: invoke-cache-test-nodes\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[invoke_host.plugins]\ncache_test_nodes = tests.queue.cache_nodes\n")
    return tmp_path / "site"


class Worker:
    """One `invoke-host worker` whose log goes to a file the test reads."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        cli = Path(sys.executable).parent / "invoke-host"
        with log.open("w") as out:
            self.process = subprocess.Popen([str(cli), "worker", "--name", "w1", "--log-level", "info"], env=env,
                                            stdout=out, stderr=subprocess.STDOUT, text=True)

    def said(self, text: str) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        return text in self.log.read_text()


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Cluster, Worker]]:
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_plugin_site(tmp_path)), str(repo)]),
           "INVOKE_HOST_ROOT": str(tmp_path / "root"), "INVOKE_HOST_DATABASE_URL": postgres_url,
           "INVOKE_HOST_LEASE_SECONDS": str(LEASE_S), "INVOKE_HOST_WORKER_POLL_INTERVAL_S": "0.1",
           # Its main/diffusers loader would win over cache_nodes' (the first registered wins).
           "INVOKE_HOST_PLUGINS_BLOCK": "diffusers_nodes", "HF_HUB_OFFLINE": "1"}
    api = Cluster(tmp_path / "root", env)
    worker: Worker | None = None
    try:
        api.start_api()  # first: it migrates the database the worker opens
        worker = Worker(env, tmp_path / "worker.log")
        _wait_for(lambda: worker is not None and worker.said("Worker running"), "the worker to start")
        yield api, worker
    finally:
        if worker is not None and worker.process.poll() is None:
            worker.process.terminate()
            worker.process.wait(30)
        api.stop(api.api)


def _run(api: Cluster, graph: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Enqueue ``graph``, wait for its item to end: its status and each node's stored output."""
    item_id = api.enqueue(graph)
    _wait_for(lambda: api.finished(item_id), f"item {item_id} to finish")
    results = _call("GET", f"{api.base}{Q}/i/{item_id}/results")["items"]
    return api.item(item_id)["status"], {r["source_node_id"]: r["output"] for r in results}


def _prediction(api: Cluster, probe: dict[str, Any]) -> tuple[str, str]:
    status, outputs = _run(api, probe)
    return status, outputs["p"]["prediction_type"] if "p" in outputs else ""


def test_an_image_deleted_on_the_api_node_leaves_the_workers_output_cache(nodes: tuple[Cluster, Worker]) -> None:
    api, worker = nodes
    status, first = _run(api, IMAGES)
    assert status == "completed"
    made = first["blank"]["image"]["image_name"]
    status, second = _run(api, IMAGES)
    assert status == "completed"
    assert second["blank"]["image"]["image_name"] == made  # the worker's cache answered

    _call("DELETE", f"{api.base}/api/v1/images/i/{made}")
    _wait_for(lambda: worker.said("Dropped 1 cached output(s) naming 1 deleted image(s)"),
              "the worker to drop the output naming the deleted image")
    status, third = _run(api, IMAGES)
    # Had the worker's cache answered, blank would name the deleted image and save_image would fail to load it.
    assert status == "completed"
    remade = third["blank"]["image"]["image_name"]
    assert remade != made
    assert _call("GET", f"{api.base}/api/v1/images/i/{remade}")["image_name"] == remade


def test_a_model_edited_on_the_api_node_leaves_the_workers_caches(
    nodes: tuple[Cluster, Worker], tmp_path: Path
) -> None:
    api, worker = nodes
    source = model_files.write_diffusers_main(tmp_path / "src" / "probe", "sd-1")
    job = _call("POST", f"{api.base}/api/v2/models/install?source={source}&inplace=true", {"name": "probe"})
    url = f"{api.base}/api/v2/models/install/{job['id']}"
    _wait_for(lambda: _call("GET", url)["status"] in {"completed", "error"}, "the install to finish")
    installed = _call("GET", url)
    assert installed["status"] == "completed", installed
    key = installed["config_out"]["key"]
    probe = {"nodes": {"p": {"id": "p", "type": "cache_model_probe", "model": {"key": key}}}, "edges": []}
    assert _prediction(api, probe) == ("completed", "epsilon")
    assert _prediction(api, probe) == ("completed", "epsilon")

    _call("PATCH", f"{api.base}/api/v2/models/i/{key}", {"prediction_type": "v_prediction"})
    _wait_for(lambda: worker.said(f"computed with model {key}, which changed"),
              "the worker to drop the outputs computed with the edited model")
    # Had either cache of the worker answered, the output would still say epsilon.
    assert _prediction(api, probe) == ("completed", "v_prediction")

    _call("DELETE", f"{api.base}/api/v2/models/i/{key}")
    _wait_for(lambda: worker.log.read_text().count(f"computed with model {key}, which changed") == 2,
              "the worker to hear of the delete")
    assert _run(api, probe)[0] == "failed", "a deleted model's output is not served from the worker's cache"
