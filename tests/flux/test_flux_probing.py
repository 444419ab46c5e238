"""Probing FLUX folders on the published configs (black-forest-labs/FLUX.1-dev, -schnell, -Fill-dev, InvokeAI's
T5/CLIP repos) with safetensors headers of the real tensor names and shapes over sparse files: no weights, no torch.

The SD probers must not claim a FLUX part, and the FLUX probers no SD model."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import invoke_sd_probers.plugin
import pytest
from invoke_sd_probers.flux_folders import (
    CLIPEmbedFolderProber,
    FluxPipelineProber,
    FluxVAEFolderProber,
    T5EncoderFolderProber,
)
from invoke_sdk.models.probing import ModelOnDisk

from invoke_host.models.probing import probe_model

PROBERS = sorted((cls() for cls in invoke_sd_probers.plugin.PROBERS), key=lambda p: (p.order, p.name))
FLUX_PROBERS = (FluxPipelineProber, T5EncoderFolderProber, CLIPEmbedFolderProber, FluxVAEFolderProber)

MODEL_INDEX = {
    "_class_name": "FluxPipeline", "_diffusers_version": "0.30.0.dev0",
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
TRANSFORMER = {"_class_name": "FluxTransformer2DModel", "_diffusers_version": "0.30.0.dev0", "attention_head_dim": 128,
               "guidance_embeds": True, "in_channels": 64, "joint_attention_dim": 4096, "num_attention_heads": 24,
               "num_layers": 19, "num_single_layers": 38, "patch_size": 1, "pooled_projection_dim": 768}
T5 = {"architectures": ["T5EncoderModel"], "d_ff": 10240, "d_kv": 64, "d_model": 4096, "dense_act_fn": "gelu_new",
      "feed_forward_proj": "gated-gelu", "is_gated_act": True, "model_type": "t5", "num_heads": 64, "num_layers": 24,
      "relative_attention_num_buckets": 32, "vocab_size": 32128, "torch_dtype": "bfloat16"}
CLIP_L = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_size": 768,
          "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768,
          "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "quick_gelu"}
FLUX_VAE = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.30.0.dev0",
            "block_out_channels": [128, 256, 512, 512], "in_channels": 3, "latent_channels": 16,
            "layers_per_block": 2, "out_channels": 3, "sample_size": 1024,
            "scaling_factor": 0.3611, "shift_factor": 0.1159, "use_quant_conv": False, "use_post_quant_conv": False}
SD_VAE = {**FLUX_VAE, "latent_channels": 4, "scaling_factor": 0.18215, "shift_factor": None, "use_quant_conv": True}


def header_file(path: Path, shapes: dict[str, tuple[int, ...]], dtype: str = "BF16") -> None:
    """A valid safetensors file, sparse on disk: the header, then a hole as long as the tensors."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)


