"""ControlNet, T2I-Adapter and IP-Adapter through the real host: installed tiny models, graphs run by the engine.

Every model is installed by the model manager (folders in place, single files in their published key layouts)
and loaded by the plugin's loaders; the control images live in the host's image store.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import invoke_core_nodes.plugin
import invoke_diffusers_nodes.plugin
import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sd_probers.plugin
import invoke_sqlite_storage.plugin
import pytest
from conftest import TinyModels
from control_fixtures import ControlFiles
from gen_graphs import edge, txt2latents_graph

from invoke_host.config import HostConfig
from invoke_host.engine import NodeProgress, SessionResult, run_graph_async
from invoke_host.host import Host, build_host

STEPS = 3


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    config = HostConfig(root=tmp_path / "root", device="cpu", precision="float32", ram_cache_gb=2, vram_cache_gb=2)
    plugins = [invoke_core_nodes.plugin, invoke_sd_probers.plugin, invoke_sqlite_storage.plugin,
               invoke_diffusers_nodes.plugin, invoke_image_nodes.plugin, invoke_local_file_storage.plugin]
    host = build_host(config, plugins, entry_points=False)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def install(host: Host, source: Path, **overrides: Any) -> str:
    """Install through the model manager; the tiny shapes are not the real ones, so the overrides say what it is."""
    job = host.models.installer.import_model(str(source), inplace=True, config=overrides)
    job = await host.models.installer.wait(job.id)
    assert job.status.value == "completed", job.error
    key: str = job.config_out["key"]
    return key


async def control_image(host: Host, seed: int = 0, size: int = 64) -> str:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    assert host.images is not None
    record = await host.images.save(Image.fromarray(pixels, "RGB"))
    return record.image_name


def with_controls(graph: dict[str, Any], nodes: dict[str, dict[str, Any]], field: str,
                  output: str) -> dict[str, Any]:
    """``graph`` with control nodes feeding ``denoise``'s ``field`` (a collect node for several)."""
    graph["nodes"].update(nodes)
    if len(nodes) == 1:
        [node_id] = nodes
        graph["edges"].append(edge(node_id, output, "denoise", field))
    else:
        graph["nodes"][f"collect_{field}"] = {"type": "collect"}
        graph["edges"] += [edge(node_id, output, f"collect_{field}", "item") for node_id in nodes]
        graph["edges"].append(edge(f"collect_{field}", "collection", "denoise", field))
    return graph


def controlnet_node(key: str, image: str, **fields: Any) -> dict[str, Any]:
    return {"type": "controlnet", "image": {"image_name": image}, "control_model": {"key": key}, **fields}


async def run(host: Host, graph: dict[str, Any], **kwargs: Any) -> tuple[SessionResult, Any]:
    result = await run_graph_async(host, graph, **kwargs)
    assert result.status == "completed", [e.message for e in result.errors]
    name = result.output("denoise").latents.latents_name  # type: ignore[attr-defined]
    return result, host.node_services.tensors.load(name)


@pytest.fixture
async def sd1(host: Host, tiny_models: TinyModels) -> str:
    return await install(host, tiny_models.root / "sd1", type="main", format="diffusers", base="sd-1")


async def test_controlnet_folder_and_single_file_steer_the_same_and_weight_zero_is_no_control(
    host: Host, sd1: str, control_files: ControlFiles
) -> None:
    import torch

    folder = await install(host, control_files / "cn_sd1", type="controlnet", format="diffusers", base="sd-1")
    single = await install(host, control_files / "cn_sd1.safetensors", type="controlnet", format="checkpoint",
                           base="sd-1", config_path=str(control_files / "cn_sd1"))
    image = await control_image(host)

    def graph(**control: Any) -> dict[str, Any]:
        g = txt2latents_graph(sd1, seed=4, steps=STEPS)
        return with_controls(g, {"cn": control}, "control", "control") if control else g

    _, plain = await run(host, graph())
    _, controlled = await run(host, graph(**controlnet_node(folder, image)))
    _, again = await run(host, graph(**controlnet_node(folder, image)))
    _, from_file = await run(host, graph(**controlnet_node(single, image)))
    _, weight_zero = await run(host, graph(**controlnet_node(folder, image, control_weight=0.0)))
    assert torch.equal(controlled, again), "one seed, one result"
    assert not torch.allclose(plain, controlled, atol=1e-3), "the ControlNet steers the denoising"
    assert torch.allclose(controlled, from_file, atol=1e-5), "the original-layout file holds the folder's weights"
    assert torch.equal(weight_zero, plain), "weight 0 adds nothing"
    other_image = await control_image(host, seed=1)
    _, other = await run(host, graph(**controlnet_node(folder, other_image)))
    assert not torch.allclose(controlled, other, atol=1e-3), "the control image matters"


