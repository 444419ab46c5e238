"""The weight-free ControlNet preprocessors: exact edge positions, shuffles that repeat per seed, block colours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sqlite_storage.plugin
import numpy as np
import pytest
from invoke_image_nodes.edge_maps import canny
from PIL import Image

from invoke_host.config import HostConfig
from invoke_host.engine import run_graph_async
from invoke_host.host import Host, build_host


def square(size: int = 64, low: int = 16, high: int = 48, value: int = 255) -> np.ndarray:
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[low:high, low:high] = value
    return pixels


def test_canny_marks_the_outer_side_of_a_step_one_pixel_wide() -> None:
    edges = canny(square(), 100, 200)
    assert set(np.unique(edges)) == {0, 255}
    for row in range(20, 44):
        assert list(np.flatnonzero(edges[row])) == [15, 47], row
    assert list(np.flatnonzero(edges[:, 32])) == [15, 47]
    assert edges[:10].sum() == 0 and edges[30:34, 20:44].sum() == 0, "nothing away from the square's border"


def step(top: int, bottom: int) -> np.ndarray:
    """Black on the left, ``top`` / ``bottom`` grey on the right in the upper / lower half: a vertical step."""
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:32, 32:] = top
    pixels[32:, 32:] = bottom
    return pixels


def test_canny_thresholds_decide_which_edges_stay() -> None:
    faint = step(40, 40)  # an L1 Sobel magnitude of 4 x 40 = 160 across the step
    assert list(np.flatnonzero(canny(faint, 100, 150)[10])) == [31]
    assert not canny(faint, 100, 170).any(), "below the high threshold nothing starts an edge"
    # The faint upper half is kept only where it connects to the strong lower half (hysteresis).
    mixed = step(40, 255)
    assert canny(mixed, 100, 170)[5, 31] == 255
    strict = canny(mixed, 170, 170)
    assert strict[5, 31] == 0 and strict[50, 31] == 255


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    config = HostConfig(root=tmp_path / "root", max_image_pixels=200_000)
    host = build_host(config, [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin,
                               invoke_image_nodes.plugin], entry_points=False)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def run_node(host: Host, node: dict[str, Any], pixels: np.ndarray) -> Any:
    assert host.images is not None
    record = await host.images.save(Image.fromarray(pixels, "RGB"))
    result = await run_graph_async(host, {"nodes": {"n": {**node, "image": {"image_name": record.image_name}}},
                                          "edges": []})
    assert result.status == "completed", [e.message for e in result.errors]
    return await host.images.get_pil(result.output("n").image.image_name)  # type: ignore[attr-defined]


async def test_the_canny_nodes_save_edge_maps_at_their_resolutions(host: Host) -> None:
    image = await run_node(host, {"type": "canny_edge_detection"}, square())
    assert np.array_equal(np.asarray(image.convert("L")), canny(square(), 100, 200))
    legacy = await run_node(host, {"type": "canny_image_processor", "detect_resolution": 64,
                                   "image_resolution": 128}, square())
    assert legacy.size == (128, 128)
    bright = np.flatnonzero(np.asarray(legacy.convert("L"))[64] > 128)
    assert bright.size and set(bright) <= {29, 30, 31, 32, 93, 94, 95, 96}, "the edges, scaled 2x"

    assert host.images is not None
    record = await host.images.save(Image.fromarray(square(), "RGB"))
    too_big = await run_graph_async(host, {"nodes": {"n": {
        "type": "canny_image_processor", "image": {"image_name": record.image_name}, "image_resolution": 1024}},
        "edges": []})
    assert too_big.status == "failed"
    assert "max_image_pixels" in too_big.errors[0].message


async def test_content_shuffle_repeats_per_seed_and_only_moves_pixels(host: Host) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    first = np.asarray(await run_node(host, {"type": "content_shuffle", "scale_factor": 16, "seed": 3}, pixels))
    again = np.asarray(await run_node(host, {"type": "content_shuffle", "scale_factor": 16, "seed": 3}, pixels))
    other = np.asarray(await run_node(host, {"type": "content_shuffle", "scale_factor": 16, "seed": 4}, pixels))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, pixels)
    source = {tuple(p) for p in pixels.reshape(-1, 3)}
    assert all(tuple(p) in source for p in first.reshape(-1, 3)), "every pixel comes from the image"


async def test_color_map_is_flat_per_tile_and_tile_downsamples(host: Host) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    mapped = np.asarray(await run_node(host, {"type": "color_map", "tile_size": 16}, pixels))
    assert mapped.shape == (64, 64, 3)
    for y in range(0, 64, 16):
        for x in range(0, 64, 16):
            block = mapped[y:y + 16, x:x + 16].reshape(-1, 3)
            assert (block == block[0]).all(), (y, x)
    tiled = await run_node(host, {"type": "tile_image_processor", "down_sampling_rate": 4.0}, pixels)
    assert tiled.size == (16, 16)
    assert np.allclose(np.asarray(tiled, dtype=float).mean(), pixels.mean(), atol=2)
