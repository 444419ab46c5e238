"""LoRA on FLUX: each key layout converted at load, patched into a tiny transformer, and removed bit for bit.

The expected weights are worked out here in BFL space: the LoRA's delta ``up @ down * alpha / rank`` is
added to the rows of the diffusers modules that BFL's fused layer stacks (``bfl_sources``), without the
plugin's split code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from invoke_diffusers_nodes.flux_file_loaders import clip_text_prefix
from invoke_diffusers_nodes.flux_lora import convert_flux_lora
from invoke_diffusers_nodes.loaders import all_loaders
from invoke_diffusers_nodes.lora_patch import patched_with_loras
from safetensors.torch import save_file

from tests.flux_files.flux_tiny import (
    bfl_linears,
    bfl_lora,
    bfl_sources,
    diffusers_to_bfl,
    tiny_transformer,
    transformer_out,
)
from tests.generation.gen_configs import TestModelConfig

WEIGHT = 0.8
LORA_LOADER = next(x for x in all_loaders() if (x.model_type, x.model_format) == ("lora", "lycoris"))


@pytest.fixture(scope="module")
def model() -> Any:
    return tiny_transformer(seed=3)


def lora_linears(model: Any) -> dict[str, tuple[int, int]]:
    sources = bfl_sources(dict(model.state_dict()))
    return {m: shape for m, shape in bfl_linears(diffusers_to_bfl(dict(model.state_dict()))).items() if m in sources}


def with_deltas(model: Any, factors: dict[str, tuple[Any, Any, float]]) -> Any:
    """A copy of ``model`` with each BFL layer's LoRA delta added to the diffusers rows it covers."""
    expected = copy.deepcopy(model)
    params = dict(expected.named_parameters())
    sources = bfl_sources(dict(model.state_dict()))
    with torch.no_grad():
        for module, (down, up, scale) in factors.items():
            delta = (up.double() @ down.double()) * scale * WEIGHT
            names, swap = sources[module]
            if swap:  # BFL's (shift, scale) rows are diffusers' (scale, shift)
                first, second = delta.chunk(2)
                delta = torch.cat([second, first])
            offset = 0
            for name in names:
                if offset == delta.shape[0]:
                    break  # XLabs covers only linear1's q/k/v rows
                weight = params[f"{name}.weight"]
                weight += delta[offset: offset + weight.shape[0]].to(weight.dtype)
                offset += weight.shape[0]
            assert offset == delta.shape[0], module
    return expected


def snapshot(model: Any) -> dict[str, Any]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_patch(model: Any, converted: dict[str, Any], expected: Any, target: str = "transformer") -> None:
    before = snapshot(model)
    with patched_with_loras(model, target, [(converted, WEIGHT, "lora")]):
        got, want = dict(model.named_parameters()), dict(expected.named_parameters())
        changed = [k for k in want if not torch.equal(want[k], before[k])]
        assert changed, "the LoRA patches nothing"
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)
        if target == "transformer":
            out = transformer_out(model, guidance=True)
            torch.testing.assert_close(out, transformer_out(expected, guidance=True), rtol=1e-5, atol=1e-5)
            assert not torch.allclose(out, transformer_out(_restored(before, model), guidance=True), atol=1e-4)
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before), "unpatching did not restore every weight"


def _restored(weights: dict[str, Any], model: Any) -> Any:
    original = copy.deepcopy(model)
    original.load_state_dict(weights)
    return original


@pytest.mark.parametrize(("layout", "alpha"), [("kohya", 2.0), ("kohya", None), ("bfl", 8.0), ("xlabs", None)])
def test_a_bfl_named_lora_patches_what_its_delta_says(model: Any, layout: str, alpha: float | None) -> None:
    factors: dict[str, tuple[Any, Any, float]] = {}
    lora = bfl_lora(lora_linears(model), layout, rank=4, seed=1, alpha=alpha, factors=factors)
    converted = convert_flux_lora(lora, "test")
    assert converted and all(k.startswith("transformer.") for k in converted)
    if layout != "xlabs":
        assert "transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight" in converted
        assert "transformer.norm_out.linear.lora_A.weight" in converted
    assert_patch(model, converted, with_deltas(model, factors))


def test_a_peft_lora_patches_the_modules_it_names(model: Any) -> None:
    generator = torch.Generator().manual_seed(2)
    targets = {"transformer_blocks.0.attn.to_q": (128, 128), "single_transformer_blocks.1.proj_mlp": (512, 128)}
    lora: dict[str, Any] = {}
    expected = copy.deepcopy(model)
    params = dict(expected.named_parameters())
    for name, (rows, cols) in targets.items():
        down, up = torch.randn(4, cols, generator=generator), torch.randn(rows, 4, generator=generator)
        lora[f"transformer.{name}.lora_A.weight"], lora[f"transformer.{name}.lora_B.weight"] = down, up
        with torch.no_grad():
            params[f"{name}.weight"] += (up.double() @ down.double() * WEIGHT).float()
    assert_patch(model, convert_flux_lora(lora, "peft"), expected)


