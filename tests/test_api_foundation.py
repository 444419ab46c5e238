"""The foundation endpoints, served from an app built with the real sample packs."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig

PACKS = ["good_pack", "broken_import_pack", "broken_hook_pack", "other_pack", "mixed_pack", "typo_pack"]


def _client() -> TestClient:  # type: ignore[type-arg]
    return TestClient(create_app(HostConfig(plugins_allow=PACKS), entry_points=True))


def test_version_plugins_and_nodes(with_packs: Path) -> None:
    with _client() as client:
        version = client.get("/api/v1/app/version").json()
        assert version["version"] and version["sdk_version"]

        plugins = {p["name"]: p for p in client.get("/api/v1/plugins").json()}
        assert plugins["good_pack"]["status"] == "loaded"
        assert plugins["good_pack"]["distribution"] == "invoke-good-pack"
        assert plugins["good_pack"]["registered"]["invocations"] == ["good_greet", "good_shout"]
        assert plugins["broken_import_pack"]["status"] == "failed"
        assert "a_module_that_is_not_installed" in plugins["broken_import_pack"]["error"]
        assert plugins["other_pack"]["refused"]

        nodes = {n["type"]: n for n in client.get("/api/v1/nodes").json()}
        assert set(nodes) == {"good_greet", "good_shout", "other_unique", "mixed_fine"}
        greet = nodes["good_greet"]
        assert greet["title"] == "Greet" and greet["tags"] == ["text"] and greet["category"] == "good"
        assert greet["version"] == "1.2.0" and greet["plugin"] == "good_pack"
        assert greet["description"] == "Greets someone by name."
        assert greet["inputs"]["properties"]["name"]["maxLength"] == 40
        assert greet["inputs"]["properties"]["name"]["orig_required"] is True
        assert greet["output_type"] == "good_string_output"
        assert "value" in greet["outputs"]["properties"]


def test_openapi_lists_every_registered_node_and_the_docs_page_loads(with_packs: Path) -> None:
    with _client() as client:
        doc = client.get("/schema/openapi.json").json()
        page = client.get("/schema")
    mapping = doc["components"]["schemas"]["AnyInvocation"]["discriminator"]["mapping"]
    assert set(mapping) == {"good_greet", "good_shout", "other_unique", "mixed_fine"}
    for ref in mapping.values():
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    assert "/api/v1/good/hello" in doc["paths"]
    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_plugin_route_is_mounted(with_packs: Path) -> None:
    with _client() as client:
        assert client.get("/api/v1/good/hello").json() == {"hello": "from good_pack"}