async def test_two_controlnets_at_half_weight_add_up_to_one_at_full_weight_and_ranges_and_modes_count(
    host: Host, sd1: str, control_files: ControlFiles
) -> None:
    import torch

    key = await install(host, control_files / "cn_sd1", type="controlnet", format="diffusers", base="sd-1")
    other = await install(host, control_files / "cn_sd1_b", type="controlnet", format="diffusers", base="sd-1")
    image = await control_image(host)

    async def latents(controls: dict[str, dict[str, Any]]) -> Any:
        g = with_controls(txt2latents_graph(sd1, seed=4, steps=STEPS), controls, "control", "control")
        return (await run(host, g))[1]

    full = await latents({"a": controlnet_node(key, image)})
    halves = await latents({"a": controlnet_node(key, image, control_weight=0.5),
                            "b": controlnet_node(key, image, control_weight=0.5)})
    assert torch.allclose(full, halves, atol=1e-5), "residuals of several ControlNets add up"
    mixed = await latents({"a": controlnet_node(key, image), "b": controlnet_node(other, image)})
    assert not torch.allclose(full, mixed, atol=1e-3)
    per_step = await latents({"a": controlnet_node(key, image, control_weight=[1.0, 1.0, 1.0])})
    assert torch.equal(per_step, full), "a weight per step, all 1, is weight 1"
    late = await latents({"a": controlnet_node(key, image, begin_step_percent=0.5)})
    assert not torch.allclose(late, full, atol=1e-3), "a later begin applies the ControlNet on fewer steps"
    modes = {mode: await latents({"a": controlnet_node(key, image, control_mode=mode)})
             for mode in ("more_prompt", "more_control", "unbalanced")}
    for mode, result in modes.items():
        assert not torch.allclose(result, full, atol=1e-4), f"{mode} differs from balanced"


async def test_an_sdxl_controlnet_steers_sdxl_and_a_base_mismatch_is_a_node_error(
    host: Host, sd1: str, tiny_models: TinyModels, control_files: ControlFiles
) -> None:
    import torch

    sdxl = await install(host, tiny_models.root / "sdxl", type="main", format="diffusers", base="sdxl")
    key = await install(host, control_files / "cn_sdxl", type="controlnet", format="diffusers", base="sdxl")
    image = await control_image(host)
    _, plain = await run(host, txt2latents_graph(sdxl, sdxl=True, seed=2, steps=2))
    g = with_controls(txt2latents_graph(sdxl, sdxl=True, seed=2, steps=2), {"cn": controlnet_node(key, image)},
                      "control", "control")
    _, controlled = await run(host, g)
    assert not torch.allclose(plain, controlled, atol=1e-3)

    wrong = with_controls(txt2latents_graph(sd1, seed=2, steps=2), {"cn": controlnet_node(key, image)},
                          "control", "control")
    result = await run_graph_async(host, wrong)
    assert result.status == "failed"
    [error] = result.errors
    assert error.source_node_id == "denoise"
    assert "is for sdxl, but the main model is sd-1" in error.message


async def test_cancel_inside_the_loop_with_a_controlnet_and_progress_previews_each_step(
    host: Host, sd1: str, control_files: ControlFiles
) -> None:
    key = await install(host, control_files / "cn_sd1", type="controlnet", format="diffusers", base="sd-1")
    image = await control_image(host)
    graph = with_controls(txt2latents_graph(sd1, steps=10), {"cn": controlnet_node(key, image)}, "control",
                          "control")
    cancel = threading.Event()
    previews: list[Any] = []

    def on_event(event: Any) -> None:
        if isinstance(event, NodeProgress) and event.source_node_id == "denoise":
            previews.append(event.image)
            if len(previews) == 2:
                cancel.set()

    result = await run_graph_async(host, graph, cancel=cancel, on_event=on_event)
    assert result.status == "canceled"
    assert 2 <= len(previews) < 10, "stopped inside the loop"
    assert all(p is not None for p in previews), "every step sends a preview"
    cache = host.node_services.models.cache  # type: ignore[attr-defined]
    assert all(entry.locks == 0 for entry in cache.entries()), "cancel releases the ControlNet's lock too"


