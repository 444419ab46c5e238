"""Inpainting through the queue API: denoise masks on a normal SD1 model (blending each step) and on an inpaint
model (9-channel UNet), gradient masks, and pasting the result back; on tiny random-weight models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TinyModels
from PIL import Image
from queue_harness import QueueApi, edge, queue_api

# The module's first test also builds and installs its tiny models (a minute or more on a loaded 2-core machine).
pytestmark = pytest.mark.timeout(600)

SIZE = 64
STEPS = 3


@pytest.fixture(scope="module")
def api(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueueApi]:
    from tiny_extra_models import build_inpaint_pipeline

    inpaint = build_inpaint_pipeline(tiny_models.root / "sd1", tmp_path_factory.mktemp("inpaint") / "sd1-inpaint")
    with queue_api(tmp_path_factory.mktemp("root")) as api:
        api.keys = {  # type: ignore[attr-defined]
            "sd1": api.install(tiny_models.root / "sd1", type="main", format="diffusers", base="sd-1"),
            "inpaint": api.install(inpaint, type="main", format="diffusers", base="sd-1", variant="inpaint"),
        }
        rng = np.random.default_rng(0)
        api.source = api.upload(Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)))  # type: ignore[attr-defined]
        yield api


def _mask(keep_columns: int) -> Any:
    """White (keep) in the left ``keep_columns`` pixel columns, black (repaint) in the rest."""
    array = np.zeros((SIZE, SIZE), dtype=np.uint8)
    array[:, :keep_columns] = 255
    return Image.fromarray(array, mode="L")


def inpaint_graph(key: str, image: str, mask: str, *, seed: int = 1, gradient: bool = False,
                  masked_image: bool = False, unet_for_mask: bool = False, edge_radius: int = 16) -> dict[str, Any]:
    """image -> i2l; mask -> create_(gradient|denoise)_mask; denoise from the image's latents; l2i; img_paste back."""
    nodes: dict[str, Any] = {
        "model": {"type": "main_model_loader", "model": {"key": key}},
        "positive": {"type": "compel", "prompt": "a red door"},
        "negative": {"type": "compel", "prompt": ""},
        "i2l": {"type": "i2l", "image": {"image_name": image}},
        "noise": {"type": "noise", "seed": seed, "width": SIZE, "height": SIZE},
        "denoise": {"type": "denoise_latents", "steps": STEPS, "cfg_scale": 5.0, "scheduler": "euler"},
        "l2i": {"type": "l2i"},
        "paste": {"type": "img_paste", "base_image": {"image_name": image}},
    }
    edges = [edge("model", "clip", "positive", "clip"), edge("model", "clip", "negative", "clip"),
             edge("model", "vae", "i2l", "vae"), edge("model", "unet", "denoise", "unet"),
             edge("positive", "conditioning", "denoise", "positive_conditioning"),
             edge("negative", "conditioning", "denoise", "negative_conditioning"),
             edge("noise", "noise", "denoise", "noise"), edge("i2l", "latents", "denoise", "latents"),
             edge("mask", "denoise_mask", "denoise", "denoise_mask"),
             edge("denoise", "latents", "l2i", "latents"), edge("model", "vae", "l2i", "vae"),
             edge("l2i", "image", "paste", "image")]
    if gradient:
        nodes["mask"] = {"type": "create_gradient_mask", "mask": {"image_name": mask}, "edge_radius": edge_radius}
        edges.append(edge("mask", "expanded_mask_area", "paste", "mask"))
        if masked_image:
            nodes["mask"]["image"] = {"image_name": image}
            edges.append(edge("model", "vae", "mask", "vae"))
        if unet_for_mask:
            edges.append(edge("model", "unet", "mask", "unet"))
    else:
        nodes["mask"] = {"type": "create_denoise_mask", "mask": {"image_name": mask}}
        nodes["paste"]["mask"] = {"image_name": mask}
        if masked_image:
            nodes["mask"]["image"] = {"image_name": image}
        edges.append(edge("model", "vae", "mask", "vae"))
    return {"nodes": nodes, "edges": edges}


def _latents(api: QueueApi, run: Any, node: str) -> Any:
    return api.tensor(run.results[node]["latents"]["latents_name"])


