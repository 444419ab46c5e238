"""Loading FLUX.1 single files through the main/vae/t5_encoder/clip_embed checkpoint loaders.

Each tiny file is written from a diffusers or transformers module with random weights, renamed into the
key layout the real files use; the loaded module must compute exactly what the original computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from invoke_diffusers_nodes.flux_file_loaders import flux_transformer_config, flux_vae_config, shipped_config
from invoke_diffusers_nodes.loaders import all_loaders
from safetensors.torch import save_file

from tests.flux_files.flux_tiny import (
    diffusers_to_bfl,
    diffusers_vae_to_ldm,
    meta_state_dict,
    tiny_transformer,
    transformer_out,
    write_t5_tokenizer,
)
from tests.generation.gen_configs import TestModelConfig
from tests.generation.tiny_models import write_tokenizer

LOADERS = {f"{loader.model_type}/{loader.model_format}": loader for loader in all_loaders()}


def load(path: Path, type_: str, base: str, submodel: str | None, **fields: Any) -> Any:
    config = TestModelConfig(key=path.stem, path=str(path), type=type_, format="checkpoint", base=base, **fields)
    return LOADERS[f"{type_}/checkpoint"].load(config, submodel, dtype="float32")


def save(path: Path, state_dict: dict[str, Any]) -> Path:
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    return path


def close(got: Any, want: Any) -> None:
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("layout", "guidance"), [("bfl", True), ("bfl", False), ("comfyui", True),
                                                  ("diffusers", True)])
def test_a_transformer_file_loads_as_the_module_it_was_written_from(tmp_path: Path, layout: str,
                                                                    guidance: bool) -> None:
    original = tiny_transformer(guidance_embeds=guidance)
    weights = dict(original.state_dict())
    if layout != "diffusers":
        weights = diffusers_to_bfl(weights)
        assert "double_blocks.0.img_attn.qkv.weight" in weights
    if layout == "comfyui":
        weights = {f"model.diffusion_model.{k}": v for k, v in weights.items()}
    path = save(tmp_path / "flux1.safetensors", weights)
    loaded = load(path, "main", "flux", "transformer", variant="dev" if guidance else "schnell")
    assert type(loaded) is type(original)
    assert loaded.config.guidance_embeds is guidance
    got, want = loaded.state_dict(), original.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)  # every weight, bit for bit
    # The same weights, though not at the same addresses: BLAS may take another path (a last-bit difference).
    torch.testing.assert_close(transformer_out(loaded, guidance), transformer_out(original, guidance),
                               rtol=1e-5, atol=1e-6)
    assert not loaded.training


def test_a_transformer_files_sizes_come_from_the_file_and_the_rest_from_the_shipped_config() -> None:
    from invoke_diffusers_nodes.flux_file_loaders import bfl_to_diffusers

    for variant, overrides in (("dev", {}), ("schnell", {"guidance_embeds": False}),
                               ("dev_fill", {"in_channels": 384, "out_channels": 64})):
        real = bfl_to_diffusers(diffusers_to_bfl(meta_state_dict("transformer", **overrides)))
        assert flux_transformer_config(real, variant) == shipped_config(f"transformer-{variant}")


def test_a_transformer_file_asks_only_for_what_it_holds(tmp_path: Path) -> None:
    # BFL's first releases were named .sft: the format is read from the content.
    path = save(tmp_path / "flux1-dev.sft", diffusers_to_bfl(dict(tiny_transformer().state_dict())))
    assert type(load(path, "main", "flux", "transformer")).__name__ == "FluxTransformer2DModel"
    with pytest.raises(ValueError, match="holds only the transformer, not 'vae'"):
        load(path, "main", "flux", "vae")
    with pytest.raises(ValueError, match=r"not a FLUX\.1 transformer file"):
        load(save(tmp_path / "half.safetensors", {"x_embedder.weight": torch.zeros(128, 64)}), "main", "flux",
             "transformer")


def test_the_flux_vae_file_loads_as_the_autoencoder_it_was_written_from(tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    original = AutoencoderKL.from_config({**shipped_config("vae"), "block_out_channels": [32, 64],
                                          "down_block_types": ["DownEncoderBlock2D"] * 2,
                                          "up_block_types": ["UpDecoderBlock2D"] * 2, "layers_per_block": 1}).eval()
    ae = diffusers_vae_to_ldm(dict(original.state_dict()), blocks=2)
    assert ae["decoder.conv_in.weight"].shape[1] == 16 and "quant_conv.weight" not in ae
    loaded = load(save(tmp_path / "ae.safetensors", ae), "vae", "flux", None)
    assert type(loaded) is AutoencoderKL
    assert (loaded.config.latent_channels, loaded.config.scaling_factor, loaded.config.shift_factor) == (
        16, 0.3611, 0.1159)
    image, latents = torch.rand(1, 3, 16, 16) * 2 - 1, torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        close(loaded.encode(image).latent_dist.mean, original.encode(image).latent_dist.mean)
        close(loaded.decode(latents).sample, original.decode(latents).sample)


def test_the_real_vae_shapes_give_the_shipped_config() -> None:
    assert flux_vae_config(diffusers_vae_to_ldm(meta_state_dict("vae"), blocks=4)) == shipped_config("vae")


def tiny_t5() -> Any:
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    return T5EncoderModel(T5Config(**{**shipped_config("t5-xxl"), "vocab_size": 40, "d_model": 32, "d_kv": 8,
                                      "num_heads": 4, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2})).eval()


def test_a_t5_encoder_file_with_its_tokenizer_from_config_path(tmp_path: Path) -> None:
    from transformers import T5EncoderModel, T5Tokenizer

    original = tiny_t5()
    # t5xxl_fp16.safetensors holds shared.weight and not the encoder's (tied) copy of it.
    weights = {k: v for k, v in original.state_dict().items() if k != "encoder.embed_tokens.weight"}
    path = save(tmp_path / "t5xxl.safetensors", weights)
    flux_folder = tmp_path / "FLUX.1-schnell"
    write_t5_tokenizer(flux_folder / "tokenizer_2", vocab_size=40)

    encoder = load(path, "t5_encoder", "any", "text_encoder_2", config_path=str(flux_folder))
    tokenizer = load(path, "t5_encoder", "any", "tokenizer_2", config_path=str(flux_folder))
    assert type(encoder) is T5EncoderModel and isinstance(tokenizer, T5Tokenizer)
    ids = tokenizer(["abc b a"], return_tensors="pt").input_ids
    assert ids[0, -1].item() == 1 and 2 not in ids[0].tolist()  # ends with </s>; every piece known
    with torch.no_grad():
        close(encoder(ids).last_hidden_state, original(ids).last_hidden_state)
    # One copy of the embedding in memory, as a folder load gives.
    assert encoder.encoder.embed_tokens.weight.data_ptr() == encoder.shared.weight.data_ptr()


def test_a_t5_file_without_a_tokenizer_says_what_to_set(tmp_path: Path) -> None:
    weights = {k: v for k, v in tiny_t5().state_dict().items() if k != "encoder.embed_tokens.weight"}
    path = save(tmp_path / "t5xxl.safetensors", weights)
    load(path, "t5_encoder", "any", "text_encoder_2")  # the encoder itself needs nothing more
    with pytest.raises(ValueError, match="carries no tokenizer: set the model's config_path"):
        load(path, "t5_encoder", "any", "tokenizer_2")
    with pytest.raises(ValueError, match=r"no tokenizer in .*empty"):
        (tmp_path / "empty").mkdir()
        load(path, "t5_encoder", "any", "tokenizer_2", config_path=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="not 'unet'"):
        load(path, "t5_encoder", "any", "unet")


def test_a_clip_l_file_with_its_tokenizer_from_config_path(tmp_path: Path) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    # CLIP-L's 12 heads at a tiny width: the loader reads the sizes from the file and the rest from clip-l.json.
    original = CLIPTextModel(CLIPTextConfig(**{**shipped_config("clip-l"), "vocab_size": 514, "hidden_size": 48,
                                               "projection_dim": 48, "intermediate_size": 96,
                                               "num_hidden_layers": 2})).eval()
    weights = {("" if k.startswith("text_model.") else "text_model.") + k: v for k, v in original.state_dict().items()}
    path = save(tmp_path / "clip_l.safetensors", weights)
    write_tokenizer(tmp_path / "tok", pad_token="<|endoftext|>")
    encoder = load(path, "clip_embed", "any", "text_encoder", config_path=str(tmp_path / "tok"))
    tokenizer = load(path, "clip_embed", "any", "tokenizer", config_path=str(tmp_path / "tok"))
    assert type(encoder) is CLIPTextModel and isinstance(tokenizer, CLIPTokenizer)
    ids = tokenizer(["a photo"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        got, want = encoder(ids), original(ids)
    close(got.last_hidden_state, want.last_hidden_state)
    close(got.pooler_output, want.pooler_output)
