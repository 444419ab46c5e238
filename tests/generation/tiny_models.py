"""Tiny SD1-, SD2- and SDXL-shaped models with random weights, built from configs, saved the way users have them.

The tokenizer is made here: CLIP's byte-level BPE with a 514-token vocabulary (the 256 byte symbols,
the same with the end-of-word mark, and the start/end tokens) and no merges, so every character is
one token. It is a real ``CLIPTokenizer`` loaded with ``from_pretrained``; it installs nothing and
needs no network (the real 49,408-token vocabulary would need the ``open_clip_torch`` wheel, whose
dependencies include torchvision). One character per token also makes prompts over 77 tokens easy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VOCAB_SIZE = 514
BOS, EOS = 512, 513


def _bytes_to_unicode() -> list[str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer(folder: Path, pad_token: str) -> Path:
    """A CLIP tokenizer folder (vocab.json, merges.txt, tokenizer_config.json)."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    symbols = _bytes_to_unicode()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": 256 + i for i, s in enumerate(symbols)})
    vocab.update({"<|startoftext|>": BOS, "<|endoftext|>": EOS})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": pad_token,
    }))
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    assert len(tokenizer) == VOCAB_SIZE, f"tokenizer built with {len(tokenizer)} tokens"
    return folder


def _text_config(hidden: int, projection: int | None = None) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, projection_dim=projection or hidden,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS, hidden_act="quick_gelu",
    )


def build_pipeline(kind: str, folder: Path, tokenizers: Path, seed: int = 0) -> Path:
    """Save a tiny ``kind`` (``sd1``, ``sd2`` or ``sdxl``) pipeline with random weights as a diffusers folder."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        # Four blocks: the real VAE's 8x downscale, so latents and images keep their real size ratio.
        block_out_channels=(32, 32, 32, 32), in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
        sample_size=64,
    )
    tok_sd1 = CLIPTokenizer.from_pretrained(str(tokenizers / "sd1"))
    tok_sd2 = CLIPTokenizer.from_pretrained(str(tokenizers / "sd2"))
    unet_common: dict[str, Any] = {
        "block_out_channels": (32, 64), "layers_per_block": 1, "sample_size": 8, "in_channels": 4,
        "out_channels": 4, "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"), "norm_num_groups": 32,
    }
    if kind == "sd1":
        from diffusers import StableDiffusionPipeline

        unet = UNet2DConditionModel(cross_attention_dim=32, attention_head_dim=8, **unet_common)
        scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  clip_sample=False, set_alpha_to_one=False, steps_offset=1)
        pipe: Any = StableDiffusionPipeline(
            vae=vae, text_encoder=CLIPTextModel(_text_config(32)), tokenizer=tok_sd1, unet=unet,
            scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    elif kind == "sd2":
        from diffusers import StableDiffusionPipeline

        unet = UNet2DConditionModel(cross_attention_dim=32, attention_head_dim=(2, 4), use_linear_projection=True,
                                    **unet_common)
        scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                                  prediction_type="v_prediction")
        pipe = StableDiffusionPipeline(
            vae=vae, text_encoder=CLIPTextModel(_text_config(32)), tokenizer=tok_sd2, unet=unet,
            scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
    elif kind == "sdxl":
        from diffusers import StableDiffusionXLPipeline

        # The second encoder is wider than the first (48 vs 32), as bigG is wider than ViT-L: single-file
        # loading tells the two apart by width. Context 32 + 48; added embedding 6 time ids x 8 + pooled 48.
        unet = UNet2DConditionModel(
            cross_attention_dim=80, attention_head_dim=(2, 4), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=96,
            transformer_layers_per_block=(1, 2), **unet_common,
        )
        scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                           timestep_spacing="leading", steps_offset=1)
        pipe = StableDiffusionXLPipeline(
            vae=vae, text_encoder=CLIPTextModel(_text_config(32)), tokenizer=tok_sd1,
            text_encoder_2=CLIPTextModelWithProjection(_text_config(48, projection=48)), tokenizer_2=tok_sd2,
            unet=unet, scheduler=scheduler,
        )
    else:
        raise ValueError(kind)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def write_lora(pipeline_folder: Path, path: Path, seed: int, rank: int = 4) -> Path:
    """A kohya-format LoRA (``lora_unet_*`` / ``lora_te_*``) for every attention projection of a tiny pipeline."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, Any] = {}
    unet = UNet2DConditionModel.from_pretrained(str(pipeline_folder), subfolder="unet")
    encoder = CLIPTextModel.from_pretrained(str(pipeline_folder), subfolder="text_encoder")
    targets = [("lora_unet_", unet, ("to_q", "to_k", "to_v", "to_out.0")),
               ("lora_te_", encoder, ("q_proj", "k_proj", "v_proj", "out_proj"))]
    for prefix, model, names in targets:
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name.endswith(names):
                # Real files name CLIP's modules below text_model. (transformers 5's CLIPTextModel has no such level).
                spelled = f"text_model.{name}" if model is encoder and not name.startswith("text_model.") else name
                key = prefix + spelled.replace(".", "_")
                out_f, in_f = module.weight.shape
                tensors[f"{key}.lora_down.weight"] = torch.randn(rank, in_f, generator=generator) * 0.5
                tensors[f"{key}.lora_up.weight"] = torch.randn(out_f, rank, generator=generator) * 0.5
                tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path))
    return path