@pytest.mark.parametrize("model", ["sd1", "inpaint"])
def test_the_kept_half_stays_exactly_the_image_and_the_masked_half_is_repainted(api: Any, model: str) -> None:
    mask = api.upload(_mask(32))
    run = api.run(inpaint_graph(api.keys[model], api.source, mask, masked_image=model == "inpaint"))
    start, result = _latents(api, run, "i2l"), _latents(api, run, "denoise")
    assert result.shape == start.shape == (1, 4, 8, 8)
    assert np.array_equal(result[..., :4].numpy(), start[..., :4].numpy()), "kept latents are the image's, exactly"
    assert (result[..., 4:] - start[..., 4:]).abs().min() > 0, "every repainted latent changed"
    assert len([p for p in run.progress if p["invocation_source_id"] == "denoise"]) == STEPS

    source = np.asarray(api.image(api.source))
    generated = np.asarray(api.image(run.results["l2i"]["image"]["image_name"]))
    pasted = np.asarray(api.image(run.results["paste"]["image"]["image_name"]))
    assert np.array_equal(pasted[:, :32], source[:, :32]), "pasting back keeps the source where the mask is white"
    assert np.array_equal(pasted[:, 32:], generated[:, 32:])
    assert not np.array_equal(generated[:, 32:], source[:, 32:])

    again = api.run(inpaint_graph(api.keys[model], api.source, mask, masked_image=model == "inpaint"))
    assert np.array_equal(np.asarray(api.image(again.results["paste"]["image"]["image_name"])), pasted), \
        "same seed, same pixels"
    other = api.run(inpaint_graph(api.keys[model], api.source, mask, seed=2, masked_image=model == "inpaint"))
    assert not np.array_equal(_latents(api, other, "denoise")[..., 4:].numpy(), result[..., 4:].numpy())


def test_an_all_white_mask_leaves_the_latents_unchanged_and_an_all_black_one_repaints_everything(api: Any) -> None:
    keep_all = api.run(inpaint_graph(api.keys["sd1"], api.source, api.upload(_mask(SIZE))))
    assert np.array_equal(_latents(api, keep_all, "denoise").numpy(), _latents(api, keep_all, "i2l").numpy())
    repaint_all = api.run(inpaint_graph(api.keys["sd1"], api.source, api.upload(_mask(0))))
    assert (_latents(api, repaint_all, "denoise") - _latents(api, repaint_all, "i2l")).abs().min() > 0


def test_a_soft_mask_blends_between_the_image_and_the_repainted_latents(api: Any) -> None:
    hard = api.run(inpaint_graph(api.keys["sd1"], api.source, api.upload(_mask(0))))
    grey = api.run(inpaint_graph(api.keys["sd1"], api.source,
                                 api.upload(Image.new("L", (SIZE, SIZE), 128))))
    start = _latents(api, hard, "i2l")
    # Mask 128/255 keeps half of the original at the end: the result lies between the image and a full repaint.
    soft, full = _latents(api, grey, "denoise"), _latents(api, hard, "denoise")
    assert 0 < float((soft - start).abs().mean()) < float((full - start).abs().mean())


def test_a_gradient_mask_grows_the_repainted_area_with_a_falloff_and_pastes_back_over_it(api: Any) -> None:
    mask = api.upload(_mask(32))
    run = api.run(inpaint_graph(api.keys["sd1"], api.source, mask, gradient=True))
    field = run.results["mask"]["denoise_mask"]
    assert field["gradient"] is True and field["masked_latents_name"] is None, "a normal model needs no masked latents"
    soft = api.tensor(field["mask_name"])
    assert soft.shape == (1, 1, SIZE, SIZE)
    columns = [round(float(soft[0, 0, 0, x]) * 255) for x in range(0, SIZE, 8)]
    # At latent resolution (8 columns) the mask's edge is already soft (bilinear: 255 255 255 223 32 0 0 0); the
    # 16 pixels (2 latent columns) of edge_radius grow the repainted side with a Gaussian falloff, InvokeAI's.
    assert columns == [255, 253, 240, 152, 32, 0, 0, 0]
    expanded = np.asarray(api.image(run.results["mask"]["expanded_mask_area"]["image_name"]).convert("L"))
    assert (expanded[:, :8] == 255).all() and (expanded[:, 8:] == 0).all(), "all but the fully kept column"

    start, result = _latents(api, run, "i2l"), _latents(api, run, "denoise")
    assert np.array_equal(result[..., :1].numpy(), start[..., :1].numpy())
    assert (result[..., 5:] - start[..., 5:]).abs().min() > 0
    change = [float((result[..., x] - start[..., x]).abs().mean()) for x in range(1, 5)]
    # With 3 steps the schedule has 3 thresholds: the columns at 0.99 and 0.94 are denoised in the last step only,
    # those at 0.6 and 0.13 in more of them.
    assert max(change[:2]) < min(change[2:]), f"the softer the mask, the less the change: {change}"
    source = np.asarray(api.image(api.source))
    pasted = np.asarray(api.image(run.results["paste"]["image"]["image_name"]))
    assert np.array_equal(pasted[:, :8], source[:, :8])
    generated = np.asarray(api.image(run.results["l2i"]["image"]["image_name"]))
    assert np.array_equal(pasted[:, 8:], generated[:, 8:])


