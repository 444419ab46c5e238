"""Probing FLUX.1 single files and LoRAs from their headers: the real key names and shapes of each layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from invoke_sd_probers.plugin import PROBERS
from invoke_sdk.models.probing import ModelOnDisk

from invoke_host.models.probing import probe_model
from invoke_host.registry.model_contributions import ordered_probers
from tests.flux_files.flux_tiny import (
    bfl_linears,
    bfl_lora,
    diffusers_to_bfl,
    diffusers_vae_to_ldm,
    meta_state_dict,
    shapes_of,
    write_header,
)
from tests.models import model_files as mf

PROBER_LIST = ordered_probers(p() for p in PROBERS)
SD_PROBERS = [p for p in PROBER_LIST if not p.name.startswith("flux.")]


def probe(path: Path) -> dict[str, object]:
    found = probe_model(path, PROBER_LIST)
    found.pop("_prober")
    return {k: getattr(v, "value", v) for k, v in found.items()}


def no_sd_prober_claims(path: Path) -> None:
    claims = {p.name: p.probe(ModelOnDisk(path)) for p in SD_PROBERS}
    assert {name: found for name, found in claims.items() if found is not None} == {}


def clip_file_shapes() -> dict[str, tuple[int, ...]]:
    # clip_l.safetensors names keys text_model.*, whatever prefix the installed transformers gives the module.
    return {("" if k.startswith("text_model.") else "text_model.") + k: s
            for k, s in shapes_of(meta_state_dict("clip")).items()}


@pytest.fixture(scope="module")
def real_transformer() -> dict[str, Any]:
    """FLUX.1 dev's transformer in BFL names, as meta tensors of the real shapes."""
    return diffusers_to_bfl(meta_state_dict("transformer"))


@pytest.mark.parametrize(("overrides", "variant"), [
    ({}, "dev"),
    ({"guidance_embeds": False}, "schnell"),
    ({"in_channels": 384, "out_channels": 64}, "dev_fill"),
])
@pytest.mark.parametrize("prefix", ["", "model.diffusion_model."])
def test_the_bfl_transformer_and_its_variant(tmp_path: Path, overrides: dict[str, Any], variant: str,
                                             prefix: str) -> None:
    bfl = diffusers_to_bfl(meta_state_dict("transformer", **overrides))
    assert bfl["double_blocks.18.img_attn.qkv.weight"].shape == (9216, 3072)
    assert bfl["single_blocks.37.linear1.weight"].shape == (21504, 3072)
    assert ("guidance_in.in_layer.weight" in bfl) is (variant != "schnell")
    path = write_header(tmp_path / "flux1.safetensors", {prefix + k: s for k, s in shapes_of(bfl).items()})
    assert probe(path) == {"type": "main", "format": "checkpoint", "base": "flux", "variant": variant}
    no_sd_prober_claims(path)


@pytest.mark.parametrize(("overrides", "variant"), [({}, "dev"), ({"guidance_embeds": False}, "schnell")])
def test_the_diffusers_named_single_file_transformer(tmp_path: Path, overrides: dict[str, Any], variant: str) -> None:
    shapes = shapes_of(meta_state_dict("transformer", **overrides))
    assert shapes["transformer_blocks.0.attn.to_q.weight"] == (3072, 3072)
    path = write_header(tmp_path / "flux1-diffusers.safetensors", shapes)
    assert probe(path) == {"type": "main", "format": "checkpoint", "base": "flux", "variant": variant}
    no_sd_prober_claims(path)


def test_a_comfyui_bundle_is_its_transformer_not_a_vae(tmp_path: Path, real_transformer: dict[str, Any]) -> None:
    vae = diffusers_vae_to_ldm(meta_state_dict("vae"), blocks=4)
    shapes = {**{f"model.diffusion_model.{k}": s for k, s in shapes_of(real_transformer).items()},
              **{f"vae.{k}": s for k, s in shapes_of(vae).items()}}
    path = write_header(tmp_path / "flux1-dev-fp8.safetensors", shapes)
    assert probe(path)["type"] == "main"
    assert [p.name for p in PROBER_LIST if p.probe(ModelOnDisk(path))] == ["flux.main.checkpoint"]


