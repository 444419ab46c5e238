"""Threat: an installed pack that takes over what the host and its first-party plugins own.

A pack may add nodes, routes and backends; it must not stop the host (``SystemExit`` from a hook), take a
first-party name because its distribution sorts first, serve a route under the host's own paths (``/schema``
answers without the token; a duplicate of a core route crashed start-up), or talk the middleware out of the
access token and cross-site checks through Litestar's handler options.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from invoke_host.app import create_app
from invoke_host.cli import main
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from tests.live_server import live_server

TOKEN = "isolation-token"


def _records(host) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {(r.name, r.distribution): r for r in host.registry.plugins}


def test_a_hook_raising_system_exit_is_a_recorded_failure_and_the_host_starts(with_packs: Path) -> None:
    host = build_host(HostConfig(plugins_allow=["exit_hook_pack", "good_pack"]), entry_points=True)
    records = {r.name: r for r in host.registry.plugins}
    assert records["exit_hook_pack"].status == "failed"
    assert records["exit_hook_pack"].error == "registration hook: SystemExit: 3"
    assert records["good_pack"].status == "loaded"
    assert "good_greet" in host.registry.invocations


def test_the_plugins_command_lists_a_pack_whose_hook_exits(with_packs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "exit_hook_pack,good_pack")
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "exit_hook_pack" in result.output and "error: registration hook: SystemExit: 3" in result.output


def test_first_party_plugins_keep_their_names_whatever_sorts_first(with_packs: Path) -> None:
    # aaa-takeover-pack sorts before every invoke-* distribution and offers node 'add' and backend 'sqlite',
    # and names a second entry point 'core_nodes'; its metadata calls it first-party (keywords).
    config = HostConfig(plugins_allow=["invoke-core-nodes", "invoke-sqlite-storage", "aaa-takeover-pack"])
    host = build_host(config, entry_points=True)
    records = _records(host)
    core = records[("core_nodes", "invoke-core-nodes")]
    takeover = records[("aaa_takeover", "aaa-takeover-pack")]
    impostor = records[("core_nodes", "aaa-takeover-pack")]
    assert core.status == "loaded" and core.first_party
    assert records[("sqlite_storage", "invoke-sqlite-storage")].first_party
    assert not takeover.first_party and not impostor.first_party

    assert host.registry.invocations["add"].plugin == "core_nodes"
    assert host.registry.invocations["add"].value.__module__.startswith("invoke_core_nodes.")
    assert host.registry.kind("storage_backends")["sqlite"].plugin == "sqlite_storage"
    assert host.storage is not None and type(host.storage).__module__.startswith("invoke_sqlite_storage.")

    assert takeover.status == "loaded" and takeover.registered["invocations"] == ["takeover_unique"]
    node_refusal, backend_refusal = takeover.refused
    assert node_refusal.startswith("node type 'add' from plugin 'aaa_takeover' (aaa-takeover-pack 0.1.0) is refused: ")
    assert "first-party plugin 'core_nodes' (invoke-core-nodes" in node_refusal
    assert "INVOKE_HOST_PLUGINS_BLOCK=core_nodes" in node_refusal
    assert backend_refusal.startswith("storage_backends 'sqlite' from plugin 'aaa_takeover'")
    assert "first-party plugin 'sqlite_storage'" in backend_refusal
    assert "INVOKE_HOST_PLUGINS_BLOCK=sqlite_storage" in backend_refusal

    assert impostor.status == "failed"
    assert "another plugin is already named 'core_nodes'" in (impostor.error or "")


# Every route of tests/fixtures/packs/route_pack that reaches into the host's paths, and why it must not.
REFUSED_ROUTES = {
    "GET /schema/route-pack": "/schema",
    "GET /schema/nested": "/schema",
    "GET /api/v1/app/version": "GET /api/v1/app/version",
    "GET /api/v1/queue/default/status": "/api/v1/queue",
    "POST /api/v1/nodes": "/api/v1/nodes",
    "GET /api/{version:str}/app/info": "/api/v1/app",
    "GET /{anything:path}": "/",
    "WEBSOCKET /ws": "plugin 'core_events'",
    "ASGI /": "/",
}


@pytest.fixture
def route_app(with_packs: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    config = HostConfig(root=tmp_path, token=TOKEN, plugins_allow=["invoke-core-events", "route_pack"])
    return create_app(config, entry_points=True)


def test_routes_under_the_hosts_paths_are_refused_one_by_one_and_the_host_starts(route_app) -> None:  # type: ignore[no-untyped-def]
    record = next(r for r in route_app.state.host.registry.plugins if r.name == "route_pack")
    assert record.status == "loaded"
    assert sorted(record.registered["routes"]) == ["GET /api/v1/route-pack/hello", "POST /api/v1/route-pack/echo"]
    refused = {line.split(" from plugin ")[0].removeprefix("route "): line for line in record.refused}
    assert set(refused) == set(REFUSED_ROUTES)
    for route, reason in REFUSED_ROUTES.items():
        assert reason in refused[route].split(" is refused: ", 1)[1], refused[route]
        assert "(invoke-route-pack 0.1.0)" in refused[route]


def test_no_refused_route_is_served_and_accepted_ones_keep_the_token(route_app) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with live_server(route_app) as server, httpx.Client(base_url=server.url) as client:
        for path in ("/schema/route-pack", "/schema/nested"):
            for headers in ({}, auth):
                answer = client.get(path, headers=headers)
                assert answer.status_code == 404 and "leak" not in answer.text, (path, answer.text)
        assert client.get("/api/v1/app/version").json()["version"] != "takeover"
        assert client.get("/api/v1/queue/default/status").status_code == 401
        assert "shadowed" not in client.get("/api/v1/queue/default/status", headers=auth).text
        assert client.post("/api/v1/nodes", headers=auth).status_code == 405
        assert client.get("/anything/at/all", headers=auth).status_code == 404
        assert client.get("/api/v2/app/info", headers=auth).status_code == 404

        # Litestar's opt / security / middleware options do not reach the host's middleware.
        assert client.get("/api/v1/route-pack/hello").status_code == 401
        assert client.get("/api/v1/route-pack/hello", headers=auth).json() == {"hello": "from route_pack"}
        foreign = client.post("/api/v1/route-pack/echo", json={"a": 1}, headers={**auth, "Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert client.post("/api/v1/route-pack/echo", json={"a": 1}, headers=auth).json() == {"a": 1}


def test_the_plugins_command_shows_each_refused_route(with_packs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "route_pack")
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "refused: route GET /schema/route-pack from plugin 'route_pack'" in result.output
    assert "refused: route GET /api/v1/app/version from plugin 'route_pack'" in result.output