def test_kohya_clip_l_keys_patch_flux_clip(tmp_path: Path) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, vocab_size=100)).eval()
    generator = torch.Generator().manual_seed(4)
    lora: dict[str, Any] = {}
    expected = copy.deepcopy(clip)
    params = dict(expected.named_parameters())
    for kohya, module, (rows, cols) in (("self_attn_q_proj", "self_attn.q_proj", (32, 32)),
                                        ("mlp_fc1", "mlp.fc1", (64, 32))):
        down, up = torch.randn(4, cols, generator=generator), torch.randn(rows, 4, generator=generator)
        key = f"lora_te1_text_model_encoder_layers_1_{kohya}"
        lora |= {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up, f"{key}.alpha": torch.tensor(2.0)}
        with torch.no_grad():
            params[f"{clip_text_prefix()}encoder.layers.1.{module}.weight"] += (
                up.double() @ down.double() * 0.5 * WEIGHT).float()
    lora["lora_unet_img_in.lora_down.weight"] = torch.zeros(4, 64)
    lora["lora_unet_img_in.lora_up.weight"] = torch.zeros(128, 4)
    converted = convert_flux_lora(lora, "clip")
    assert sorted(k for k in converted if k.startswith("text_encoder.")) == sorted(
        f"text_encoder.{clip_text_prefix()}encoder.layers.1.{m}.{s}" for m in ("self_attn.q_proj", "mlp.fc1")
        for s in ("lora_A.weight", "lora_B.weight", "alpha"))
    assert_patch(clip, converted, expected, target="text_encoder")


@pytest.mark.parametrize("prefix", ["lora_te2_", "lora_te3_"])  # InvokeAI's (kohya) spelling; sd-scripts' FLUX one
def test_kohya_t5_keys_patch_flux_t5(prefix: str) -> None:
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    t5 = T5EncoderModel(T5Config(vocab_size=98, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                 feed_forward_proj="gated-gelu")).eval()
    generator = torch.Generator().manual_seed(5)
    lora: dict[str, Any] = {}
    expected = copy.deepcopy(t5)
    params = dict(expected.named_parameters())
    for kohya, module, (rows, cols) in (("encoder_block_1_layer_0_SelfAttention_q", "encoder.block.1.layer.0."
                                         "SelfAttention.q", (32, 32)),
                                        ("encoder_block_0_layer_1_DenseReluDense_wi_0", "encoder.block.0.layer.1."
                                         "DenseReluDense.wi_0", (64, 32))):
        down, up = torch.randn(4, cols, generator=generator), torch.randn(rows, 4, generator=generator)
        key = f"{prefix}{kohya}"
        lora |= {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up, f"{key}.alpha": torch.tensor(2.0)}
        with torch.no_grad():
            params[f"{module}.weight"] += (up.double() @ down.double() * 0.5 * WEIGHT).float()
    lora["lora_unet_img_in.lora_down.weight"] = torch.zeros(4, 64)
    lora["lora_unet_img_in.lora_up.weight"] = torch.zeros(128, 4)
    converted = convert_flux_lora(lora, "t5")
    assert sorted(k for k in converted if k.startswith("lora_te")) == sorted(
        f"lora_te2_{k}" for k in lora if k.startswith(prefix) for k in [k.removeprefix(prefix)])
    assert_patch(t5, converted, expected, target="text_encoder_2")


def test_an_sdxl_lora_is_refused_for_flux_though_its_second_clip_is_named_like_t5() -> None:
    sdxl = {"lora_unet_down_blocks_1_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 640),
            "lora_unet_down_blocks_1_attentions_0_proj_in.lora_up.weight": torch.zeros(640, 4),
            "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 1280),
            "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(5120, 4)}
    with pytest.raises(ValueError, match=r"LoRA sdxl has no FLUX\.1 layers"):
        convert_flux_lora(sdxl, "sdxl")


def test_the_lora_loader_converts_a_flux_lora_file(tmp_path: Path, model: Any) -> None:
    lora = bfl_lora(lora_linears(model), "kohya", rank=4, alpha=4.0)
    save_file(lora, str(tmp_path / "flux-lora.safetensors"))
    config = TestModelConfig(key="fl", path=str(tmp_path / "flux-lora.safetensors"), type="lora", format="lycoris",
                             base="flux")
    loaded = LORA_LOADER.load(config, None, dtype="float32")
    assert "transformer.transformer_blocks.0.attn.to_k.lora_B.weight" in loaded
    assert not any(k.startswith("lora_unet_") for k in loaded)


def test_an_sd_lora_is_refused_for_flux(tmp_path: Path) -> None:
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    sd_lora = {f"{key}.lora_down.weight": torch.zeros(4, 768), f"{key}.lora_up.weight": torch.zeros(320, 4)}
    with pytest.raises(ValueError, match=r"LoRA sd has no FLUX\.1 layers .*another base model"):
        convert_flux_lora(sd_lora, "sd")
    save_file(sd_lora, str(tmp_path / "sd.safetensors"))
    config = TestModelConfig(key="sd-as-flux", path=str(tmp_path / "sd.safetensors"), type="lora", format="lycoris",
                             base="flux")
    with pytest.raises(ValueError, match=r"LoRA sd-as-flux has no FLUX\.1 layers"):
        LORA_LOADER.load(config, None, dtype="float32")
