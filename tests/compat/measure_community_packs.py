"""Measure which of InvokeAI's listed community packs load and run here (the table in docs/invokeai-packs.md).

Not a test (it needs the packs' sources, fetched by hand): ``python -m tests.compat.measure_community_packs
SOURCES OUT`` where SOURCES holds one folder per pack repository. Each pack is wrapped with `invoke-host packs
wrap`, pip-installed (no dependencies fetched) into OUT/site, loaded through its entry point in one host, and
each of its nodes is run once through the queue over HTTP: image inputs fed by a `blank_image` node, other
required inputs given a plain value. Prints one JSON line per pack.
"""

from __future__ import annotations

import json
import sys
import threading
import typing
import uuid
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from invoke_host.api.router import api_routers
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.engine.runner import run_graph
from invoke_host.host import build_host
from invoke_host.packs_cli import PackError, WrappedPack, package_name, read_requirements, wrap_pack
from tests.conftest import pip_install_target


def _pack_folder(repo: Path) -> Path | None:
    if (repo / "__init__.py").is_file():
        return repo
    inits = sorted(p.parent for p in repo.glob("*/__init__.py") if p.parent.name not in ("tests", "invokeai"))
    return inits[0] if len(inits) == 1 else None


def _value_for(annotation: Any) -> tuple[str, Any] | None:
    """('edge', None) for an image input, ('value', v) for a plain one, None when no plain value fits."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, __import__("types").UnionType) and args:
        return _value_for(args[0])
    if origin is typing.Literal:
        return ("value", typing.get_args(annotation)[0])
    name = getattr(annotation, "__name__", "")
    if name == "ImageField":
        return ("edge", None)
    simple = {str: "a cat", int: 1, float: 0.5, bool: False}
    if annotation in simple:
        return ("value", simple[annotation])
    return None


def _graph(node_cls: Any) -> dict[str, Any] | None:
    info = node_cls.invocation_info()
    nodes: dict[str, Any] = {"n": {"id": "n", "type": info.type}}
    edges = []
    for name, field in node_cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("field_kind") != "input":
            continue
        found = _value_for(field.annotation)
        if found is None and not extra.get("orig_required"):
            continue
        if found is None:
            return None
        kind, value = found
        if kind == "value" and not extra.get("orig_required"):
            continue  # optional plain inputs keep their defaults; optional images are fed, nodes often need them
        if kind == "edge":
            nodes["blank"] = {"id": "blank", "type": "blank_image", "width": 64, "height": 64,
                              "color": {"r": 120, "g": 90, "b": 200, "a": 255}}
            edges.append({"source": {"node_id": "blank", "field": "image"},
                          "destination": {"node_id": "n", "field": name}})
        else:
            nodes["n"][name] = value
    return {"nodes": nodes, "edges": edges}


NODE_TIMEOUT_S = 60.0
"""A node still running after this long is recorded as not finishing (its thread is left behind)."""


def _run_with_timeout(host: Any, graph: dict[str, Any], timeout: float) -> tuple[str, str]:
    """Run the graph headless in a thread of its own, so a node that never returns blocks nothing else."""
    outcome: list[tuple[str, str]] = []

    def run() -> None:
        try:
            result = run_graph(host, graph, session_id=uuid.uuid4().hex)
            errors = "; ".join(f"{e.error_type}: {e.message}" for e in result.errors)
            outcome.append((result.status, errors))
        except Exception as exc:  # noqa: BLE001 - a graph the host refuses is a result too
            outcome.append(("refused", f"{type(exc).__name__}: {exc}"))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else ("timeout", f"did not finish within {timeout:g} s")


def main(sources: Path, out: Path) -> None:
    wrapped: dict[str, Any] = {}
    for repo in sorted(p for p in sources.iterdir() if p.is_dir()):
        folder = _pack_folder(repo)
        if folder is None:
            print("RESULT " + json.dumps({"pack": repo.name, "loads": False, "why": "no folder with __init__.py"}))
            continue
        distribution = f"invokeai-pack-{repo.name.lower().replace('+', '-').replace('_', '-')}"
        package = folder.name if folder != repo else package_name(folder)
        if (out / distribution).is_dir():  # wrapped and installed by an earlier run
            wrapped[package] = (repo.name, WrappedPack(out / distribution, distribution, package,
                                                       read_requirements(folder)))
            continue
        try:
            w = wrap_pack(folder, out, package=folder.name if folder != repo else None,
                          distribution=f"invokeai-pack-{repo.name.lower().replace('+', '-').replace('_', '-')}")
        except PackError as exc:
            print("RESULT " + json.dumps({"pack": repo.name, "loads": False, "why": str(exc.message)}))
            continue
        pip_install_target(out / "site", w.project)
        wrapped[w.package] = (repo.name, w)
    sys.path.insert(0, str(out / "site"))
    host = build_host(HostConfig(root=out / "root"), entry_points=True, core_routes=api_routers())
    with TestClient(create_app(host=host)) as client:
        listed = client.get("/api/v1/plugins").json()
        plugins = {p["name"]: p for p in (listed if isinstance(listed, list) else listed["plugins"])}
        for package, (repo, w) in wrapped.items():
            record = plugins.get(package, {})
            nodes = [reg.value for reg in host.registry.invocations.values()
                     if reg.value.__module__.split(".")[0] == package]
            ran, failed = [], {}
            for node in nodes:
                graph = _graph(node)
                node_type = node.invocation_info().type
                if graph is None:
                    failed[node_type] = "needs an input this script cannot make"
                    continue
                status, message = _run_with_timeout(host, graph, NODE_TIMEOUT_S)
                if status == "completed":
                    ran.append(node_type)
                else:
                    failed[node_type] = message[:300]
            print("RESULT " + json.dumps({"pack": repo, "package": package, "status": record.get("status"),
                              "error": (record.get("error") or "")[-300:], "nodes": len(nodes), "ran": ran,
                              "failed": failed, "requirements": list(w.requirements)}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
