"""``PUT /api/v1/queue/{queue_id}/retry_items_by_id`` on a real SQLite file with a running processor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
from invoke_sdk import BaseInvocation, InputField, InvocationContext, hookimpl, invocation
from invoke_sdk.hookspecs import RegisterInvocation
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.conftest import IntOutput
from tests.waiting import wait_until

Q = "/api/v1/queue/default"


@invocation("test_needs_file", title="Needs a file", use_cache=False)
class NeedsFileInvocation(BaseInvocation):
    """Fails until the file it names exists: a run that fails, then succeeds when retried."""

    path: str = InputField(default="")

    def invoke(self, context: InvocationContext) -> IntOutput:
        if not Path(self.path).exists():
            raise FileNotFoundError(f"{self.path} is not there yet")
        return IntOutput(value=len(Path(self.path).read_text()))


class Plugin:
    @hookimpl
    def register_invocations(self, register: RegisterInvocation) -> None:
        register(NeedsFileInvocation)


def _app(root: Path, **config: Any) -> Litestar:
    return create_app(
        HostConfig(root=root, **config),
        plugins=[("sqlite_storage", sqlite_plugin), ("core_events", core_events_plugin), ("nodes", Plugin())],
        entry_points=False,
    )


def _enqueue(client: TestClient[Litestar], path: Path, runs: int = 1) -> list[int]:
    graph = {"nodes": {"n": {"type": "test_needs_file", "path": str(path)}}, "edges": []}
    r = client.post(f"{Q}/enqueue_batch", content=json.dumps({"batch": {"graph": graph, "runs": runs}}),
                    headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text
    return list(r.json()["item_ids"])


def _status(client: TestClient[Litestar], item_id: int) -> str:
    return str(client.get(f"{Q}/i/{item_id}").json()["status"])


def test_a_failed_item_retried_runs_again_and_the_original_is_kept(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    with TestClient(_app(tmp_path)) as client:
        [failed] = _enqueue(client, marker)
        wait_until(lambda: _status(client, failed) == "failed", "the first run to fail", timeout=30)
        before = client.get(f"{Q}/i/{failed}").json()
        assert before["error_type"] == "FileNotFoundError"

        marker.write_text("four")
        r = client.put(f"{Q}/retry_items_by_id", json=[failed])
        assert r.status_code == 200, r.text
        body = r.json()
        [new] = body["new_item_ids"]
        assert body == {"queue_id": "default", "retried_item_ids": [failed], "new_item_ids": [new]} and new > failed
        wait_until(lambda: _status(client, new) == "completed", "the retried item to complete", timeout=30)

        again = client.get(f"{Q}/i/{new}").json()
        assert again["batch_id"] == before["batch_id"] and again["session_id"] != before["session_id"]
        assert again["session"]["graph"] == before["session"]["graph"]
        results = client.get(f"{Q}/i/{new}/results").json()["items"]
        assert [r["output"]["value"] for r in results] == [4]
        after = client.get(f"{Q}/i/{failed}").json()
        assert after == before  # kept exactly as it was: status, error, session, timestamps


def test_only_failed_and_canceled_items_of_the_queue_are_retried(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    marker.write_text("x")
    with TestClient(_app(tmp_path, processor_enabled=False, max_batch_size=4)) as client:
        pending, canceled = _enqueue(client, marker, runs=2)
        assert client.put(f"{Q}/i/{canceled}/cancel").status_code == 200
        r = client.put(f"{Q}/retry_items_by_id", json=[pending, canceled, canceled, 12345])
        assert r.status_code == 200
        body = r.json()
        assert (body["retried_item_ids"], len(body["new_item_ids"])) == ([canceled], 1)
        assert _status(client, body["new_item_ids"][0]) == "pending"
        assert _status(client, canceled) == "canceled"
        other = client.put("/api/v1/queue/other/retry_items_by_id", json=[canceled]).json()
        assert other == {"queue_id": "other", "retried_item_ids": [], "new_item_ids": []}
        counts = client.get(f"{Q}/status").json()["queue"]
        assert (counts["pending"], counts["canceled"], counts["total"]) == (2, 1, 3)

        r = client.put(f"{Q}/retry_items_by_id", json=[1, 2, 3, 4, 5])
        assert r.status_code == 413 and "INVOKE_HOST_MAX_BATCH_SIZE=4" in r.json()["detail"]
        assert client.put(f"{Q}/retry_items_by_id", json={"item_ids": [1]}).status_code == 400
        assert client.put(f"{Q}/retry_items_by_id", json=["one"]).status_code == 400
