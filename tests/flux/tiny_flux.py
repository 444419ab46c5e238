"""Tiny FLUX.1 models with random weights, built from configs and saved in the layouts users have.

Every part is a real diffusers/transformers class (FluxTransformer2DModel, T5EncoderModel, CLIPTextModel, a
16-channel AutoencoderKL) at toy width; the tokenizers are made here (CLIP's byte-level BPE from the SD tests,
a character-level T5 unigram vocabulary), so nothing comes from the hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.generation.tiny_models import BOS, EOS, VOCAB_SIZE, write_tokenizer

T5_WIDTH = 32
CLIP_WIDTH = 32
# The real FLUX.1 VAE's latent statistics: decode divides by scaling and adds the shift.
VAE_SCALING, VAE_SHIFT = 0.3611, 0.1159


def t5_tokenizer(folder: Path) -> Path:
    """A T5 tokenizer (unigram, one piece per printable character) saved with ``save_pretrained``."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)] + [(chr(c), -1.0) for c in range(33, 127)]
    T5Tokenizer(vocab=pieces, extra_ids=0).save_pretrained(str(folder))
    return folder


def _clip(seed: int) -> Any:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=VOCAB_SIZE, hidden_size=CLIP_WIDTH, intermediate_size=CLIP_WIDTH * 2, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS,
        hidden_act="quick_gelu",
    ))


def _t5(seed: int) -> Any:
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return T5EncoderModel(T5Config(vocab_size=98, d_model=T5_WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, feed_forward_proj="gated-gelu"))


def _vae(seed: int) -> Any:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=(32, 32, 32, 32), in_channels=3, out_channels=3, latent_channels=16, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
        sample_size=64, scaling_factor=VAE_SCALING, shift_factor=VAE_SHIFT, use_quant_conv=False,
        use_post_quant_conv=False,
    )


def transformer(seed: int, *, guidance: bool, width: int = 32, layers: int = 1) -> Any:
    """A FluxTransformer2DModel: ``layers`` double and single blocks, ``width`` = 2 heads x width/2."""
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    head = width // 2
    rope = (head - 2 * (head * 3 // 8), head * 3 // 8, head * 3 // 8)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=layers, num_single_layers=layers, attention_head_dim=head,
        num_attention_heads=2, joint_attention_dim=T5_WIDTH, pooled_projection_dim=CLIP_WIDTH,
        guidance_embeds=guidance, axes_dims_rope=rope,
    )


def scheduler(*, schnell: bool) -> Any:
    """The published scheduler config of FLUX.1 schnell or dev."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    if schnell:
        return FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                           base_image_seq_len=256, max_image_seq_len=4096)


def build_flux_pipeline(folder: Path, tokenizers: Path, *, schnell: bool, seed: int = 0, width: int = 32,
                        layers: int = 1) -> Path:
    """Save a tiny FLUX.1 dev or schnell ``FluxPipeline`` folder."""
    from diffusers import FluxPipeline
    from transformers import AutoTokenizer, CLIPTokenizer

    pipe = FluxPipeline(
        scheduler=scheduler(schnell=schnell), vae=_vae(seed), text_encoder=_clip(seed),
        tokenizer=CLIPTokenizer.from_pretrained(str(tokenizers / "clip")), text_encoder_2=_t5(seed),
        tokenizer_2=AutoTokenizer.from_pretrained(str(tokenizers / "t5")),
        transformer=transformer(seed, guidance=not schnell, width=width, layers=layers),
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def write_tokenizers(root: Path) -> Path:
    write_tokenizer(root / "clip", pad_token="<|endoftext|>")
    t5_tokenizer(root / "t5")
    return root


def build_parts(root: Path, tokenizers: Path, seed: int = 7) -> dict[str, Path]:
    """Standalone folders: a T5 encoder (flat), a CLIP text encoder (InvokeAI's text_encoder + tokenizer) and a VAE."""
    import shutil

    t5 = root / "t5_encoder"
    _t5(seed).save_pretrained(str(t5))
    for file in (tokenizers / "t5").iterdir():
        shutil.copy(file, t5 / file.name)
    clip = root / "clip_embed"
    _clip(seed).save_pretrained(str(clip / "text_encoder"))
    shutil.copytree(tokenizers / "clip", clip / "tokenizer")
    vae = root / "flux_vae"
    _vae(seed).save_pretrained(str(vae))
    return {"t5": t5, "clip": clip, "vae": vae}