async def test_t2i_adapter_folder_and_tencentarc_file_steer_the_same(
    host: Host, sd1: str, control_files: ControlFiles
) -> None:
    import torch

    folder = await install(host, control_files / "t2i_sd1", type="t2i_adapter", format="diffusers", base="sd-1")
    single = await install(host, control_files / "t2i_sd1.safetensors", type="t2i_adapter", format="checkpoint",
                           base="sd-1")
    image = await control_image(host)

    def node(key: str, **fields: Any) -> dict[str, dict[str, Any]]:
        return {"t2i": {"type": "t2i_adapter", "image": {"image_name": image}, "t2i_adapter_model": {"key": key},
                        **fields}}

    def graph(nodes: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        g = txt2latents_graph(sd1, seed=4, steps=STEPS)
        return with_controls(g, nodes, "t2i_adapter", "t2i_adapter") if nodes else g

    _, plain = await run(host, graph())
    _, adapted = await run(host, graph(node(folder)))
    _, again = await run(host, graph(node(folder)))
    _, from_file = await run(host, graph(node(single)))
    _, weight_zero = await run(host, graph(node(folder, weight=0.0)))
    assert torch.equal(adapted, again)
    assert not torch.allclose(plain, adapted, atol=1e-3)
    assert torch.allclose(adapted, from_file, atol=1e-5), "TencentARC's names load into the same adapter"
    assert torch.equal(weight_zero, plain)


async def test_ip_adapter_finds_its_encoder_in_the_records_steers_and_leaves_the_unet_as_it_was(
    host: Host, sd1: str, control_files: ControlFiles
) -> None:
    import torch

    encoder = await install(host, control_files / "ip_adapter_sd_image_encoder", type="clip_vision",
                            format="diffusers", base="any")
    folder = await install(host, control_files / "ip_sd1_invokeai", type="ip_adapter", format="invokeai",
                           base="sd-1", image_encoder_model_id="InvokeAI/ip_adapter_sd_image_encoder")
    single = await install(host, control_files / "ip_sd1.safetensors", type="ip_adapter", format="checkpoint",
                           base="sd-1")
    image = await control_image(host, seed=3)

    def graph(key: str | None = None, **fields: Any) -> dict[str, Any]:
        g = txt2latents_graph(sd1, seed=4, steps=STEPS)
        if key is None:
            return g
        node = {"type": "ip_adapter", "image": {"image_name": image}, "ip_adapter_model": {"key": key}, **fields}
        return with_controls(g, {"ip": node}, "ip_adapter", "ip_adapter")

    _, plain = await run(host, graph())
    result, adapted = await run(host, graph(folder))
    assert result.output("ip").ip_adapter.image_encoder_model.key == encoder  # type: ignore[attr-defined]
    _, again = await run(host, graph(folder))
    _, from_file = await run(host, graph(single, clip_vision_model="ViT-H"))
    _, after = await run(host, graph())
    assert torch.equal(adapted, again)
    assert not torch.allclose(plain, adapted, atol=1e-3), "the image prompt steers the denoising"
    assert torch.equal(adapted, from_file), "file and folder hold the same adapter"
    assert torch.equal(after, plain), "the cached UNet's attention processors are restored after the run"
    _, half = await run(host, graph(folder, weight=0.5))
    assert not torch.allclose(half, adapted, atol=1e-4)
    _, style = await run(host, graph(folder, method="style"))
    assert not torch.allclose(style, adapted, atol=1e-4), "style targets fewer blocks"

    missing = await run_graph_async(host, graph(single, clip_vision_model="ViT-G"))
    assert missing.status == "failed"
    [error] = missing.errors
    assert error.source_node_id == "ip"
    assert "InvokeAI/ip_adapter_sdxl_image_encoder" in error.message and "is not installed" in error.message
