"""Node versions and migrations with a real pack installed by pip: a queue item enqueued under 1.0.0 still runs after
the pack is upgraded to 2.0.0, which renamed the node's input and registers a migration."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.waiting import wait_until

Q = "/api/v1/queue/default"

NODES_V1 = '''
from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, OutputField, invocation, invocation_output


@invocation_output("mig_text_output")
class TextOutput(BaseInvocationOutput):
    text: str = OutputField()


@invocation("mig_echo", version="1.0.0")
class Echo(BaseInvocation):
    text: str = InputField(default="")

    def invoke(self, context) -> TextOutput:
        return TextOutput(text="v1:" + self.text)
'''

NODES_V2 = '''
from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, OutputField, invocation, invocation_output


@invocation_output("mig_text_output")
class TextOutput(BaseInvocationOutput):
    text: str = OutputField()


@invocation("mig_echo", version="2.0.0")
class Echo(BaseInvocation):
    message: str = InputField(default="")
    loud: bool = InputField(default=False)

    def invoke(self, context) -> TextOutput:
        return TextOutput(text="v2:" + (self.message.upper() if self.loud else self.message))
'''

PLUGIN_V1 = '''
from invoke_sdk import hookimpl


@hookimpl
def register_invocations(register):
    from mig_pack.nodes import Echo
    register(Echo)
'''

PLUGIN_V2 = PLUGIN_V1 + '''

def _text_to_message(node):
    node = dict(node)
    node["message"] = node.pop("text", "")
    return node


@hookimpl
def register_node_migrations(register):
    register("mig_echo", "1.0.0", "2.0.0", _text_to_message)
'''


def _project(root: Path, version: str, nodes: str, plugin: str) -> Path:
    project = root / f"mig-pack-{version}"
    (project / "mig_pack").mkdir(parents=True)
    (project / "pyproject.toml").write_text(textwrap.dedent(f'''
        [build-system]
        requires = ["setuptools>=65"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "mig-pack"
        version = "{version}"
        dependencies = ["invoke-sdk"]

        [project.entry-points."invoke_host.plugins"]
        mig_pack = "mig_pack.plugin"

        [tool.setuptools]
        packages = ["mig_pack"]
    '''))
    (project / "mig_pack" / "__init__.py").write_text("")
    (project / "mig_pack" / "nodes.py").write_text(nodes)
    (project / "mig_pack" / "plugin.py").write_text(plugin)
    return project


def _pip_install(target: Path, project: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--upgrade", "--target", str(target), str(project)],
        check=True,
    )


def _pip_upgrade(target: Path, project: Path) -> None:
    """What ``pip install -U`` does in an environment: uninstall the old release, install the new one. (``pip install
    --target`` only adds: it would leave the old release's dist-info beside the new one.)"""
    for old in [target / "mig_pack", *target.glob("mig_pack-*.dist-info")]:
        shutil.rmtree(old)
    _pip_install(target, project)


def _forget_pack() -> None:
    for name in [m for m in sys.modules if m == "mig_pack" or m.startswith("mig_pack.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    target = tmp_path / "site"
    monkeypatch.syspath_prepend(str(target))
    yield target
    _forget_pack()


def _app(root: Path) -> Litestar:
    return create_app(
        HostConfig(root=root, plugins_allow=["mig_pack"]),
        plugins=[("sqlite_storage", sqlite_plugin), ("core_events", core_events_plugin)],
        entry_points=True,
    )


def _enqueue(client: TestClient[Litestar], graph: dict[str, Any]) -> Any:
    return client.post(f"{Q}/enqueue_batch", content=json.dumps({"batch": {"graph": graph}}),
                       headers={"content-type": "application/json"})


def _echo(**fields: Any) -> dict[str, Any]:
    return {"nodes": {"e": {"type": "mig_echo", **fields}}, "edges": []}


def test_a_pending_item_enqueued_under_1_0_0_runs_after_the_pack_is_upgraded_to_2_0_0(
    tmp_path: Path, site: Path
) -> None:
    _pip_install(site, _project(tmp_path / "src", "1.0.0", NODES_V1, PLUGIN_V1))
    root = tmp_path / "root"
    with TestClient(_app(root)) as client:
        assert client.put(f"{Q}/processor/pause").status_code == 200
        r = _enqueue(client, _echo(text="hi"))
        assert r.status_code == 201, r.text
        item_id = r.json()["item_ids"][0]
        stored = client.get(f"{Q}/i/{item_id}").json()
        # The stored graph names the version it was enqueued for: the absent key meant "1.0.0" then.
        assert stored["session"]["graph"]["nodes"]["e"] == {"type": "mig_echo", "text": "hi", "version": "1.0.0"}
        assert stored["status"] == "pending"

    _forget_pack()
    _pip_upgrade(site, _project(tmp_path / "src", "2.0.0", NODES_V2, PLUGIN_V2))
    with TestClient(_app(root)) as client:
        plugins = {p["name"]: p for p in client.get("/api/v1/plugins").json()}
        assert plugins["mig_pack"]["version"] == "2.0.0"
        assert client.put(f"{Q}/processor/resume").status_code == 200

        def finished() -> bool:
            return client.get(f"{Q}/i/{item_id}").json()["status"] not in ("pending", "in_progress")

        wait_until(finished, "the pending item to run after the upgrade", timeout=30)
        item = client.get(f"{Q}/i/{item_id}").json()
        assert item["status"] == "completed", item
        results = client.get(f"{Q}/i/{item_id}/results").json()
        assert [r["output"] for r in results["items"]] == [{"type": "mig_text_output", "text": "v2:hi"}]

        # A new graph written for 1.0.0 is migrated before validation too; one for the installed version is as is.
        check = client.post("/api/v1/graphs/validate", json=_echo(version="1.0.0", text="old"))
        assert check.json() == {"valid": True, "errors": []}
        assert client.post("/api/v1/graphs/validate", json=_echo(version="2.0.0", message="x")).json()["valid"]
        # Without its version the old field is simply not there: what the migration exists for.
        stale = client.post("/api/v1/graphs/validate", json=_echo(text="old"))
        assert stale.status_code == 422 and stale.json()["extra"]["errors"][0]["field"] == "text"

        newer = client.post("/api/v1/graphs/validate", json=_echo(version="3.1.0", message="x"))
        assert newer.status_code == 422
        assert newer.json()["extra"]["errors"] == [{
            "node_id": "e", "field": "version",
            "message": "node 'e' (type 'mig_echo') is version 3.1.0, newer than version 2.0.0 installed by "
            "mig-pack 2.0.0; upgrade mig-pack 2.0.0 to a release with that version, or save the graph again from "
            "this server",
        }]
        r = _enqueue(client, _echo(version="3.1.0", message="x"))
        assert r.status_code == 422
        assert "version 3.1.0, newer than version 2.0.0 installed by mig-pack 2.0.0" in r.json()["detail"]

        no_path = client.post("/api/v1/graphs/validate", json=_echo(version="0.9.0", text="x")).json()["extra"]
        assert no_path["errors"][0]["node_id"] == "e"
        assert "is version 0.9.0, and mig-pack 2.0.0 installs version 2.0.0 with no migration from 0.9.0" in (
            no_path["errors"][0]["message"])
        bad = client.post("/api/v1/graphs/validate", json=_echo(version="two", message="x")).json()["extra"]
        assert "'two' is not a version of the form MAJOR.MINOR.PATCH" in bad["errors"][0]["message"]
