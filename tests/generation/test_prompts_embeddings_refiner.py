"""Textual-inversion embeddings in prompts, clip_skip and the SDXL refiner, through the queue API on tiny models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TinyModels
from queue_harness import QueueApi, edge, queue_api

# The module's first test also builds and installs its tiny models (a minute or more on a loaded 2-core machine).
pytestmark = pytest.mark.timeout(600)

SIZE = 64


@pytest.fixture(scope="module")
def api(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueueApi]:
    from tiny_extra_models import build_refiner_pipeline, write_embedding

    files = tmp_path_factory.mktemp("extra")
    refiner = build_refiner_pipeline(tiny_models.root / "sdxl", files / "refiner")
    with queue_api(tmp_path_factory.mktemp("root")) as api:
        main = {"type": "main", "format": "diffusers"}
        emb = {"type": "embedding", "format": "embedding_file"}
        api.keys = {  # type: ignore[attr-defined]
            "sd1": api.install(tiny_models.root / "sd1", **main, base="sd-1"),
            "sdxl": api.install(tiny_models.root / "sdxl", **main, base="sdxl"),
            "refiner": api.install(refiner, **main, base="sdxl-refiner"),
            "style": api.install(write_embedding(files / "style.safetensors", (32,), vectors=3), **emb,
                                 base="sd-1", name="my-style"),
            "style-pt": api.install(write_embedding(files / "other.pt", (32,), seed=9, a1111_pt=True), **emb,
                                    base="sd-1", name="other-style"),
            "wide": api.install(write_embedding(files / "wide.safetensors", (48,)), **emb, base="sd-1",
                                name="too-wide"),
            "xl": api.install(write_embedding(files / "xl.safetensors", (32, 48)), **emb, base="sdxl",
                              name="my-style"),
        }
        yield api


def _embeds(api: QueueApi, prompt: str, *, key: str, skips: tuple[int, ...] = ()) -> Any:
    nodes: dict[str, Any] = {"model": {"type": "main_model_loader", "model": {"key": key}},
                             "prompt": {"type": "compel", "prompt": prompt}}
    edges = []
    source = "model"
    for i, skip in enumerate(skips):
        nodes[f"skip{i}"] = {"type": "clip_skip", "skipped_layers": skip}
        edges.append(edge(source, "clip", f"skip{i}", "clip"))
        source = f"skip{i}"
    edges.append(edge(source, "clip", "prompt", "clip"))
    run = api.run({"nodes": nodes, "edges": edges})
    return api.host.node_services.conditioning.load(run.results["prompt"]["conditioning"]["conditioning_name"])


def test_an_embedding_in_a_prompt_is_its_vectors_in_place_of_the_name(api: Any, tiny_models: TinyModels) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTokenizer

    # An embedding whose vectors are exactly the token vectors of "dog" must encode like the word "dog".
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_models.root / "sd1" / "tokenizer"))
    encoder = CLIPTextModel.from_pretrained(str(tiny_models.root / "sd1" / "text_encoder"))
    ids = tokenizer("dog", add_special_tokens=False).input_ids
    assert len(ids) == 3, "one token per character in the tiny vocabulary"
    path = Path(api.host.config.root) / "dog.safetensors"
    save_file({"emb_params": encoder.get_input_embeddings().weight[ids].detach().clone()}, str(path))
    api.install(path, type="embedding", format="embedding_file", base="sd-1", name="dog-word")

    word = _embeds(api, "a dog on grass", key=api.keys["sd1"])["embeds"]
    embedded = _embeds(api, "a <dog-word> on grass", key=api.keys["sd1"])["embeds"]
    assert torch.allclose(word, embedded, atol=1e-5)

    plain = _embeds(api, "a cat", key=api.keys["sd1"])["embeds"]
    styled = _embeds(api, "a <my-style> cat", key=api.keys["sd1"])["embeds"]
    again = _embeds(api, "a <my-style> cat", key=api.keys["sd1"])["embeds"]
    other = _embeds(api, "a <other-style> cat", key=api.keys["sd1"])["embeds"]  # an A1111 .pt file
    assert torch.equal(styled, again)
    assert not torch.allclose(styled, plain) and not torch.allclose(styled, other)
    assert torch.equal(_embeds(api, "a cat", key=api.keys["sd1"])["embeds"], plain), "the encoder is put back"


def test_an_unknown_name_stays_text_and_a_wrong_width_is_refused(api: Any) -> None:
    import torch

    literal = _embeds(api, "a <nobody> cat", key=api.keys["sd1"])["embeds"]
    assert not torch.allclose(literal, _embeds(api, "a cat", key=api.keys["sd1"])["embeds"])
    graph = {"nodes": {"model": {"type": "main_model_loader", "model": {"key": api.keys["sd1"]}},
                       "prompt": {"type": "compel", "prompt": "a <too-wide> cat"}},
             "edges": [edge("model", "clip", "prompt", "clip")]}
    run = api.run(graph, expect="failed")
    assert "embedding too-wide has vectors of width 48" in (run.error or "")
    assert "made for another base model" in (run.error or "")


def test_an_sdxl_embedding_feeds_both_text_encoders(api: Any) -> None:
    import torch

    def sdxl(prompt: str) -> Any:
        graph = {"nodes": {"model": {"type": "sdxl_model_loader", "model": {"key": api.keys["sdxl"]}},
                           "prompt": {"type": "sdxl_compel_prompt", "prompt": prompt}},
                 "edges": [edge("model", "clip", "prompt", "clip"), edge("model", "clip2", "prompt", "clip2")]}
        run = api.run(graph)
        return api.host.node_services.conditioning.load(run.results["prompt"]["conditioning"]["conditioning_name"])

    plain, styled = sdxl("a cat"), sdxl("a <my-style> cat")
    # The first 32 channels come from CLIP 1 (clip_l), the other 48 from CLIP 2 (clip_g): both change.
    assert not torch.allclose(plain["embeds"][..., :32], styled["embeds"][..., :32])
    assert not torch.allclose(plain["embeds"][..., 32:], styled["embeds"][..., 32:])


def test_clip_skip_takes_an_earlier_layer_and_skips_add_up(api: Any) -> None:
    import torch

    key = api.keys["sd1"]
    none, one = _embeds(api, "a cat", key=key)["embeds"], _embeds(api, "a cat", key=key, skips=(1,))["embeds"]
    assert not torch.allclose(none, one)
    assert torch.equal(_embeds(api, "a cat", key=key, skips=(0, 1))["embeds"], one)
    skip_one = {"type": "clip_skip", "skipped_layers": 1}
    graph = {"nodes": {"model": {"type": "main_model_loader", "model": {"key": key}}, "a": skip_one, "b": skip_one},
             "edges": [edge("model", "clip", "a", "clip"), edge("a", "clip", "b", "clip")]}
    run = api.run(graph, expect="failed")  # the tiny encoder has 2 layers
    assert "skipped_layers adds up to 2, but this text encoder has 2 layers" in (run.error or "")


def _refine_graph(api: Any, *, seed: int = 1, aesthetic_score: float = 6.0) -> dict[str, Any]:
    """SDXL base denoises to 0.6 of the schedule, the refiner from there; then the refiner's VAE decodes."""
    sizes = {"original_width": SIZE, "original_height": SIZE}
    nodes: dict[str, Any] = {
        "base": {"type": "sdxl_model_loader", "model": {"key": api.keys["sdxl"]}},
        "pos": {"type": "sdxl_compel_prompt", "prompt": "a cat", **sizes, "target_width": SIZE,
                "target_height": SIZE},
        "neg": {"type": "sdxl_compel_prompt", "prompt": "", **sizes, "target_width": SIZE, "target_height": SIZE},
        "noise": {"type": "noise", "seed": seed, "width": SIZE, "height": SIZE},
        "denoise": {"type": "denoise_latents", "steps": 4, "cfg_scale": 5.0, "denoising_end": 0.6},
        "refiner": {"type": "sdxl_refiner_model_loader", "model": {"key": api.keys["refiner"]}},
        "rpos": {"type": "sdxl_refiner_compel_prompt", "style": "a cat", "aesthetic_score": aesthetic_score, **sizes},
        "rneg": {"type": "sdxl_refiner_compel_prompt", "style": "", "aesthetic_score": 2.5, **sizes},
        "refine": {"type": "denoise_latents", "steps": 4, "cfg_scale": 5.0, "denoising_start": 0.6},
        "l2i": {"type": "l2i"},
    }
    edges = [edge("base", "clip", "pos", "clip"), edge("base", "clip2", "pos", "clip2"),
             edge("base", "clip", "neg", "clip"), edge("base", "clip2", "neg", "clip2"),
             edge("base", "unet", "denoise", "unet"), edge("noise", "noise", "denoise", "noise"),
             edge("pos", "conditioning", "denoise", "positive_conditioning"),
             edge("neg", "conditioning", "denoise", "negative_conditioning"),
             edge("refiner", "clip2", "rpos", "clip2"), edge("refiner", "clip2", "rneg", "clip2"),
             edge("refiner", "unet", "refine", "unet"), edge("denoise", "latents", "refine", "latents"),
             edge("noise", "noise", "refine", "noise"),
             edge("rpos", "conditioning", "refine", "positive_conditioning"),
             edge("rneg", "conditioning", "refine", "negative_conditioning"),
             edge("refine", "latents", "l2i", "latents"), edge("refiner", "vae", "l2i", "vae")]
    return {"nodes": nodes, "edges": edges}


