"""The console's page and assets as the server serves them, with and without the plugin installed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import invoke_web_console.plugin
import pytest
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.security.headers import PAGE_POLICY

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "plugins" / "web_console" / "invoke_web_console" / "static"


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = create_app(HostConfig(root=tmp_path), [invoke_web_console.plugin], entry_points=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def test_the_console_takes_the_start_page_and_loads_only_its_own_assets(client: TestClient) -> None:  # type: ignore[type-arg]
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # The host's page policy: scripts and styles from this server only, no inline script; the page needs no more.
    assert page.headers["content-security-policy"] == PAGE_POLICY
    assert "<script>" not in page.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sorted(assets) == ["/console/app.css", "/console/app.js", "/schema"]
    script = client.get("/console/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.content == (STATIC / "app.js").read_bytes()
    assert client.get("/console/app.css").headers["content-type"].startswith("text/css")


def test_an_unchanged_asset_is_answered_304_and_a_changed_etag_gets_the_file(client: TestClient) -> None:  # type: ignore[type-arg]
    first = client.get("/console/app.js")
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/console/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/console/app.js", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == first.content
    # A browser keeps a 304's headers with the cached page: the page's policy must come with it, or a reload blocks
    # the page's own script.
    page = client.get("/")
    cached = client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert cached.status_code == 304 and cached.headers["content-security-policy"] == PAGE_POLICY


@pytest.mark.parametrize("name", ["nothing.js", "plugin.py", "static_routes.py", "app", "index.html.bak"])
def test_only_the_bundles_own_files_are_served(client: TestClient, name: str) -> None:  # type: ignore[type-arg]
    answer = client.get(f"/console/{name}")
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"/console has no file named {name!r}"


@pytest.mark.parametrize("name", ["..%2Fplugin.py", "..%2F..%2Finvoke_web_console%2Fplugin.py", "%2E%2E/plugin.py"])
def test_a_path_out_of_the_static_folder_reaches_nothing(client: TestClient, name: str) -> None:  # type: ignore[type-arg]
    answer = client.get(f"/console/{name}")
    assert answer.status_code == 404
    assert b"hookimpl" not in answer.content


def test_without_the_console_the_start_page_is_the_links_page(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path), entry_points=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get("/")
        assert page.status_code == 200 and "/console/app.js" not in page.text
        assert '<a href="/schema">' in page.text
        assert client.get("/console/app.js").status_code == 404


@pytest.mark.timeout(600)
def test_the_committed_bundle_is_what_the_sources_build() -> None:
    # The bundle is committed so the plugin installs without node; this fails when a source changed without a
    # rebuild (or the bundle was edited by hand). It also type-checks the sources against today's OpenAPI.
    run = subprocess.run([str(REPO / "scripts" / "build-console"), "--check"], capture_output=True, text=True,
                         timeout=590)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "matches its sources" in run.stdout