def test_a_gradient_mask_encodes_masked_latents_only_for_an_inpaint_model(api: Any) -> None:
    mask = api.upload(_mask(32))
    normal = api.run(inpaint_graph(api.keys["sd1"], api.source, mask, gradient=True, masked_image=True,
                                   unet_for_mask=True))
    assert normal.results["mask"]["denoise_mask"]["masked_latents_name"] is None
    inpaint = api.run(inpaint_graph(api.keys["inpaint"], api.source, mask, gradient=True, masked_image=True,
                                    unet_for_mask=True))
    masked = api.tensor(inpaint.results["mask"]["denoise_mask"]["masked_latents_name"])
    assert masked.shape == (1, 4, 8, 8)
    start, result = _latents(api, inpaint, "i2l"), _latents(api, inpaint, "denoise")
    assert np.array_equal(result[..., :1].numpy(), start[..., :1].numpy())


def test_an_inpaint_model_without_masked_latents_says_what_to_connect(api: Any) -> None:
    run = api.run(inpaint_graph(api.keys["inpaint"], api.source, api.upload(_mask(32))), expect="failed")
    assert "connect the image and VAE to create_denoise_mask" in (run.error or "")


def test_an_inpaint_model_also_paints_from_nothing_without_a_mask(api: Any) -> None:
    graph = inpaint_graph(api.keys["inpaint"], api.source, api.upload(_mask(32)))
    for node in ("mask", "i2l", "paste"):
        del graph["nodes"][node]
    graph["edges"] = [e for e in graph["edges"] if not {e["source"]["node_id"], e["destination"]["node_id"]}
                      & {"mask", "i2l", "paste"}]
    run = api.run(graph)
    assert api.image(run.results["l2i"]["image"]["image_name"]).size == (SIZE, SIZE)


def test_mask_from_alpha_and_combined_masks(api: Any) -> None:
    rgba = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    rgba[..., 3] = np.arange(SIZE, dtype=np.uint8)[None, :] * 4
    image = api.upload(Image.fromarray(rgba, mode="RGBA"))
    half = api.upload(_mask(32))
    graph = {"nodes": {"alpha": {"type": "tomask", "image": {"image_name": image}},
                       "inverted": {"type": "tomask", "image": {"image_name": image}, "invert": True},
                       "both": {"type": "mask_combine", "mask2": {"image_name": half}}},
             "edges": [edge("alpha", "image", "both", "mask1")]}
    run = api.run(graph)
    alpha = np.asarray(api.image(run.results["alpha"]["image"]["image_name"]).convert("L"))
    inverted = np.asarray(api.image(run.results["inverted"]["image"]["image_name"]).convert("L"))
    both = np.asarray(api.image(run.results["both"]["image"]["image_name"]).convert("L"))
    assert np.array_equal(alpha, rgba[..., 3]) and np.array_equal(inverted, 255 - rgba[..., 3])
    assert np.array_equal(both[:, :32], rgba[:, :32, 3]) and (both[:, 32:] == 0).all()


def test_a_mask_without_the_image_latents_is_refused_with_a_message(api: Any, tmp_path: Path) -> None:
    graph = inpaint_graph(api.keys["sd1"], api.source, api.upload(_mask(32)))
    graph["nodes"].pop("i2l")
    graph["edges"] = [e for e in graph["edges"] if "i2l" not in (e["source"]["node_id"], e["destination"]["node_id"])]
    run = api.run(graph, expect="failed")
    assert "a denoise mask needs the latents of the image to inpaint" in (run.error or "")
