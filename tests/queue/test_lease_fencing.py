"""Fencing by the claim's attempt (#12), as real processes on both backends: a worker paused (SIGSTOP) past its
lease, its item claimed again by a worker of the same name (the case a worker-name guard alone lets through: a
replacement started with the same ``--name``, or a second slot of that worker), then resumed (SIGCONT). The old
run's writes (its image, its result, the item's end) are refused, and the item ends with exactly the new claim's
result and one image record.

Items block on files (the `proc_hold` node), never on timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.queue.test_server_kill import _test_plugin_site
from tests.queue.test_worker_processes import LEASE_S, Cluster, Q, _call, _started_pid, _wait_for


class Worker:
    """One `invoke-host worker` named ``w1`` whose log goes to a file the test reads."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        cli = Path(sys.executable).parent / "invoke-host"
        with log.open("w") as out:
            self.process = subprocess.Popen([str(cli), "worker", "--name", "w1", "--log-level", "info"], env=env,
                                            stdout=out, stderr=subprocess.STDOUT, text=True)

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    repo = Path(__file__).resolve().parents[2]
    values = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_test_plugin_site(tmp_path)), str(repo)]),
              "INVOKE_HOST_ROOT": str(tmp_path / "root"), "INVOKE_HOST_LEASE_SECONDS": str(LEASE_S),
              "INVOKE_HOST_WORKER_POLL_INTERVAL_S": "0.1"}
    if request.param == "postgres":
        values["INVOKE_HOST_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return values


@pytest.fixture
def api(env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "root", env)
    try:
        cluster.start_api()  # first: it migrates the database the workers open
        yield cluster
    finally:
        cluster.stop(cluster.api)


def test_a_resumed_worker_whose_item_was_claimed_again_writes_nothing(
    api: Cluster, env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "item"
    folder.mkdir()
    graph = {"nodes": {"h": {"id": "h", "type": "proc_hold", "folder": str(folder), "save_at_end": True}},
             "edges": []}
    old = Worker(env, tmp_path / "old.log")
    new: Worker | None = None
    try:
        item_id = api.enqueue(graph)
        _wait_for(lambda: _started_pid(folder) == old.process.pid, "the first worker to start the item")
        session_id = api.item(item_id)["session_id"]
        old.process.send_signal(signal.SIGSTOP)

        new = Worker(env, tmp_path / "new.log")
        _wait_for(lambda: api.item(item_id)["attempts"] == 2, "the item to be claimed again after the lease", 60)
        _wait_for(lambda: len(list(folder.glob("started-*"))) == 2, "the second claim to reach the node")
        assert api.item(item_id)["worker_id"] == "w1"  # the same name: only the attempt tells the claims apart

        # Released before it resumes, so its node saves its image as soon as it runs again.
        (folder / f"release-{old.process.pid}").touch()
        old.process.send_signal(signal.SIGCONT)
        _wait_for(lambda: f"Queue item {item_id} stopped after" in old.text(), "the old run to stop")
        log = old.text()
        # Whichever came first: the image save, or the heartbeat that found the claim gone.
        assert "Refused an image save" in log or f"Queue item {item_id} is no longer held by w1" in log, log
        held = api.item(item_id)
        assert (held["status"], held["attempts"]) == ("in_progress", 2)
        assert _call("GET", f"{api.base}{Q}/i/{item_id}/results")["items"] == []
        assert _images(api, session_id) == 0

        assert new.process.poll() is None
        (folder / f"release-{new.process.pid}").touch()
        _wait_for(lambda: api.finished(item_id), "the new claim to finish the item")
    finally:
        old.stop()
        if new is not None:
            new.stop()
    done = api.item(item_id)
    assert (done["status"], done["attempts"], done["worker_id"]) == ("completed", 2, "w1")
    [result] = _call("GET", f"{api.base}{Q}/i/{item_id}/results")["items"]
    assert result["output"]["value"] == new.process.pid
    assert _images(api, session_id) == 1


def _images(api: Cluster, session_id: str) -> int:
    images = _call("GET", f"{api.base}/api/v1/images/?limit=100")["items"]
    return sum(image["session_id"] == session_id for image in images)
