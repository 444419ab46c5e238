"""Generation through the real host: models installed by the model manager, graphs run by the engine.

Tiny SD1/SD2/SDXL models are installed as diffusers folders (in place) and as original-layout single
files (copied into the models directory), then model loader -> prompts -> noise -> denoise_latents runs
through ``run_graph_async`` with the host's own ``context.models`` (record store, registry loaders, cache).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import invoke_diffusers_nodes.plugin
import invoke_sd_probers.plugin
import invoke_sqlite_storage.plugin
import pytest
from conftest import BASES, TinyModels
from gen_graphs import txt2latents_graph
from ldm_checkpoint import write_checkpoint

from invoke_host.config import HostConfig
from invoke_host.engine import NodeProgress, SessionResult, run_graph, run_graph_async
from invoke_host.host import Host, build_host

STEPS = 2


@pytest.fixture(scope="session")
def checkpoints(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipelines as single-file checkpoints (``<kind>.safetensors``)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    for kind in BASES:
        write_checkpoint(tiny_models.root / kind, folder / f"{kind}.safetensors")
    return folder


def _build_host(root: Path) -> Host:
    config = HostConfig(root=root, device="cpu", precision="float32", ram_cache_gb=2, vram_cache_gb=2)
    plugins = [invoke_sd_probers.plugin, invoke_sqlite_storage.plugin, invoke_diffusers_nodes.plugin]
    return build_host(config, plugins, entry_points=False)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    host = _build_host(tmp_path / "root")
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def install(host: Host, source: Path, kind: str, model_format: str, *, config_path: Path | None = None,
                  inplace: bool = True) -> str:
    """Install through the model manager; the probers do not know the tiny shapes, so the overrides say what it is."""
    overrides: dict[str, Any] = {"type": "main", "format": model_format, "base": BASES[kind]}
    if kind == "sd2":
        overrides["prediction_type"] = "v_prediction"
    if config_path is not None:
        overrides["config_path"] = str(config_path)
    job = host.models.installer.import_model(str(source), inplace=inplace, config=overrides)
    job = await host.models.installer.wait(job.id)
    assert job.status.value == "completed", job.error
    key: str = job.config_out["key"]
    return key


async def generate(host: Host, key: str, kind: str, **kwargs: Any) -> tuple[SessionResult, Any]:
    result = await run_graph_async(host, txt2latents_graph(key, sdxl=kind == "sdxl", steps=STEPS, **kwargs))
    assert result.status == "completed", [e.message for e in result.errors]
    name = result.output("denoise").latents.latents_name  # type: ignore[attr-defined]
    return result, host.node_services.tensors.load(name)


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
async def test_installed_folder_and_single_file_make_the_same_latents_and_seeds_repeat(
    host: Host, tiny_models: TinyModels, checkpoints: Path, kind: str
) -> None:
    import torch

    folder_key = await install(host, tiny_models.root / kind, kind, "diffusers")
    # Copied into the models directory: the record keeps a relative path that the lookup resolves.
    file_key = await install(host, checkpoints / f"{kind}.safetensors", kind, "checkpoint",
                             config_path=tiny_models.root / kind, inplace=False)
    stored = await host.models.store.get(file_key)
    assert not Path(stored.path).is_absolute()

    loads: list[Any] = []
    host.model_load_listener = loads.append
    _, first = await generate(host, folder_key, kind, seed=5)
    assert first.shape == (1, 4, 8, 8)
    assert {(e.kind, e.submodel) for e in loads} >= {("started", "unet"), ("complete", "unet")}
    loads_before = host.node_services.models.cache.stats().loads  # type: ignore[attr-defined]
    _, again = await generate(host, folder_key, kind, seed=5)
    assert torch.equal(first, again), "one seed, one result"
    assert host.node_services.models.cache.stats().loads == loads_before, "warm run loads nothing"  # type: ignore[attr-defined]
    _, other_seed = await generate(host, folder_key, kind, seed=6)
    assert not torch.allclose(first, other_seed)
    _, from_file = await generate(host, file_key, kind, seed=5)
    assert torch.allclose(first, from_file, atol=1e-5), "the single file holds the same weights as the folder"


async def test_cancel_inside_the_denoise_loop_cancels_the_session(host: Host, tiny_models: TinyModels) -> None:
    key = await install(host, tiny_models.root / "sd1", "sd1", "diffusers")
    cancel = threading.Event()
    progress: list[float | None] = []

    def on_event(event: Any) -> None:
        if isinstance(event, NodeProgress) and event.source_node_id == "denoise":
            progress.append(event.percentage)
            if len(progress) == 2:
                cancel.set()

    result = await run_graph_async(host, txt2latents_graph(key, steps=10), cancel=cancel, on_event=on_event)
    assert result.status == "canceled"
    assert result.errors == []
    assert not result.outputs.get("denoise"), "a canceled denoise gives no output"
    assert 2 <= len(progress) < 10, "stopped inside the loop, not after it"
    cache = host.node_services.models.cache  # type: ignore[attr-defined]
    assert all(entry.locks == 0 for entry in cache.entries()), "cancel releases the model locks"


async def test_an_unknown_model_key_fails_the_loader_node_with_a_message(host: Host) -> None:
    result = await run_graph_async(host, txt2latents_graph("no-such-model"))
    assert result.status == "failed"
    [error] = result.errors
    assert error.source_node_id == "model"
    assert "no installed model has the key 'no-such-model'" in error.message


async def test_a_blocking_run_on_the_hosts_own_loop_says_to_use_the_async_runner(host: Host) -> None:
    result = run_graph(host, txt2latents_graph("any"))
    assert result.status == "failed"
    assert "run_graph_async" in result.errors[0].message


def test_a_host_that_was_not_started_says_so(tmp_path: Path) -> None:
    result = run_graph(_build_host(tmp_path / "root"), txt2latents_graph("any"))
    assert result.status == "failed"
    assert "start the host" in result.errors[0].message


async def test_cli_run_generates_with_a_model_installed_before(
    tmp_path: Path, tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import json

    from click.testing import CliRunner

    from invoke_host.cli import main

    root = tmp_path / "root"
    host = _build_host(root)
    await host.start()
    try:
        key = await install(host, tiny_models.root / "sd1", "sd1", "diffusers")
    finally:
        await host.stop()
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps(txt2latents_graph(key, steps=STEPS)))
    monkeypatch.setenv("INVOKE_HOST_DEVICE", "cpu")
    # The CLI runs its own event loop: give it a thread of its own, as a terminal would.
    result = await asyncio.to_thread(CliRunner().invoke, main, ["run", str(graph), "--root", str(root)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "completed"
    assert body["outputs"]["denoise"][0]["latents"]["latents_name"]
    # What the terminal shows meanwhile: the models loading, each denoise step, each node.
    lines = result.stderr.splitlines()
    assert "  loading model sd1 (unet)" in lines
    assert any(line.startswith("  loaded model sd1 (unet) in ") for line in lines)
    steps = [line for line in lines if line.startswith("  denoise: ")]
    assert steps == [f"  denoise: {100 * n // STEPS}% Denoising step {n} of {STEPS}" for n in range(1, STEPS + 1)]
    assert any(line.startswith("ran denoise (denoise_latents) in ") for line in lines)


async def test_a_single_file_without_a_local_config_folder_says_what_to_set(
    host: Host, checkpoints: Path
) -> None:
    key = await install(host, checkpoints / "sd1.safetensors", "sd1", "checkpoint")  # no config_path; hub offline
    result = await run_graph_async(host, txt2latents_graph(key, steps=STEPS))
    assert result.status == "failed"
    [error] = result.errors
    assert "set its config_path to a local diffusers folder" in error.message
