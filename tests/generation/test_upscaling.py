"""Upscaling through spandrel: a real (tiny, random-weight) ESRGAN file is probed, installed, loaded and run tile by
tile through the queue API; the stitching of tiles is checked exactly against a local model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from queue_harness import QueueApi, queue_api

# The module's first test also builds and installs its tiny models (a minute or more on a loaded 2-core machine).
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueueApi]:
    from tiny_extra_models import write_esrgan

    files = tmp_path_factory.mktemp("upscalers")
    with queue_api(tmp_path_factory.mktemp("root"), max_image_pixels=50_000) as api:
        # Installed with no overrides: the prober has to recognise them.
        api.keys = {  # type: ignore[attr-defined]
            "x2": api.install(write_esrgan(files / "2x_tiny.safetensors", scale=2)),
            "x4_pth": api.install(write_esrgan(files / "4x_tiny.pth", scale=4, pickle=True)),
        }
        rng = np.random.default_rng(1)
        api.source = api.upload(Image.fromarray(rng.integers(0, 256, (40, 72, 3), dtype=np.uint8)))  # type: ignore[attr-defined]
        yield api


def _graph(key: str, image: str, tile_size: int) -> dict[str, Any]:
    node = {"type": "spandrel_image_to_image", "image": {"image_name": image},
            "image_to_image_model": {"key": key}, "tile_size": tile_size}
    return {"nodes": {"up": node}, "edges": []}


def test_esrgan_files_are_recognised_from_their_headers(api: Any) -> None:
    for key, name in ((api.keys["x2"], "2x_tiny"), (api.keys["x4_pth"], "4x_tiny")):
        record = api.model(key)
        assert (record["type"], record["format"], record["base"], record["architecture"]) == (
            "spandrel_image_to_image", "checkpoint", "any", "ESRGAN")
        assert record["name"] == name


def test_stable_diffusion_files_are_not_taken_for_upscalers(tmp_path: Path) -> None:
    from invoke_sdk.models.probing import ModelOnDisk
    from invoke_spandrel_nodes.prober import SpandrelProber

    from tests.models import model_files as mf

    for path in (mf.write_lora_kohya(tmp_path / "lora.safetensors", "sd-1"),
                 mf.write_embedding(tmp_path / "emb.safetensors", "sdxl"),
                 mf.write_vae(tmp_path / "vae.safetensors")):
        assert SpandrelProber().probe(ModelOnDisk(path)) is None, path.name


@pytest.mark.parametrize("model", ["x2", "x4_pth"])
def test_the_upscaler_scales_the_image_and_one_seedless_run_repeats_exactly(api: Any, model: str) -> None:
    scale = 2 if model == "x2" else 4
    run = api.run(_graph(api.keys[model], api.source, 0))
    image = api.image(run.results["up"]["image"]["image_name"])
    assert image.size == (72 * scale, 40 * scale) == (run.results["up"]["width"], run.results["up"]["height"])
    assert np.asarray(image).std() > 0
    again = api.run(_graph(api.keys[model], api.source, 0))
    assert np.array_equal(np.asarray(api.image(again.results["up"]["image"]["image_name"])), np.asarray(image))


def test_tiles_give_the_whole_image_with_a_progress_event_per_tile(api: Any) -> None:
    whole = np.asarray(api.image(api.run(_graph(api.keys["x2"], api.source, 0)).results["up"]["image"]["image_name"]))
    run = api.run(_graph(api.keys["x2"], api.source, 32))
    tiled = np.asarray(api.image(run.results["up"]["image"]["image_name"]))
    assert tiled.shape == whole.shape
    # 72 x 40 in 32-pixel tiles overlapping at least 20: 5 columns x 2 rows.
    assert [p["message"] for p in run.progress] == [f"Processing tile {i}/10" for i in range(11)]
    # A convolutional network sees past a tile's edge: tiles differ from the whole near seams, and only there.
    assert float(np.abs(tiled.astype(int) - whole.astype(int)).mean()) < float(np.abs(whole.astype(int) - 128).mean())


def test_a_result_over_max_image_pixels_is_refused_before_it_is_made(api: Any) -> None:
    big = api.upload(Image.new("RGB", (64, 64)))
    run = api.run(_graph(api.keys["x4_pth"], big, 0), expect="failed")  # 256 x 256 > 50,000 pixels
    assert "max_image_pixels" in (run.error or "") and "256x256" in (run.error or "")


async def test_cancel_stops_between_tiles(tmp_path: Path) -> None:
    import threading

    import invoke_local_file_storage.plugin
    import invoke_spandrel_nodes.plugin
    import invoke_sqlite_storage.plugin
    from tiny_extra_models import write_esrgan

    from invoke_host.config import HostConfig
    from invoke_host.engine import NodeProgress, run_graph_async
    from invoke_host.host import build_host

    config = HostConfig(root=tmp_path / "root", device="cpu", precision="float32", ram_cache_gb=2, vram_cache_gb=2)
    host = build_host(config, [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin,
                               invoke_spandrel_nodes.plugin], entry_points=False)
    await host.start()
    try:
        job = host.models.installer.import_model(str(write_esrgan(tmp_path / "2x.safetensors")), inplace=True)
        job = await host.models.installer.wait(job.id)
        assert job.status.value == "completed", job.error
        assert host.images is not None
        record = await host.images.save(Image.new("RGB", (72, 40), (10, 20, 30)))
        cancel = threading.Event()
        progress: list[float | None] = []

        def on_event(event: Any) -> None:
            # Called from the node's own signal_progress: the flag is up before the next tile's check.
            if isinstance(event, NodeProgress):
                progress.append(event.percentage)
                if len(progress) == 2:
                    cancel.set()

        result = await run_graph_async(host, _graph(job.config_out["key"], record.image_name, 32), cancel=cancel,
                                       on_event=on_event)
        assert result.status == "canceled" and result.errors == []
        assert progress == [0.0, 0.1], "stopped at the second tile's check, inside the loop"
        cache = host.node_services.models.cache  # type: ignore[attr-defined]
        assert all(entry.locks == 0 for entry in cache.entries()), "cancel releases the model lock"
    finally:
        await host.stop()


class _Nearest:
    """A 'model' whose every output pixel depends only on its input pixel: tiled and whole must agree exactly."""

    scale = 3
    device = "cpu"
    dtype = None

    def run(self, pixels: Any) -> Any:
        return pixels.repeat_interleave(3, dim=2).repeat_interleave(3, dim=3) * 0.5 + 0.25


@pytest.mark.parametrize("tile_size", [0, 21, 32, 50, 1000])
def test_stitching_tiles_covers_every_pixel_exactly_once_in_the_right_place(tile_size: int) -> None:
    import torch
    from invoke_spandrel_nodes.upscale_node import run_tiled

    model = _Nearest()
    model.dtype = torch.float32  # type: ignore[assignment]
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (45, 77, 3), dtype=np.uint8))
    steps: list[tuple[int, int]] = []
    out = run_tiled(image, model, tile_size, is_canceled=lambda: False, progress=lambda s, t: steps.append((s, t)))
    expected = run_tiled(image, model, 0, is_canceled=lambda: False, progress=lambda s, t: None)
    assert out.size == (77 * 3, 45 * 3)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    assert steps[0][0] == 0 and steps[-1][0] == steps[-1][1] and len(steps) == steps[-1][1] + 1


def test_tile_starts_spread_evenly_and_reach_the_edge() -> None:
    from invoke_spandrel_nodes.tiles import tile_starts

    assert tile_starts(72, 32, 20) == [0, 10, 20, 30, 40]
    assert tile_starts(40, 32, 20) == [0, 8]
    assert tile_starts(32, 32, 20) == [0]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 20, 20)