def test_the_flux_vae_has_16_latent_channels_and_sds_has_4(tmp_path: Path) -> None:
    ae = diffusers_vae_to_ldm(meta_state_dict("vae"), blocks=4)
    assert ae["encoder.conv_out.weight"].shape == (32, 512, 3, 3)
    assert ae["decoder.conv_in.weight"].shape == (512, 16, 3, 3)
    assert ae["encoder.mid.attn_1.q.weight"].shape == (512, 512, 1, 1)
    path = write_header(tmp_path / "ae.safetensors", shapes_of(ae))
    assert probe(path) == {"type": "vae", "format": "checkpoint", "base": "flux"}
    no_sd_prober_claims(path)

    sd = diffusers_vae_to_ldm(meta_state_dict("vae", latent_channels=4, use_quant_conv=True,
                                              use_post_quant_conv=True), blocks=4)
    sd_path = write_header(tmp_path / "sd-vae.safetensors", shapes_of(sd))
    assert probe(sd_path) == {"type": "vae", "format": "checkpoint", "base": "sd-1"}
    assert probe(mf.write_vae(tmp_path / "small-sd-vae.safetensors"))["base"] == "sd-1"


def test_clip_l_and_t5_xxl_encoder_files(tmp_path: Path) -> None:
    clip = clip_file_shapes()
    assert clip["text_model.encoder.layers.11.self_attn.q_proj.weight"] == (768, 768)
    clip_path = write_header(tmp_path / "clip_l.safetensors", clip)
    assert probe(clip_path) == {"type": "clip_embed", "format": "checkpoint", "base": "any"}
    no_sd_prober_claims(clip_path)

    t5 = {k: s for k, s in shapes_of(meta_state_dict("t5")).items() if k != "encoder.embed_tokens.weight"}
    assert t5["shared.weight"] == (32128, 4096)
    assert t5["encoder.block.23.layer.1.DenseReluDense.wi_0.weight"] == (10240, 4096)
    t5_path = write_header(tmp_path / "t5xxl_fp16.safetensors", t5)
    assert probe(t5_path) == {"type": "t5_encoder", "format": "checkpoint", "base": "any"}
    no_sd_prober_claims(t5_path)


def test_a_clip_vision_file_is_not_a_text_encoder(tmp_path: Path) -> None:
    shapes = {**clip_file_shapes(), "vision_model.embeddings.patch_embedding.weight": (1024, 3, 14, 14)}
    found = [p.name for p in PROBER_LIST if p.probe(ModelOnDisk(write_header(tmp_path / "clip.safetensors", shapes)))]
    assert "flux.clip_embed.checkpoint" not in found


@pytest.mark.parametrize(("layout", "recorded"), [("kohya", "kohya"), ("bfl", "peft"), ("xlabs", "diffusers")])
def test_flux_loras_in_bfl_names(tmp_path: Path, real_transformer: dict[str, Any], layout: str,
                                 recorded: str) -> None:
    lora = bfl_lora(bfl_linears(real_transformer), layout, rank=16, alpha=8.0, meta=True)
    if layout == "kohya":
        assert lora["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"].shape == (16, 3072)
        assert lora["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"].shape == (9216, 16)
        lora["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = lora[
            "lora_unet_img_in.lora_down.weight"][:, :768]
    elif layout == "xlabs":
        assert lora["double_blocks.0.processor.qkv_lora1.up.weight"].shape == (9216, 16)
    else:
        assert lora["diffusion_model.single_blocks.0.linear1.lora_B.weight"].shape == (21504, 16)
    path = write_header(tmp_path / "flux-lora.safetensors", shapes_of(lora))
    assert probe(path) == {"type": "lora", "format": "lycoris", "base": "flux", "layout": recorded}
    no_sd_prober_claims(path)


def test_a_peft_flux_lora_file_and_folder(tmp_path: Path) -> None:
    shapes = {"transformer.transformer_blocks.0.attn.to_q.lora_A.weight": (16, 3072),
              "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": (3072, 16),
              "transformer.single_transformer_blocks.3.proj_out.lora_A.weight": (16, 15360),
              "transformer.single_transformer_blocks.3.proj_out.lora_B.weight": (3072, 16)}
    path = write_header(tmp_path / "peft.safetensors", shapes)
    assert probe(path) == {"type": "lora", "format": "lycoris", "base": "flux", "layout": "peft"}
    no_sd_prober_claims(path)
    write_header(tmp_path / "folder" / "pytorch_lora_weights.safetensors", shapes)
    assert probe(tmp_path / "folder") == {"type": "lora", "format": "diffusers", "base": "flux"}


@pytest.mark.parametrize("base", ["sd-1", "sdxl"])
def test_sd_loras_keep_their_base(tmp_path: Path, base: str) -> None:
    assert probe(mf.write_lora_kohya(tmp_path / "k.safetensors", base))["base"] == base
    assert probe(mf.write_lora_peft(tmp_path / "p.safetensors", base))["base"] == base
