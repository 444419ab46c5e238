"""The workflow library through the HTTP API on a real SQLite file: save, list, read, change, delete, run by id,
packs' read-only workflows, and the limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation, RegisterWorkflow
from invoke_sdk.workflows import PackWorkflow
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.conftest import AddInvocation

W = "/api/v1/workflows"
Q = "/api/v1/queue/default"


class LibraryPlugin:
    @hookimpl
    def register_invocations(self, register: RegisterInvocation) -> None:
        register(AddInvocation)

    @hookimpl
    def register_workflows(self, register: RegisterWorkflow) -> None:
        register(PackWorkflow(id="adder", name="Zeta adder", graph={"nodes": {"add": {"type": "test_add", "a": 1}}},
                              tags=("math",), description="adds"))


def _app(root: Path, **config: Any) -> Litestar:
    return create_app(
        HostConfig(root=root, **{"processor_enabled": False, **config}),
        plugins=[("sqlite_storage", sqlite_plugin), ("core_events", core_events_plugin), ("library", LibraryPlugin())],
        entry_points=False,
    )


@pytest.fixture
def client(tmp_path: Path) -> Any:
    with TestClient(_app(tmp_path)) as c:
        yield c


def _graph(**fields: Any) -> dict[str, Any]:
    return {"nodes": {"add": {"type": "test_add", **fields}}, "edges": []}


def _save(client: TestClient[Litestar], **body: Any) -> Any:
    return client.post(f"{W}/", content=json.dumps({"graph": _graph(), **body}),
                       headers={"content-type": "application/json"})


def test_save_read_change_and_delete_a_workflow(client: TestClient[Litestar]) -> None:
    r = _save(client, name="Adder", description="adds two", tags=["math", "math", "demo"],
              workflow={"name": "Adder", "exposedFields": [{"nodeId": "add", "fieldName": "a"}]})
    assert r.status_code == 200, r.text
    saved = r.json()
    wid = saved["workflow_id"]
    assert (saved["name"], saved["description"], saved["tags"], saved["category"], saved["read_only"]) == (
        "Adder", "adds two", ["math", "demo"], "user", False)
    # Graphs the server saves carry each node's version.
    assert saved["graph"] == {"nodes": {"add": {"type": "test_add", "version": "1.0.0"}}, "edges": []}
    assert saved["workflow"] == {"name": "Adder", "exposedFields": [{"nodeId": "add", "fieldName": "a"}]}
    assert client.get(f"{W}/i/{wid}").json() == saved

    r = client.patch(f"{W}/i/{wid}", json={"name": "Adder 2", "workflow": None})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["name"], changed["description"], changed["tags"], changed["workflow"]) == (
        "Adder 2", "adds two", ["math", "demo"], None)
    assert changed["graph"] == saved["graph"] and changed["created_at"] == saved["created_at"]

    assert client.patch(f"{W}/i/{wid}", json={"name": None}).status_code == 422
    assert client.patch(f"{W}/i/{wid}", json={"color": "red"}).status_code == 422
    assert client.delete(f"{W}/i/{wid}").status_code == 204
    for r in (client.get(f"{W}/i/{wid}"), client.delete(f"{W}/i/{wid}"), client.patch(f"{W}/i/{wid}", json={})):
        assert r.status_code == 404 and wid in r.json()["detail"]


def test_the_list_pages_filters_and_ends_with_the_packs_workflows(client: TestClient[Litestar]) -> None:
    ids = {name: _save(client, name=name, tags=tags).json()["workflow_id"]
           for name, tags in (("beta", ["x"]), ("Alpha", ["y"]), ("gamma", ["x", "y"]))}
    page = client.get(W, params={"order_by": "name", "direction": "ASC", "per_page": 2}).json()
    assert (page["total"], page["pages"], page["per_page"], page["page"]) == (4, 2, 2, 0)
    assert [i["workflow_id"] for i in page["items"]] == [ids["Alpha"], ids["beta"]]
    last = client.get(W, params={"order_by": "name", "direction": "ASC", "per_page": 2, "page": 1}).json()
    assert [i["workflow_id"] for i in last["items"]] == [ids["gamma"], "pack:adder"]
    pack = last["items"][1]
    assert (pack["name"], pack["category"], pack["read_only"], pack["created_at"], pack["tags"]) == (
        "Zeta adder", "pack", True, None, ["math"])
    assert pack["pack"] == "library"  # an explicit plugin object has no distribution

    def names(**params: Any) -> list[str]:
        return [i["name"] for i in client.get(W, params={"order_by": "name", "direction": "ASC", **params}).json()[
            "items"]]

    assert names(tags="y") == ["Alpha", "gamma"]
    assert names(tags=["x", "math"]) == ["beta", "gamma", "Zeta adder"]
    assert names(query="ALP") == ["Alpha"]
    assert names(query="adder") == ["Zeta adder"]
    assert names(category="pack") == ["Zeta adder"]
    assert names(category="user") == ["Alpha", "beta", "gamma"]
    r = client.get(W, params={"per_page": 501})
    assert r.status_code == 422 and "max_workflow_page_size" in r.json()["detail"]
    assert client.get(W, params={"order_by": "colour"}).status_code == 400


def test_a_packs_workflow_can_be_read_and_run_but_not_changed(client: TestClient[Litestar]) -> None:
    got = client.get(f"{W}/i/pack:adder").json()
    assert got["graph"] == {"nodes": {"add": {"type": "test_add", "a": 1, "version": "1.0.0"}}}
    for r in (client.patch(f"{W}/i/pack:adder", json={"name": "mine"}), client.delete(f"{W}/i/pack:adder")):
        assert r.status_code == 409 and "read-only" in r.json()["detail"]
    assert client.get(f"{W}/i/pack:nope").status_code == 404
    r = client.post(f"{W}/i/pack:adder/enqueue", json={"values": {"add.b": 41}})
    assert r.status_code == 201, r.text
    item = client.get(f"{Q}/i/{r.json()['item_ids'][0]}").json()
    assert item["session"]["graph"]["nodes"]["add"] == {"type": "test_add", "a": 1, "b": 41, "version": "1.0.0"}


def test_run_a_saved_workflow_by_id_with_values_or_batch_data(client: TestClient[Litestar]) -> None:
    wid = _save(client, name="Adder").json()["workflow_id"]
    r = client.post(f"{W}/i/{wid}/enqueue", json={"values": {"add.a": 2, "add.b": 3}, "origin": "api"})
    assert r.status_code == 201, r.text
    assert r.json()["batch"]["origin"] == "api"
    item = client.get(f"{Q}/i/{r.json()['item_ids'][0]}").json()
    assert item["session"]["graph"]["nodes"]["add"] == {"type": "test_add", "a": 2, "b": 3, "version": "1.0.0"}

    data = [[{"node_path": "add", "field_name": "a", "items": [1, 2, 3]}]]
    r = client.post(f"{W}/i/{wid}/enqueue", json={"data": data, "runs": 2, "queue_id": "other"})
    assert r.status_code == 201 and r.json()["enqueued"] == 6 and r.json()["queue_id"] == "other"

    for body, status, words in (
        ({"values": {"nope.a": 1}}, 422, "has no node 'nope'"),
        ({"values": {"add": 1}}, 422, "'<node id>.<field>'"),
        ({"values": {"add.zzz": 1}}, 422, "zzz"),
        ({"values": {"add.a": 5000}}, 422, "add.a"),
        ({"values": {"add.type": "x"}}, 422, "not an input"),
        ({"runs": 0}, 422, "runs"),
    ):
        r = client.post(f"{W}/i/{wid}/enqueue", json=body)
        assert r.status_code == status and words in r.json()["detail"], (body, r.text)
    assert client.post(f"{W}/i/nope/enqueue", json={}).status_code == 404
    r = client.post(f"{W}/i/{wid}/enqueue", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]


def test_bad_workflows_are_refused_with_the_setting_that_bounds_them(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, max_workflows=2, max_workflow_bytes=400, max_workflow_tags=2)) as client:
        assert _save(client, name="").status_code == 422
        assert client.post(f"{W}/", json={"name": "x", "graph": {"nodes": []}}).status_code == 422
        assert client.post(f"{W}/", json={"name": "x", "graph": {"nodes": {}, "edges": {}}}).status_code == 422
        r = _save(client, name="x", tags=["a", "b", "c"])
        assert r.status_code == 422 and "INVOKE_HOST_MAX_WORKFLOW_TAGS=2" in r.json()["detail"]
        r = _save(client, name="x", tags=[" "])
        assert r.status_code == 422 and "tag" in r.json()["detail"]
        r = _save(client, name="x", workflow={"notes": "n" * 400})
        assert r.status_code == 413 and "INVOKE_HOST_MAX_WORKFLOW_BYTES=400" in r.json()["detail"]
        first = _save(client, name="one").json()["workflow_id"]
        r = client.patch(f"{W}/i/{first}", json={"workflow": {"notes": "n" * 400}})
        assert r.status_code == 413 and "max_workflow_bytes" in r.json()["detail"]
        assert _save(client, name="two").status_code == 200
        r = _save(client, name="three")
        assert r.status_code == 409 and "INVOKE_HOST_MAX_WORKFLOWS=2" in r.json()["detail"]
        assert client.get(W).json()["total"] == 3  # two saved, one a pack's


def test_a_saved_node_newer_than_installed_is_kept_and_refused_when_the_workflow_runs(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path)) as client:
        wid = client.post(f"{W}/", json={"name": "future", "graph": _graph(version="9.0.0")}).json()["workflow_id"]
        # Saved as given (a workflow may be saved for a pack release not installed here) ...
        assert client.get(f"{W}/i/{wid}").json()["graph"]["nodes"]["add"]["version"] == "9.0.0"
        # ... and refused when it is run, saying why.
        r = client.post(f"{W}/i/{wid}/enqueue", json={})
        assert r.status_code == 422 and "version 9.0.0, newer than version 1.0.0" in r.json()["detail"]
