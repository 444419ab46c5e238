"""InvokeAI-style packs, wrapped and pip-installed, load through their entry points and run through the queue
over HTTP beside the host's own nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.live_server import live_server, wait_for

pytestmark = pytest.mark.usefixtures("with_compat_packs")


def _run(client: httpx.Client, graph: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": graph}})
    assert r.status_code == 201, r.text
    [item_id] = r.json()["item_ids"]

    def finished() -> bool:
        status = client.get(f"/api/v1/queue/default/i/{item_id}").json()["status"]
        return bool(status in ("completed", "failed", "canceled"))

    wait_for(finished, what=f"queue item {item_id} to finish")
    item: dict[str, Any] = client.get(f"/api/v1/queue/default/i/{item_id}?include=session").json()
    return item


def _outputs(item: dict[str, Any]) -> dict[str, Any]:
    session = item["session"]
    return {source: session["results"][prepared[0]] for source, prepared in session["source_results"].items()}


@pytest.fixture
def client(tmp_path: Path) -> Any:
    app = create_app(HostConfig(root=tmp_path / "root"), entry_points=True)
    with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def test_a_wrapped_pack_runs_in_one_graph_with_the_hosts_nodes(client: httpx.Client) -> None:
    graph = {
        "nodes": {
            "blank": {"id": "blank", "type": "blank_image", "width": 20, "height": 10,
                      "color": {"r": 90, "g": 180, "b": 250, "a": 255}},
            "meta": {"id": "meta", "type": "retro_metadata", "prompt": "a castle"},
            "poster": {"id": "poster", "type": "retro_posterize", "bits": 1, "board": {"board_id": "b1"}},
            "describe": {"id": "describe", "type": "retro_prompt"},
            "styled": {"id": "styled", "type": "retro_prompt", "prompt": "a castle"},
        },
        "edges": [
            {"source": {"node_id": "blank", "field": "image"}, "destination": {"node_id": "poster", "field": "image"}},
            {"source": {"node_id": "meta", "field": "metadata"},
             "destination": {"node_id": "poster", "field": "metadata"}},
            {"source": {"node_id": "poster", "field": "image"},
             "destination": {"node_id": "describe", "field": "image"}},
        ],
    }
    item = _run(client, graph)
    assert item["status"] == "completed", item
    out = _outputs(item)
    poster = out["poster"]
    assert poster["type"] == "image_output" and (poster["width"], poster["height"]) == (20, 10)
    name = poster["image"]["image_name"]
    described = json.loads(out["describe"]["value"])
    # Every saved image also records the run manifest (docs/images.md): the wrapped pack is in it by its
    # distribution, like any plugin.
    manifest = described["metadata"].pop("invoke_host_run_manifest")
    assert any(p["distribution"] == "invokeai-pack-retro-tools" for p in manifest["plugins"]), manifest
    # get_dto, get_metadata and get_path seen from the node; the node's metadata input was saved with the image;
    # the board was accepted and ignored (this host keeps no boards).
    assert described == {"size": [20, 10], "metadata": {"positive_prompt": "a castle", "pack": "retro-tools"},
                         "file": Path(described["file"]).name, "exists": True, "board_id": None}
    assert described["file"].startswith(name.rsplit(".", 1)[0])
    assert out["styled"] == {"type": "string_output", "value": "a castle, pixel art"}
    metadata = client.get(f"/api/v1/images/i/{name}/metadata")
    assert metadata.status_code == 200
    assert "a castle" in metadata.text
    # Posterized to 1 bit per channel: (90, 180, 250) -> (0, 128, 128).
    png = client.get(f"/api/v1/images/i/{name}/full")
    assert png.status_code == 200
    assert Image.open(BytesIO(png.content)).convert("RGB").getpixel((3, 3)) == (0, 128, 128)


def test_a_node_on_an_old_import_path_runs(client: httpx.Client) -> None:
    item = _run(client, {"nodes": {"o": {"id": "o", "type": "old_style_category", "upper": True}}, "edges": []})
    assert item["status"] == "completed", item
    assert _outputs(item)["o"] == {"type": "string_output", "value": "GENERAL"}


def test_a_color_input_and_the_default_version_work(client: httpx.Client) -> None:
    item = _run(client, {"nodes": {"s": {"id": "s", "type": "retro_solid", "width": 3, "height": 2,
                                         "color": {"r": 1, "g": 2, "b": 3, "a": 4}}}, "edges": []})
    assert item["status"] == "completed", item
    image = _outputs(item)["s"]
    assert (image["width"], image["height"]) == (3, 2)
    png = client.get(f"/api/v1/images/i/{image['image']['image_name']}/full").content
    assert Image.open(BytesIO(png)).getpixel((0, 0)) == (1, 2, 3, 4)


def test_a_wrong_output_names_what_was_returned_and_what_was_declared(client: httpx.Client) -> None:
    item = _run(client, {"nodes": {"w": {"id": "w", "type": "retro_wrong_output"}}, "edges": []})
    assert item["status"] == "failed"
    message = item["error_message"] if item.get("error_message") else json.dumps(item)
    assert "returned invoke_sdk.outputs.IntegerOutput (output type 'integer_output')" in message, message
    assert "declared to return invoke_sdk.outputs.StringOutput (output type 'string_output')" in message


def test_the_schema_keeps_invokeais_ui_arguments(client: httpx.Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    nodes = {c["properties"]["type"].get("const", c["properties"]["type"].get("default")): c
             for c in schema["components"]["schemas"].values()
             if isinstance(c.get("properties", {}).get("type"), dict)}
    poster = nodes["retro_posterize"]
    assert poster["classification"] == "stable" and poster["node_pack"] == "retro_tools"
    assert poster["bottleneck"] == "gpu"
    props = poster["properties"]
    assert props["bits"]["ui_order"] == 1 and props["bits"]["maximum"] == 8
    assert props["mode"]["ui_choice_labels"] == {"rgb": "Color", "gray": "Grayscale"}
    assert props["note"]["ui_component"] == "textarea"
    # InputField(default=None) on `str` accepts None, as in InvokeAI.
    assert {"type": "null"} in props["note"]["anyOf"]
    assert props["metadata"]["invokeai_field_kind"] == "internal" and props["metadata"]["input"] == "connection"
    assert nodes["retro_solid"]["classification"] == "beta"


def test_a_printing_pack_leaves_plugins_json_and_openapi_stdout_clean(compat_site: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(compat_site), "INVOKE_HOST_ROOT": str(tmp_path)}
    cli = [sys.executable, "-m", "invoke_host.cli"]
    plugins = subprocess.run([*cli, "plugins", "--json"], env=env, capture_output=True, text=True, check=True)
    loaded = json.loads(plugins.stdout)
    records = loaded if isinstance(loaded, list) else loaded["plugins"]
    assert {r["name"]: r["status"] for r in records if r["name"] in ("retro_tools", "old_paths_pack")} == {
        "retro_tools": "loaded", "old_paths_pack": "loaded"}
    assert "retro-tools: 5 nodes loaded" in plugins.stderr
    openapi = subprocess.run([*cli, "openapi"], env=env, capture_output=True, text=True, check=True)
    assert "retro_posterize" in json.dumps(json.loads(openapi.stdout))
    assert "retro-tools: 5 nodes loaded" in openapi.stderr


def test_a_pack_downloads_and_loads_remote_weights_through_the_hosts_download_cache(tmp_path: Path) -> None:
    """InvokeAI's context.models.download_and_cache_model / load_remote_model, as its annotator nodes call them:
    through the queue, the file downloaded once (held to the address policy: loopback allowed here explicitly),
    kept under <models>/.download_cache, and found there by the next run with no request."""
    from tests.models.servers import ModelServer

    weights = b"\x89WEIGHTS" + bytes(range(256)) * 40
    app = create_app(HostConfig(root=tmp_path / "root", download_allow_loopback=True), entry_points=True)
    with ModelServer() as files, live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        files.files["annotator.pth"] = weights
        url = f"{files.url}/files/annotator.pth"
        graph = {"nodes": {"fetch": {"id": "fetch", "type": "retro_fetch_weights", "source": url},
                           "load": {"id": "load", "type": "retro_load_remote", "source": url}}, "edges": []}
        item = _run(http, graph)
        assert item["status"] == "completed", item.get("error_traceback")
        out = _outputs(item)
        name, size, path = out["fetch"]["value"].split("|")
        assert (name, int(size)) == ("annotator.pth", len(weights))
        cache = (tmp_path / "root" / "models" / ".download_cache").resolve()
        assert Path(path).resolve().is_relative_to(cache) and Path(path).read_bytes() == weights
        assert out["load"]["value"] == f"{len(weights)}|{weights[:8].hex()}"
        assert [r for r in files.requests if r[1] == "/files/annotator.pth"] == [("GET", "/files/annotator.pth", None)]
        again = _run(http, {**graph, "nodes": {"load": {**graph["nodes"]["load"], "id": "load"}}})
        assert again["status"] == "completed" and _outputs(again)["load"]["value"] == out["load"]["value"]
        assert len([r for r in files.requests if r[1] == "/files/annotator.pth"]) == 1


def test_a_pack_download_refused_by_the_address_policy_fails_the_node_naming_the_setting(client: httpx.Client) -> None:
    graph = {"nodes": {"fetch": {"id": "fetch", "type": "retro_fetch_weights",
                                 "source": "http://127.0.0.1:9/files/x.pth"}}, "edges": []}
    item = _run(client, graph)
    assert item["status"] == "failed"
    assert "download_allow_loopback (INVOKE_HOST_DOWNLOAD_ALLOW_LOOPBACK=true)" in item["error_message"]