def write(folder: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


def flux_pipeline(folder: Path, *, guidance: bool = True, fill: bool = False) -> Path:
    transformer = {**TRANSFORMER, "guidance_embeds": guidance}
    index = dict(MODEL_INDEX)
    if fill:
        transformer.update(in_channels=384, out_channels=64)
        index["_class_name"] = "FluxFillPipeline"
    write(folder, {"model_index.json": index, "transformer/config.json": transformer,
                   "text_encoder/config.json": CLIP_L, "text_encoder_2/config.json": T5,
                   "tokenizer/vocab.json": "{}",
                   "tokenizer_2/tokenizer_config.json": {"tokenizer_class": "T5Tokenizer"},
                   "vae/config.json": FLUX_VAE, "scheduler/scheduler_config.json": {
                       "_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, "use_dynamic_shifting": True}})
    header_file(folder / "transformer/diffusion_pytorch_model-00001-of-00003.safetensors", {
        "x_embedder.weight": (3072, 384 if fill else 64), "context_embedder.weight": (3072, 4096),
        "time_text_embed.text_embedder.linear_1.weight": (3072, 768),
        "transformer_blocks.0.attn.to_q.weight": (3072, 3072), "proj_out.weight": (64, 3072),
        **({"time_text_embed.guidance_embedder.linear_1.weight": (3072, 256)} if guidance else {}),
    })
    header_file(folder / "vae/diffusion_pytorch_model.safetensors", {"encoder.conv_in.weight": (128, 3, 3, 3),
                                                                      "decoder.conv_in.weight": (512, 16, 3, 3)})
    return folder


def t5_folder(folder: Path, *, invokeai_layout: bool) -> Path:
    encoder, tokenizer = ("text_encoder_2/", "tokenizer_2/") if invokeai_layout else ("", "")
    write(folder, {f"{encoder}config.json": T5, f"{tokenizer}tokenizer_config.json": {"tokenizer_class": "T5Tokenizer"},
                   f"{tokenizer}spiece.model": "sentencepiece"})
    header_file(folder / f"{encoder}model-00001-of-00002.safetensors", {
        "shared.weight": (32128, 4096), "encoder.block.0.layer.0.SelfAttention.q.weight": (4096, 4096),
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": (32, 64)})
    return folder


def clip_folder(folder: Path, *, invokeai_layout: bool) -> Path:
    encoder, tokenizer = ("text_encoder/", "tokenizer/") if invokeai_layout else ("", "")
    write(folder, {f"{encoder}config.json": CLIP_L, f"{tokenizer}vocab.json": "{}", f"{tokenizer}merges.txt": ""})
    header_file(folder / f"{encoder}model.safetensors", {
        "text_model.embeddings.token_embedding.weight": (49408, 768),
        "text_model.encoder.layers.0.self_attn.q_proj.weight": (768, 768)}, dtype="F16")
    return folder


@pytest.mark.parametrize(("guidance", "fill", "variant"), [(True, False, "dev"), (False, False, "schnell"),
                                                           (True, True, "dev_fill")])
def test_flux_pipeline_folders_by_variant(tmp_path: Path, guidance: bool, fill: bool, variant: str) -> None:
    found = probe_model(flux_pipeline(tmp_path / "flux", guidance=guidance, fill=fill), PROBERS)
    assert found == {"type": "main", "format": "diffusers", "base": "flux", "variant": variant,
                     "_prober": "flux.main.diffusers"}


@pytest.mark.parametrize("invokeai_layout", [False, True])
def test_t5_encoder_folders(tmp_path: Path, invokeai_layout: bool) -> None:
    found = probe_model(t5_folder(tmp_path / "t5", invokeai_layout=invokeai_layout), PROBERS)
    assert found == {"type": "t5_encoder", "format": "diffusers", "base": "any",
                     "_prober": "flux.t5_encoder.diffusers"}


@pytest.mark.parametrize("invokeai_layout", [False, True])
def test_clip_text_encoder_folders_are_clip_embed(tmp_path: Path, invokeai_layout: bool) -> None:
    found = probe_model(clip_folder(tmp_path / "clip", invokeai_layout=invokeai_layout), PROBERS)
    assert found == {"type": "clip_embed", "format": "diffusers", "base": "any",
                     "_prober": "flux.clip_embed.diffusers"}


def test_a_16_channel_vae_is_flux_and_a_4_channel_one_stays_sd(tmp_path: Path) -> None:
    flux_vae = write(tmp_path / "flux_vae", {"config.json": FLUX_VAE})
    header_file(flux_vae / "diffusion_pytorch_model.safetensors", {"decoder.conv_in.weight": (512, 16, 3, 3)})
    sd_vae = write(tmp_path / "sd_vae", {"config.json": SD_VAE})
    header_file(sd_vae / "diffusion_pytorch_model.safetensors", {"decoder.conv_in.weight": (512, 4, 3, 3)})
    assert probe_model(flux_vae, PROBERS) == {"type": "vae", "format": "diffusers", "base": "flux",
                                              "_prober": "flux.vae.diffusers"}
    assert probe_model(sd_vae, PROBERS) == {"type": "vae", "format": "diffusers", "base": "sd-1",
                                            "_prober": "sd.vae.diffusers"}


def test_no_sd_prober_claims_a_flux_part_and_no_flux_prober_an_sd_model(tmp_path: Path) -> None:
    flux_parts = [flux_pipeline(tmp_path / "dev"), t5_folder(tmp_path / "t5", invokeai_layout=True),
                  clip_folder(tmp_path / "clip", invokeai_layout=False),
                  write(tmp_path / "flux_vae", {"config.json": FLUX_VAE})]
    sd_probers = [p for p in PROBERS if not isinstance(p, FLUX_PROBERS)]
    for part in flux_parts:
        assert [p.name for p in sd_probers if p.probe(ModelOnDisk(part)) is not None] == [], part.name
    sd_pipeline = write(tmp_path / "sd1", {
        "model_index.json": {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
                             "text_encoder": ["transformers", "CLIPTextModel"]},
        "unet/config.json": {"_class_name": "UNet2DConditionModel", "cross_attention_dim": 768, "in_channels": 4},
        "text_encoder/config.json": CLIP_L, "tokenizer/vocab.json": "{}", "vae/config.json": SD_VAE})
    clip_vision = write(tmp_path / "clip_vision", {"config.json": {
        "architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model"}})
    for model in (sd_pipeline, clip_vision, write(tmp_path / "sd_vae", {"config.json": SD_VAE})):
        assert [p.name for p in PROBERS if isinstance(p, FLUX_PROBERS) and p.probe(ModelOnDisk(model))] == [], model
    assert probe_model(sd_pipeline, PROBERS)["base"] == "sd-1"
    assert probe_model(clip_vision, PROBERS)["type"] == "clip_vision"
