"""A plugin's static folder answers without the access token; nothing else a plugin gives does.

The console (plugins/web_console) declares its page and assets as ``invoke_sdk.StaticAssets``; the host serves
them with its own handlers, which the token middleware knows by function. A pack that tries to make anything else
public (a data path, a path over the host's, a route handler) is refused at start with a message saying why.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

import invoke_web_console.plugin
import pytest
from click.testing import CliRunner
from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterRoute, RegisterStaticAssets
from invoke_sdk.static_assets import StaticAssets
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.cli import main
from invoke_host.config import HostConfig
from invoke_host.security import PUBLIC_PATHS

TOKEN = "s3cret-static-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _pack(name: str, *, assets: list[Any] | None = None, routes: list[Any] | None = None) -> tuple[str, Any]:
    module = types.ModuleType(name)
    if assets is not None:

        @hookimpl
        def register_static_assets(register: RegisterStaticAssets) -> None:
            for item in assets:
                register(item)

        module.register_static_assets = register_static_assets  # type: ignore[attr-defined]
    if routes is not None:

        @hookimpl
        def register_routes(register: RegisterRoute) -> None:
            for route in routes:
                register(route)

        module.register_routes = register_routes  # type: ignore[attr-defined]
    return name, module


@get("/api/v1/secretpack/data", sync_to_thread=False)
def secret_data() -> dict[str, str]:
    return {"secret": "yes"}


@get("/secretpack/{name:str}", sync_to_thread=False)
def secret_by_name(name: FromPath[str]) -> dict[str, str]:
    return {"secret": name}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(?::(\w+))?\}", lambda m: "1" if m.group(1) == "int" else "x", path)


def _app(tmp_path: Path, *packs: Any, token: str | None = TOKEN) -> Litestar:
    return create_app(HostConfig(root=tmp_path, token=token), [invoke_web_console.plugin, *packs], entry_points=False)


def _refused(app: Litestar, pack: str) -> list[str]:
    host = app.state["host"]
    return next(r.refused for r in host.registry.plugins if r.name == pack)


def test_with_a_token_the_console_loads_and_every_other_route_still_refuses(tmp_path: Path) -> None:
    app = _app(tmp_path, _pack("secretpack", routes=[secret_data]))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get("/")
        assert page.status_code == 200 and '<script type="module" src="/console/app.js">' in page.text
        for name in ("app.js", "app.css"):
            assert client.get(f"/console/{name}").status_code == 200, name
        assert client.get("/console/nothing.js").status_code == 404
        # Only reading is public: the static paths take no other method, with or without the token.
        assert client.post("/console/app.js").status_code in (401, 405)
        static = {"/", "/console/{name:str}"}
        walked = 0
        for route in app.routes:
            methods = sorted(set(getattr(route, "methods", set())) - {"OPTIONS", "HEAD"})
            for method in methods:
                path = _concrete(route.path)
                if route.path in static or any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS):
                    continue
                walked += 1
                anonymous = client.request(method, path)
                assert anonymous.status_code == 401, f"{method} {path} answered {anonymous.status_code} with no token"
                assert client.request(method, path, headers=BEARER).status_code != 401, (method, path)
        assert walked >= 40  # the whole API was walked, the pack's route too
        assert client.get("/api/v1/secretpack/data").status_code == 401


def test_without_the_console_the_start_page_needs_the_token(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path, token=TOKEN), entry_points=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/").status_code == 401
        assert client.get("/console/app.js").status_code == 404


@pytest.mark.parametrize(
    ("assets", "why"),
    [
        (StaticAssets(path="/api/v1/images", package="invoke_web_console"),
         "GET /api/v1/images/{name:str} would answer without the access token, but paths under /api/v1/images are "
         "reserved for the host"),
        (StaticAssets(path="/secretpack", package="invoke_web_console"),
         "GET /secretpack/{name:str} would answer without the access token, but"),
        (StaticAssets(path="/mine", package="invoke_web_console", pages={"/api/v1/queue/default/status": "index.html"}),
         "GET /api/v1/queue/default/status would answer without the access token, but"),
        (StaticAssets(path="/mine", package="invoke_web_console", pages={"/": "index.html"}),
         "GET / would answer without the access token, but"),
        (StaticAssets(path="/mine", package="invoke_web_console", folder="nowhere"),
         "package 'invoke_web_console' has no folder 'nowhere'"),
        (secret_data, "is not an invoke_sdk.StaticAssets: only a folder of files that the host serves itself answers "
                      "without the access token; a route handler goes to register_routes"),
    ],
    ids=["host-namespace", "over-a-data-route", "data-page", "over-the-console", "no-folder", "route-handler"],
)
def test_a_pack_cannot_make_a_data_route_public(tmp_path: Path, assets: Any, why: str) -> None:
    app = _app(tmp_path, _pack("secretpack", routes=[secret_by_name]), _pack("sneaky", assets=[assets]))
    refused = _refused(app, "sneaky")
    assert len(refused) == 1 and why in refused[0], refused
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/secretpack/x").status_code == 401
        assert client.get("/api/v1/images/i/x").status_code == 401
        assert client.get("/api/v1/queue/default/status").status_code == 401
        assert client.get("/").status_code == 200  # the console's page, which the refused one did not take


def test_a_bad_declaration_is_refused_when_it_is_made() -> None:
    for path in ("console", "/console/", "/con/{name}", "/../x"):
        with pytest.raises(ValueError, match="is not a plain path"):
            StaticAssets(path=path, package="p")
    with pytest.raises(ValueError, match="not a plain file name"):
        StaticAssets(path="/p", package="p", pages={"/": "../secret.html"})


def test_plugins_lists_what_each_plugin_made_public(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "web_console")
    monkeypatch.setenv("INVOKE_HOST_ROOT", str(tmp_path))
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    console = next(p for p in json.loads(result.output) if p["name"] == "web_console")
    public = ["GET /console/<file> (invoke_web_console/static), GET / (index.html)"]
    assert console["registered"]["static_assets"] == public
