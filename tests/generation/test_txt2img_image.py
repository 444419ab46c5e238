"""The whole txt2img graph through a started host: the decoded image is saved with its graph and metadata."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import invoke_diffusers_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sd_probers.plugin
import invoke_sqlite_storage.plugin
import pytest
from conftest import TinyModels
from gen_graphs import edge, txt2latents_graph
from invoke_sdk import hookimpl
from invoke_sdk.events import BaseEvent
from invoke_sdk.hookspecs import RegisterEventSink
from invoke_sdk.images import RUN_MANIFEST_KEY
from test_engine_generation import install

from invoke_host.config import HostConfig
from invoke_host.engine import run_graph_async
from invoke_host.host import Host, build_host
from tests.waiting import async_wait_until


class LoadEventSink:
    """Keeps the model load events the host's bus delivers."""

    name = "model-loads"

    def __init__(self) -> None:
        self.events: list[BaseEvent] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def deliver(self, event: BaseEvent) -> None:
        if event.event_name.startswith("model_load"):
            self.events.append(event)


SINK = LoadEventSink()


@hookimpl
def register_event_sinks(register: RegisterEventSink) -> None:
    register(SINK)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    SINK.events.clear()
    config = HostConfig(root=tmp_path / "root", device="cpu", precision="float32", ram_cache_gb=2, vram_cache_gb=2)
    plugins = [sys.modules[__name__], invoke_sd_probers.plugin, invoke_diffusers_nodes.plugin,
               invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin]
    host = build_host(config, plugins, entry_points=False)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def test_txt2img_saves_an_image_of_the_right_size_with_its_graph(host: Host, tiny_models: TinyModels) -> None:
    key = await install(host, tiny_models.root / "sd1", "sd1", "diffusers")
    graph = txt2latents_graph(key, seed=3, size=64)
    graph["nodes"]["l2i"] = {"type": "l2i", "metadata": {"seed": 3, "prompt": "a photo of a cat"}}
    graph["edges"] += [edge("denoise", "latents", "l2i", "latents"), edge("model", "vae", "l2i", "vae")]

    first = await run_graph_async(host, graph, session_id="s1")
    second = await run_graph_async(host, graph, session_id="s2")
    assert first.status == second.status == "completed", [e.message for e in first.errors + second.errors]

    service = host.images
    assert service is not None
    names = [r.output("l2i").image.image_name for r in (first, second)]  # type: ignore[attr-defined]
    record = await service.get(names[0])
    assert (record.width, record.height, record.session_id, record.node_id) == (64, 64, "s1", "l2i")
    embedded = await service.embedded(names[0])
    assert json.loads(embedded.graph or "null")["nodes"]["l2i"]["type"] == "l2i"
    metadata = json.loads(embedded.metadata or "null")
    manifest = metadata.pop(RUN_MANIFEST_KEY)  # the host adds what made it to a wired node's metadata
    assert metadata == {"seed": 3, "prompt": "a photo of a cat"}
    assert [m["key"] for m in manifest["models"]] == [key]

    # Same seed, same pixels, from two separate decodes and saves.
    assert names[0] != names[1]
    pixels = [(await service.get_pil(n)).tobytes() for n in names]
    assert pixels[0] == pixels[1]


async def test_model_loads_are_typed_events_on_the_bus(host: Host, tiny_models: TinyModels) -> None:
    key = await install(host, tiny_models.root / "sd1", "sd1", "diffusers")
    graph = txt2latents_graph(key, seed=1, size=64)
    result = await run_graph_async(host, graph)
    assert result.status == "completed"

    def seen_loads() -> list[tuple[str, str]]:
        return [(e.event_name, e.submodel_type) for e in SINK.events if e.model_key == key]  # type: ignore[attr-defined]

    # The bus hands events from the loading thread to the loop: wait for the load to be reported.
    await async_wait_until(lambda: ("model_load_complete", "unet") in seen_loads(), "the unet load events")
    seen = seen_loads()
    assert ("model_load_started", "unet") in seen and ("model_load_complete", "unet") in seen
    assert seen.index(("model_load_started", "unet")) < seen.index(("model_load_complete", "unet"))
    unet = next(e for e in SINK.events if e.event_name == "model_load_complete" and e.submodel_type == "unet")  # type: ignore[attr-defined]
    assert unet.size_bytes and unet.size_bytes > 0  # type: ignore[attr-defined]
