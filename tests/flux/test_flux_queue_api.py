"""FLUX.1 through the queue API on a live host: tiny dev and schnell folders installed and probed, every FLUX node run
from enqueued graphs and followed over /ws (text to image, image to image, seeds, cancel inside the loop, previews),
and models of the wrong family refused with messages that say what to pick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.flux.conftest import TinyFlux
from tests.generation.queue_harness import Q, QueueApi, edge, queue_api
from tests.waiting import wait_until

SIZE = 64
# Building and installing the tiny models is part of the first test's time; a loaded 2-core machine needs minutes.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def api(tiny_flux: TinyFlux, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueueApi]:
    with queue_api(tmp_path_factory.mktemp("flux-host")) as api:
        yield api


@pytest.fixture(scope="module")
def keys(api: QueueApi, tiny_flux: TinyFlux) -> dict[str, str]:
    found = {name: api.install(getattr(tiny_flux, name)) for name in ("dev", "schnell", "t5", "clip", "vae")}
    # The tiny SD model's 32-wide text encoder fits no real base: say what it is, as the SD tests do.
    found["sd1"] = api.install(tiny_flux.sd1, type="main", format="diffusers", base="sd-1")
    return found


def flux_graph(model: str, *, seed: int = 1, steps: int = 3, prompt: str = "a photo of a cat",
               loader: dict[str, Any] | None = None, **denoise: Any) -> dict[str, Any]:
    return {
        "id": "flux",
        "nodes": {
            "model": {"type": "flux_model_loader", "model": {"key": model}, **(loader or {})},
            "prompt": {"type": "flux_text_encoder", "prompt": prompt},
            "denoise": {"type": "flux_denoise", "width": SIZE, "height": SIZE, "num_steps": steps, "seed": seed,
                        "guidance": 3.5, **denoise},
            "decode": {"type": "flux_vae_decode"},
        },
        "edges": [
            edge("model", "clip", "prompt", "clip"), edge("model", "t5_encoder", "prompt", "t5_encoder"),
            edge("model", "max_seq_len", "prompt", "t5_max_seq_len"),
            edge("model", "transformer", "denoise", "transformer"),
            edge("prompt", "conditioning", "denoise", "positive_text_conditioning"),
            edge("denoise", "latents", "decode", "latents"), edge("model", "vae", "decode", "vae"),
        ],
    }


def pixels(api: QueueApi, run: Any, node: str = "decode") -> Any:
    return np.asarray(api.image(run.results[node]["image"]["image_name"]), dtype=np.int16)


def test_the_folders_are_probed_as_flux_parts(api: QueueApi, keys: dict[str, str]) -> None:
    found = {name: api.model(key) for name, key in keys.items()}
    assert (found["dev"]["type"], found["dev"]["base"], found["dev"]["variant"]) == ("main", "flux", "dev")
    assert (found["schnell"]["base"], found["schnell"]["variant"]) == ("flux", "schnell")
    assert (found["t5"]["type"], found["t5"]["format"]) == ("t5_encoder", "diffusers")
    assert (found["clip"]["type"], found["clip"]["format"]) == ("clip_embed", "diffusers")
    assert (found["vae"]["type"], found["vae"]["base"]) == ("vae", "flux")
    assert (found["sd1"]["type"], found["sd1"]["base"]) == ("main", "sd-1")


def test_dev_text_to_image_with_previews_and_metadata(api: QueueApi, keys: dict[str, str]) -> None:
    run = api.run(flux_graph(keys["dev"], steps=3))
    assert run.results["model"]["max_seq_len"] == 512
    image = run.results["decode"]
    assert (image["width"], image["height"]) == (SIZE, SIZE)
    previews = [p for p in run.progress if p["invocation_source_id"] == "denoise"]
    assert len(previews) == 3, "one progress event per step"
    assert all(p["image"] is not None and p["image"]["width"] == SIZE // 8 for p in previews), "each with a preview"
    assert [round(p["percentage"], 3) for p in previews] == [0.333, 0.667, 1.0]
    latents = api.tensor(run.results["denoise"]["latents"]["latents_name"])
    assert tuple(latents.shape) == (1, 16, SIZE // 8, SIZE // 8)
    meta = api.client.get(f"/api/v1/images/i/{image['image']['image_name']}/metadata").json()
    assert meta.get("generation_mode") == "flux_txt2img" and meta.get("positive_prompt") == "a photo of a cat", meta
    assert meta.get("guidance") == 3.5 and meta.get("seed") == 1 and meta["model"]["key"] == keys["dev"]


def test_same_seed_same_pixels_other_seed_other_pixels(api: QueueApi, keys: dict[str, str]) -> None:
    first = pixels(api, api.run(flux_graph(keys["dev"], seed=5, steps=2)))
    again = pixels(api, api.run(flux_graph(keys["dev"], seed=5, steps=2)))
    other = pixels(api, api.run(flux_graph(keys["dev"], seed=6, steps=2)))
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 1.0


def test_guidance_reaches_dev_and_is_ignored_by_schnell(api: QueueApi, keys: dict[str, str]) -> None:
    dev_low = pixels(api, api.run(flux_graph(keys["dev"], steps=2, guidance=1.0)))
    dev_high = pixels(api, api.run(flux_graph(keys["dev"], steps=2, guidance=9.0)))
    assert np.abs(dev_low - dev_high).mean() > 0.5
    schnell_low = pixels(api, api.run(flux_graph(keys["schnell"], steps=2, guidance=1.0)))
    schnell_high = pixels(api, api.run(flux_graph(keys["schnell"], steps=2, guidance=9.0)))
    assert np.array_equal(schnell_low, schnell_high)


def test_schnell_with_standalone_t5_clip_and_vae(api: QueueApi, keys: dict[str, str]) -> None:
    loader = {"t5_encoder_model": {"key": keys["t5"]}, "clip_embed_model": {"key": keys["clip"]},
              "vae_model": {"key": keys["vae"]}}
    run = api.run(flux_graph(keys["schnell"], steps=2, loader=loader))
    assert run.results["model"]["max_seq_len"] == 256
    assert run.results["model"]["t5_encoder"]["text_encoder"]["key"] == keys["t5"]
    assert run.results["model"]["vae"]["vae"]["key"] == keys["vae"]
    own = pixels(api, api.run(flux_graph(keys["schnell"], steps=2)))
    assert np.abs(pixels(api, run) - own).mean() > 0.5, "the standalone parts were used, not the folder's own"


def test_negative_conditioning_with_cfg_changes_the_image(api: QueueApi, keys: dict[str, str]) -> None:
    plain = pixels(api, api.run(flux_graph(keys["dev"], steps=2)))
    graph = flux_graph(keys["dev"], steps=2, cfg_scale=3.0)
    graph["nodes"]["negative"] = {"type": "flux_text_encoder", "prompt": "blurry"}
    graph["edges"] += [edge("model", "clip", "negative", "clip"), edge("model", "t5_encoder", "negative", "t5_encoder"),
                       edge("model", "max_seq_len", "negative", "t5_max_seq_len"),
                       edge("negative", "conditioning", "denoise", "negative_text_conditioning")]
    assert np.abs(pixels(api, api.run(graph)) - plain).mean() > 0.5


def test_a_lora_on_the_t5_encoder_changes_the_image_through_flux_lora_loader(
    api: QueueApi, keys: dict[str, str], tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(11)
    key = "lora_te2_encoder_block_0_layer_0_SelfAttention_q"  # the tiny T5's first query projection (32 x 32)
    save_file({f"{key}.lora_down.weight": torch.randn(4, 32, generator=generator) * 3,
               f"{key}.lora_up.weight": torch.randn(32, 4, generator=generator) * 3, f"{key}.alpha": torch.tensor(4.0)},
              str(tmp_path / "t5-lora.safetensors"))
    lora = api.install(tmp_path / "t5-lora.safetensors", type="lora", format="lycoris", base="flux")
    plain = pixels(api, api.run(flux_graph(keys["dev"], steps=2)))
    graph = flux_graph(keys["dev"], steps=2)
    graph["nodes"]["lora"] = {"type": "flux_lora_loader", "lora": {"key": lora}, "weight": 1.0}
    graph["edges"] = [e for e in graph["edges"] if e["destination"] != {"node_id": "prompt", "field": "t5_encoder"}]
    graph["edges"] += [edge("model", "t5_encoder", "lora", "t5_encoder"),
                       edge("lora", "t5_encoder", "prompt", "t5_encoder")]
    run = api.run(graph)
    got = run.results["lora"]
    assert (got["transformer"], got["clip"]) == (None, None)
    assert [(x["lora"]["key"], x["weight"]) for x in got["t5_encoder"]["loras"]] == [(lora, 1.0)]
    assert got["t5_encoder"]["text_encoder"] == run.results["model"]["t5_encoder"]["text_encoder"]
    assert np.abs(pixels(api, run) - plain).mean() > 0.5, "the LoRA reached the T5 encoder"
    # Unpatched afterwards: the plain graph gives the plain image again.
    assert np.array_equal(pixels(api, api.run(flux_graph(keys["dev"], steps=2))), plain)


def test_image_to_image_runs_only_the_steps_after_denoising_start(api: QueueApi, keys: dict[str, str]) -> None:
    from PIL import Image

    gradient = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    gradient[..., 0] = np.linspace(0, 255, SIZE, dtype=np.uint8)[None, :]
    gradient[..., 2] = 200
    source = api.upload(Image.fromarray(gradient))
    graph = flux_graph(keys["schnell"], steps=4, denoising_start=0.5)
    graph["nodes"]["encode"] = {"type": "flux_vae_encode", "image": {"image_name": source}}
    graph["edges"] += [edge("model", "vae", "encode", "vae"), edge("encode", "latents", "denoise", "latents")]
    run = api.run(graph)
    assert [p["message"] for p in run.progress if p["invocation_source_id"] == "denoise"] == [
        "Denoising step 1 of 2", "Denoising step 2 of 2"]
    encoded = api.tensor(run.results["encode"]["latents"]["latents_name"])
    assert tuple(encoded.shape) == (1, 16, SIZE // 8, SIZE // 8)
    img2img = pixels(api, run)
    txt2img = pixels(api, api.run(flux_graph(keys["schnell"], steps=4)))
    assert np.abs(img2img - txt2img).mean() > 0.5
    meta = api.client.get(f"/api/v1/images/i/{run.results['decode']['image']['image_name']}/metadata").json()
    assert meta["generation_mode"] == "flux_img2img" and meta["strength"] == 0.5


def test_inpainting_keeps_the_starting_latents_where_the_mask_keeps(api: QueueApi, keys: dict[str, str]) -> None:
    from PIL import Image

    source = api.upload(Image.fromarray(np.full((SIZE, SIZE, 3), 90, dtype=np.uint8)))
    half = np.zeros((SIZE, SIZE), dtype=np.uint8)
    half[:, : SIZE // 2] = 255
    mask = api.upload(Image.fromarray(half).convert("RGB"))
    graph = flux_graph(keys["schnell"], steps=3)
    graph["nodes"]["encode"] = {"type": "flux_vae_encode", "image": {"image_name": source}}
    graph["nodes"]["mask"] = {"type": "create_denoise_mask", "mask": {"image_name": mask}}
    graph["edges"] += [edge("model", "vae", "encode", "vae"), edge("encode", "latents", "denoise", "latents"),
                       edge("model", "vae", "mask", "vae"), edge("mask", "denoise_mask", "denoise", "denoise_mask")]
    run = api.run(graph)
    start = api.tensor(run.results["encode"]["latents"]["latents_name"])
    result = api.tensor(run.results["denoise"]["latents"]["latents_name"])
    keep = api.tensor(run.results["mask"]["denoise_mask"]["mask_name"]).float().reshape(SIZE, SIZE)
    kept_left = bool(keep[:, 0].min() == 1)
    assert kept_left != bool(keep[:, -1].max() == 1), "the mask keeps one half"
    kept, painted = (slice(0, 3), slice(5, 8)) if kept_left else (slice(5, 8), slice(0, 3))
    assert (result[..., kept] == start[..., kept]).all(), "the kept area is the starting image exactly"
    assert (result[..., painted] - start[..., painted]).abs().mean() > 0.1, "the rest was repainted"
    meta = api.client.get(f"/api/v1/images/i/{run.results['decode']['image']['image_name']}/metadata").json()
    assert meta["generation_mode"] == "flux_inpaint"


def test_cancel_stops_inside_the_denoise_loop(api: QueueApi, keys: dict[str, str]) -> None:
    item = api.enqueue(flux_graph(keys["dev"], steps=200))
    steps = 0
    while True:
        message = api.ws.receive_json()
        data = message["data"]
        if data.get("item_id") != item:
            continue
        if message["event"] == "invocation_progress" and data["invocation_source_id"] == "denoise":
            steps += 1
            if steps == 1:
                assert api.client.put(f"{Q}/i/{item}/cancel").status_code == 200
        if message["event"] == "queue_item_status_changed" and data["status"] in {"completed", "failed", "canceled"}:
            break
    assert data["status"] == "canceled"
    assert 1 <= steps < 200, "the loop stopped at the next step, not after all 200"
    cache = api.host.node_services.models.cache  # type: ignore[union-attr]
    # The item is canceled at once; the node's thread leaves the loop at its next step and unlocks the transformer.
    wait_until(lambda: all(entry.locks == 0 for entry in cache.entries()), "the transformer to be unlocked")


def test_models_of_the_other_family_are_refused_with_what_to_pick(api: QueueApi, keys: dict[str, str]) -> None:
    run = api.run(flux_graph(keys["sd1"]), expect="failed")
    assert f"model {keys['sd1']} has base sd-1, this node takes flux" in (run.error or "")
    sd_graph = {"id": "sd", "nodes": {"model": {"type": "main_model_loader", "model": {"key": keys["dev"]}}},
                "edges": []}
    run = api.run(sd_graph, expect="failed")
    assert f"model {keys['dev']} has base flux, this node takes sd-1/sd-2" in (run.error or "")
    run = api.run(flux_graph(keys["dev"], loader={"vae_model": {"key": keys["sd1"]}}), expect="failed")
    assert f"model {keys['sd1']} is a main model, not a VAE" in (run.error or "")
    run = api.run(flux_graph(keys["dev"], loader={"t5_encoder_model": {"key": keys["clip"]}}), expect="failed")
    assert f"model {keys['clip']} is a clip_embed model, not a T5 encoder" in (run.error or "")
    # A FLUX transformer wired into SD's denoise is refused before anything runs, naming both field types.
    graph = flux_graph(keys["dev"])
    graph["nodes"]["sd_denoise"] = {"type": "denoise_latents"}
    graph["edges"].append(edge("model", "transformer", "sd_denoise", "unet"))
    r = api.client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph}})
    assert r.status_code == 422, r.text
    assert "sd_denoise" in r.text and "unet" in r.text
    # FLUX latents are 64 features wide once packed: a size that does not fit the latents is a clear error.
    r = api.client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": flux_graph(keys["dev"], width=60)}})
    assert r.status_code == 422 and "multiple of 16" in r.text, r.text


def test_float8_storage_keeps_linear_weights_in_one_byte(tiny_flux: TinyFlux, tmp_path: Path) -> None:
    import torch

    sizes, images, weight_dtypes = {}, {}, {}
    for storage in ("bfloat16", "float8"):
        with queue_api(tmp_path / storage, precision="bfloat16", flux_transformer_storage=storage) as api:
            key = api.install(tiny_flux.dev)
            images[storage] = pixels(api, api.run(flux_graph(key, steps=2)))
            entries = api.host.node_services.models.cache.entries()  # type: ignore[union-attr]
            [transformer] = [e for e in entries if e.submodel == "transformer"]
            sizes[storage] = transformer.size_bytes
            # The adaLN modulation layers (norm*.linear) and the output projection stay in bfloat16: diffusers'
            # default skip list for layerwise casting, since their error shows in every pixel.
            weight_dtypes[storage] = {(m.weight.dtype, "norm" in name or name == "proj_out")
                                      for name, m in transformer.model.named_modules()
                                      if isinstance(m, torch.nn.Linear)}
            assert transformer.model.dtype == torch.bfloat16, "computed in bfloat16 either way"
    assert weight_dtypes == {"bfloat16": {(torch.bfloat16, False), (torch.bfloat16, True)},
                             "float8": {(torch.float8_e4m3fn, False), (torch.bfloat16, True)}}
    # The cache counts what is held: the other Linear weights at 1 byte instead of 2.
    assert sizes["float8"] < sizes["bfloat16"] * 0.7, sizes
    assert 0 < np.abs(images["float8"] - images["bfloat16"]).mean() < 30, "float8 weights: nearly the same picture"
