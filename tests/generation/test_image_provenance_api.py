"""Through a real server: a batch's workflow and values reach each image, the generation nodes fill InvokeAI's core
metadata on their own, every image records its run manifest, and replaying an image says what differs first."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import invoke_core_nodes.plugin
import invoke_diffusers_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sd_probers.plugin
import invoke_sqlite_storage.plugin
import pytest
from conftest import TinyModels
from gen_graphs import edge, txt2latents_graph
from invoke_sdk.images import RUN_MANIFEST_KEY
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydantic import BaseModel, ConfigDict

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.live_server import live_server
from tests.waiting import wait_until

Q = "/api/v1/queue/default"
IMAGES = "/api/v1/images"
SEEDS = [11, 12]
LORA_WEIGHT = 0.6


# -- InvokeAI's reading rules, mirrored ---------------------------------------------------------------------------
# invokeai/app/invocations/model.py ModelIdentifierField, metadata.py LoRAMetadataField and CoreMetadataInvocation
# (the fields "recall parameters" reads; extra keys allowed as InvokeAI allows them), validated strictly so an int
# written as a float or a missing hash fails as it would there.


class InvokeAIModelIdentifier(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    key: str
    hash: str
    name: str
    base: str
    type: str
    submodel_type: str | None = None


class InvokeAILoRAMetadata(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    model: InvokeAIModelIdentifier
    weight: float


class InvokeAICoreMetadata(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    generation_mode: str | None = None
    positive_prompt: str | None = None
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    rand_device: str | None = None
    cfg_scale: float | None = None
    cfg_rescale_multiplier: float | None = None
    steps: int | None = None
    scheduler: str | None = None
    clip_skip: int | None = None
    model: InvokeAIModelIdentifier | None = None
    loras: list[InvokeAILoRAMetadata] | None = None
    strength: float | None = None
    vae: InvokeAIModelIdentifier | None = None


# InvokeAI's GENERATION_MODES for the SD families, and the scheduler names its metadata recall accepts that we offer.
INVOKEAI_MODES = {"txt2img", "img2img", "inpaint", "outpaint", "sdxl_txt2img", "sdxl_img2img", "sdxl_inpaint",
                  "sdxl_outpaint"}


def read_like_invokeai(png: bytes) -> tuple[InvokeAICoreMetadata, dict[str, Any], dict[str, Any]]:
    """What InvokeAI's ``extract_metadata_from_image`` keeps of a PNG, parsed: metadata, graph, workflow.

    Its rules: the metadata chunk must be JSON of a dict; the graph chunk a dict whose ``nodes`` is a dict and
    ``edges`` a list; the workflow chunk JSON (validated there as WorkflowWithoutID).
    """
    info = Image.open(io.BytesIO(png)).info
    metadata = json.loads(info["invokeai_metadata"])
    assert isinstance(metadata, dict)
    graph = json.loads(info["invokeai_graph"])
    assert isinstance(graph, dict) and isinstance(graph["nodes"], dict) and isinstance(graph["edges"], list)
    workflow = json.loads(info["invokeai_workflow"])
    return InvokeAICoreMetadata.model_validate(metadata), graph, workflow


# -- the server -----------------------------------------------------------------------------------------------------


def workflow_for(graph: dict[str, Any]) -> dict[str, Any]:
    """An InvokeAI-shaped workflow of the graph: one invocation node per graph node, its direct inputs as values."""
    nodes = []
    for node_id, node in graph["nodes"].items():
        inputs = {k: {"name": k, "label": "", "value": v} for k, v in node.items() if k not in ("type", "id")}
        nodes.append({"id": node_id, "type": "invocation", "position": {"x": 0, "y": 0},
                      "data": {"id": node_id, "type": node["type"], "version": "1.0.0", "label": "", "notes": "",
                               "isOpen": True, "isIntermediate": False, "useCache": True, "inputs": inputs}})
    return {"name": "tiny txt2img", "author": "", "description": "", "version": "1.0.0", "contact": "", "tags": "",
            "notes": "", "exposedFields": [], "meta": {"version": "3.0.0", "category": "user"}, "nodes": nodes,
            "edges": []}


@dataclass
class Served:
    client: httpx.Client
    main_key: str
    lora_key: str
    graph: dict[str, Any]
    images: list[dict[str, Any]]
    """The images of the two-seed batch, in seed order."""


def install(client: httpx.Client, source: Path, overrides: dict[str, Any]) -> str:
    job = client.post("/api/v2/models/install", params={"source": str(source), "inplace": "true"}, json=overrides)
    assert job.status_code in (200, 201), job.text
    url = f"/api/v2/models/install/{job.json()['id']}"
    wait_until(lambda: client.get(url).json()["status"] in {"completed", "error"}, "the install", timeout=120)
    done = client.get(url).json()
    assert done["status"] == "completed", done
    key: str = done["config_out"]["key"]
    return key


def run_batch(client: httpx.Client, batch: dict[str, Any]) -> list[int]:
    r = client.post(f"{Q}/enqueue_batch", json={"batch": batch})
    assert r.status_code == 201, r.text
    ids: list[int] = r.json()["item_ids"]
    wait_until(lambda: all(client.get(f"{Q}/i/{i}").json()["status"] in {"completed", "failed"} for i in ids),
               "the batch to finish", timeout=300)
    for i in ids:
        item = client.get(f"{Q}/i/{i}").json()
        assert item["status"] == "completed", item.get("error_message")
    return ids


def images_of(client: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    page = client.get(IMAGES, params={"limit": 100, "is_intermediate": "false"}).json()
    return [i for i in page["items"] if i["session_id"] == session_id]


def the_image_of(client: httpx.Client, item_id: int) -> dict[str, Any]:
    session_id = client.get(f"{Q}/i/{item_id}").json()["session_id"]
    [image] = images_of(client, session_id)
    return image


@pytest.fixture(scope="module")
def served(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from tiny_models import write_lora

    root = tmp_path_factory.mktemp("provenance")
    config = HostConfig(root=root / "root", device="cpu", precision="float32", ram_cache_gb=2, vram_cache_gb=2)
    plugins = [invoke_sd_probers.plugin, invoke_diffusers_nodes.plugin, invoke_core_nodes.plugin,
               invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin]
    app = create_app(config, plugins, entry_points=False)
    lora = write_lora(tiny_models.root / "sd1", root / "style.safetensors", seed=3)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        main_key = install(client, tiny_models.root / "sd1", {"type": "main", "format": "diffusers", "base": "sd-1",
                                                              "name": "tiny sd1"})
        lora_key = install(client, lora, {"type": "lora", "format": "lycoris", "base": "sd-1", "name": "style"})
        graph = txt2latents_graph(main_key, size=64)
        # model -> lora -> denoise and prompts; then decode and save, with no metadata node wired.
        graph["nodes"]["lora"] = {"type": "lora_loader", "lora": {"key": lora_key}, "weight": LORA_WEIGHT}
        graph["edges"] = [e for e in graph["edges"] if e["source"]["node_id"] != "model"] + [
            edge("model", "unet", "lora", "unet"), edge("model", "clip", "lora", "clip"),
            edge("lora", "unet", "denoise", "unet"), edge("lora", "clip", "positive", "clip"),
            edge("lora", "clip", "negative", "clip"),
        ]
        graph["nodes"]["l2i"] = {"type": "l2i"}
        graph["edges"] += [edge("denoise", "latents", "l2i", "latents"), edge("model", "vae", "l2i", "vae")]
        batch = {"graph": graph, "workflow": json.dumps(workflow_for(graph)),
                 "data": [[{"node_path": "noise", "field_name": "seed", "items": SEEDS}]]}
        ids = run_batch(client, batch)
        yield Served(client, main_key, lora_key, graph, [the_image_of(client, i) for i in ids])


def workflow_inputs(workflow: dict[str, Any], node_id: str) -> dict[str, Any]:
    [node] = [n for n in workflow["nodes"] if n["data"]["id"] == node_id]
    inputs: dict[str, Any] = node["data"]["inputs"]
    return inputs


def test_each_image_stores_the_graph_and_workflow_of_its_own_item(served: Served) -> None:
    client = served.client
    for seed, image in zip(SEEDS, served.images, strict=True):
        name = image["image_name"]
        assert image["has_workflow"] is True
        both = client.get(f"{IMAGES}/i/{name}/workflow").json()
        # As InvokeAI answers it: both as strings.
        assert isinstance(both["workflow"], str) and isinstance(both["graph"], str)
        workflow, graph = json.loads(both["workflow"]), json.loads(both["graph"])
        assert workflow_inputs(workflow, "noise")["seed"]["value"] == seed
        assert workflow_inputs(workflow, "noise")["width"]["value"] == 64  # the rest of the workflow as sent
        assert workflow["name"] == "tiny txt2img"
        assert graph["nodes"]["noise"]["seed"] == seed
        assert client.get(f"{IMAGES}/i/{name}/graph").json() == graph
        # Every node carries its id, as InvokeAI's saved graphs do, and the edges are kept.
        ids = {node_id: node["id"] for node_id, node in graph["nodes"].items()}
        assert ids == {n: n for n in served.graph["nodes"]}
        assert len(graph["edges"]) == len(served.graph["edges"])


def test_the_generation_nodes_fill_invokeai_core_metadata_that_invokeai_reads(served: Served) -> None:
    client = served.client
    main = client.get(f"/api/v2/models/i/{served.main_key}").json()
    lora = client.get(f"/api/v2/models/i/{served.lora_key}").json()
    for seed, image in zip(SEEDS, served.images, strict=True):
        png = client.get(f"{IMAGES}/i/{image['image_name']}/full").content
        metadata, graph, workflow = read_like_invokeai(png)
        assert graph["nodes"]["noise"]["seed"] == workflow_inputs(workflow, "noise")["seed"]["value"] == seed
        assert metadata.generation_mode in INVOKEAI_MODES
        assert (metadata.generation_mode, metadata.seed, metadata.steps, metadata.cfg_scale, metadata.scheduler,
                metadata.width, metadata.height) == ("txt2img", seed, 2, 5.0, "euler", 64, 64)
        assert (metadata.positive_prompt, metadata.negative_prompt) == ("a photo of a cat", "")
        assert metadata.model == InvokeAIModelIdentifier(key=main["key"], hash=main["hash"], name="tiny sd1",
                                                         base="sd-1", type="main")
        assert metadata.loras == [InvokeAILoRAMetadata(
            model=InvokeAIModelIdentifier(key=lora["key"], hash=lora["hash"], name="style", base="sd-1", type="lora"),
            weight=LORA_WEIGHT,
        )]
        assert metadata.strength is None and metadata.vae is None  # txt2img, with the main model's own VAE
        # The record holds the same metadata as the file (the API's /metadata answers it).
        assert client.get(f"{IMAGES}/i/{image['image_name']}/metadata").json() == json.loads(
            Image.open(io.BytesIO(png)).info["invokeai_metadata"])


def test_every_image_records_the_packs_and_model_hashes_that_made_it(served: Served) -> None:
    client = served.client
    metadata = client.get(f"{IMAGES}/i/{served.images[0]['image_name']}/metadata").json()
    manifest = metadata[RUN_MANIFEST_KEY]
    import importlib.metadata

    by_dist = {p["distribution"]: p for p in manifest["plugins"]}
    diffusers = by_dist["invoke-diffusers-nodes"]
    assert diffusers["version"] == importlib.metadata.version("invoke-diffusers-nodes")
    assert diffusers["node_types"] == sorted({n["type"] for n in served.graph["nodes"].values()})
    hashes = {m["key"]: m["hash"] for m in manifest["models"]}
    assert hashes == {key: client.get(f"/api/v2/models/i/{key}").json()["hash"]
                      for key in (served.main_key, served.lora_key)}


def test_a_wired_core_metadata_node_wins_and_img2img_records_its_strength(served: Served) -> None:
    client = served.client
    source = served.images[0]["image_name"]
    graph = json.loads(json.dumps(served.graph))
    graph["nodes"]["i2l"] = {"type": "i2l", "image": {"image_name": source}}
    graph["nodes"]["denoise"]["denoising_start"] = 0.4
    graph["edges"] += [edge("model", "vae", "i2l", "vae"), edge("i2l", "latents", "denoise", "latents")]
    auto = run_batch(client, {"graph": graph})
    made = client.get(f"{IMAGES}/i/{the_image_of(client, auto[0])['image_name']}/metadata").json()
    assert (made["generation_mode"], made["strength"]) == ("img2img", 0.6)

    graph["nodes"]["meta"] = {"type": "core_metadata", "positive_prompt": "typed by a client", "seed": 99,
                              "canvas_v2_metadata": {"layers": 2}}  # an undeclared field, kept as InvokeAI keeps it
    graph["edges"].append(edge("meta", "metadata", "l2i", "metadata"))
    wired = run_batch(client, {"graph": graph})
    metadata = client.get(f"{IMAGES}/i/{the_image_of(client, wired[0])['image_name']}/metadata").json()
    assert RUN_MANIFEST_KEY in metadata
    del metadata[RUN_MANIFEST_KEY]
    assert metadata == {"positive_prompt": "typed by a client", "seed": 99, "canvas_v2_metadata": {"layers": 2}}


def test_replay_says_nothing_differs_and_makes_the_same_pixels(served: Served) -> None:
    client = served.client
    name = served.images[1]["image_name"]
    dry = client.post(f"{IMAGES}/i/{name}/replay", params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"image_name": name, "dry_run": True, "differences": [], "has_manifest": True,
                          "enqueued": None}
    # Emptied so the replay runs every node again (the same graph on the same server is otherwise a cache hit).
    assert client.delete("/api/v1/app/invocation_cache").status_code in (200, 204)
    replay = client.post(f"{IMAGES}/i/{name}/replay")
    assert replay.status_code == 200, replay.text
    body = replay.json()
    assert body["differences"] == [] and body["enqueued"]["enqueued"] == 1
    [item_id] = body["enqueued"]["item_ids"]
    wait_until(lambda: client.get(f"{Q}/i/{item_id}").json()["status"] in {"completed", "failed"}, "the replay",
               timeout=120)
    again = the_image_of(client, item_id)
    pixels = [Image.open(io.BytesIO(client.get(f"{IMAGES}/i/{n}/full").content)).tobytes()
              for n in (name, again["image_name"])]
    assert pixels[0] == pixels[1]
    # The replay carries the workflow on, with the seed it was made with.
    workflow = json.loads(client.get(f"{IMAGES}/i/{again['image_name']}/workflow").json()["workflow"])
    assert workflow_inputs(workflow, "noise")["seed"]["value"] == SEEDS[1]


def _retagged(png: bytes, **chunks: str) -> bytes:
    image = Image.open(io.BytesIO(png))
    info = PngInfo()
    for key, value in {**{k: v for k, v in image.info.items() if k.startswith("invokeai_")}, **chunks}.items():
        info.add_text(key, value)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_replay_names_what_differs_before_running_and_refuses_what_cannot_run(served: Served) -> None:
    client = served.client
    name = served.images[0]["image_name"]
    png = client.get(f"{IMAGES}/i/{name}/full").content
    metadata = client.get(f"{IMAGES}/i/{name}/metadata").json()
    manifest = metadata[RUN_MANIFEST_KEY]
    # As if made by another server: an older diffusers pack, a pack this one lacks, the main model's files other.
    for plugin in manifest["plugins"]:
        if plugin["distribution"] == "invoke-diffusers-nodes":
            plugin["version"] = "0.0.1"
    manifest["plugins"].append({"plugin": "vanished", "distribution": "invoke-vanished-pack", "version": "2.0.0",
                                "node_types": ["vanished_node"]})
    for model in manifest["models"]:
        if model["key"] == served.main_key:
            model["hash"] = "blake3:0000"
    graph = json.loads(client.get(f"{IMAGES}/i/{name}/graph").text)
    graph["nodes"]["ghost"] = {"id": "ghost", "type": "vanished_node"}
    upload = client.post(f"{IMAGES}/upload", files={"file": ("x.png", _retagged(
        png, invokeai_metadata=json.dumps(metadata), invokeai_graph=json.dumps(graph)), "image/png")})
    assert upload.status_code == 201, upload.text
    uploaded = upload.json()["image_name"]

    dry = client.post(f"{IMAGES}/i/{uploaded}/replay", params={"dry_run": "true"}).json()
    found = {(d["kind"], d["subject"], d["was"], d["now"]) for d in dry["differences"]}
    now_hash = client.get(f"/api/v2/models/i/{served.main_key}").json()["hash"]
    import importlib.metadata

    assert found == {
        ("plugin_version", "invoke-diffusers-nodes", "0.0.1", importlib.metadata.version("invoke-diffusers-nodes")),
        ("missing_plugin", "invoke-vanished-pack", "2.0.0", None),
        ("missing_node_type", "vanished_node", None, None),
        ("model_hash", served.main_key, "blake3:0000", now_hash),
    }
    assert all(d["message"] for d in dry["differences"])
    pending = client.get(f"{Q}/status").json()["queue"]["pending"]

    refused = client.post(f"{IMAGES}/i/{uploaded}/replay")
    assert refused.status_code == 409
    assert "vanished_node" in refused.json()["detail"] and "invoke-vanished-pack" in refused.json()["detail"]
    assert client.get(f"{Q}/status").json()["queue"]["pending"] == pending  # nothing was enqueued


def test_replay_of_an_image_without_a_graph_or_name_is_a_clear_4xx(served: Served) -> None:
    client = served.client
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, format="PNG")
    name = client.post(f"{IMAGES}/upload", files={"file": ("p.png", plain.getvalue(), "image/png")}).json()[
        "image_name"]
    r = client.post(f"{IMAGES}/i/{name}/replay")
    assert r.status_code == 409 and "embeds no graph" in r.json()["detail"]
    missing = client.post(f"{IMAGES}/i/nope.png/replay", params={"dry_run": "true"})
    assert missing.status_code == 404 and "nope.png" in missing.json()["detail"]


def test_a_batch_workflow_that_is_not_a_json_object_is_refused(served: Served) -> None:
    client = served.client
    for workflow, why in (("{not json", "JSON text"), ("[1, 2]", "JSON object")):
        r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": {"nodes": {}}, "workflow": workflow}})
        assert r.status_code in (400, 422) and why in r.text, r.text
    # The object InvokeAI's client sends is taken too, and stored as text with the item's values written in.
    workflow = {"nodes": [{"id": "a", "type": "invocation", "data": {"id": "a", "type": "add",
                                                                     "inputs": {"a": {"name": "a", "value": 0}}}}]}
    ids = run_batch(client, {"graph": {"nodes": {"a": {"type": "add", "b": 2}}}, "workflow": workflow,
                             "data": [[{"node_path": "a", "field_name": "a", "items": [5, 7]}]]})
    stored = [json.loads(client.get(f"{Q}/i/{i}").json()["session"]["workflow"]) for i in ids]
    assert [w["nodes"][0]["data"]["inputs"]["a"]["value"] for w in stored] == [5, 7]