def test_the_sdxl_refiner_finishes_what_the_base_started(api: Any) -> None:
    first = api.run(_refine_graph(api))
    cond = api.host.node_services.conditioning.load(first.results["rpos"]["conditioning"]["conditioning_name"])
    assert cond["embeds"].shape == (1, 77, 48), "the refiner reads CLIP 2 only"
    assert cond["add_time_ids"].tolist() == [[SIZE, SIZE, 0, 0, 6.0]], "size, crop and aesthetic score"
    refine_steps = [p for p in first.progress if p["invocation_source_id"] == "refine"]
    assert len(refine_steps) == 2, "4 steps from 0.6 of the schedule: the last 2"
    image = np.asarray(api.image(first.results["l2i"]["image"]["image_name"]))
    assert image.shape == (SIZE, SIZE, 3)
    again = np.asarray(api.image(api.run(_refine_graph(api)).results["l2i"]["image"]["image_name"]))
    assert np.array_equal(image, again), "same seed, same pixels"
    scored = np.asarray(api.image(api.run(_refine_graph(api, aesthetic_score=9.0)).results["l2i"]["image"]
                                  ["image_name"]))
    assert not np.array_equal(image, scored), "the aesthetic score conditions the refiner"


def test_the_model_loaders_tell_refiner_and_base_apart(api: Any) -> None:
    wrong = {"nodes": {"m": {"type": "sdxl_refiner_model_loader", "model": {"key": api.keys["sdxl"]}}}, "edges": []}
    assert "this node takes sdxl-refiner" in (api.run(wrong, expect="failed").error or "")
    wrong = {"nodes": {"m": {"type": "sdxl_model_loader", "model": {"key": api.keys["refiner"]}}}, "edges": []}
    assert "this node takes sdxl" in (api.run(wrong, expect="failed").error or "")


def test_an_a1111_pt_embedding_is_probed_from_its_pickled_tensors(api: Any, tmp_path: Path) -> None:
    from tiny_extra_models import write_embedding

    key = api.install(write_embedding(tmp_path / "a1111.pt", (768,), a1111_pt=True))  # no overrides
    record = api.model(key)
    assert (record["type"], record["format"], record["base"]) == ("embedding", "embedding_file", "sd-1")
