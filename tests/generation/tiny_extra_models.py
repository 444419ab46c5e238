"""More tiny random-weight models for #15's tests: an inpaint (9-channel) SD1 pipeline, an SDXL refiner, a real
ESRGAN (RRDBNet) state dict, and textual-inversion embedding files in A1111 and SDXL layouts."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any


def build_inpaint_pipeline(sd1_folder: Path, folder: Path, seed: int = 11) -> Path:
    """The tiny SD1 pipeline with its UNet swapped for a 9-channel inpaint UNet (random weights)."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    config = dict(UNet2DConditionModel.load_config(str(sd1_folder), subfolder="unet"))
    config["in_channels"] = 9
    unet = UNet2DConditionModel.from_config(config)
    pipe = StableDiffusionInpaintPipeline.from_pretrained(str(sd1_folder), unet=unet, safety_checker=None,
                                                          requires_safety_checker=False, local_files_only=True)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_refiner_pipeline(sdxl_folder: Path, folder: Path, seed: int = 12) -> Path:
    """An SDXL refiner: the tiny SDXL's second text encoder only, a UNet with 5 time ids (aesthetic score)."""
    import torch
    from diffusers import StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    config = dict(UNet2DConditionModel.load_config(str(sdxl_folder), subfolder="unet"))
    # Context is the second encoder's 48 alone; added embedding 5 time ids x 8 + pooled 48.
    config.update(cross_attention_dim=48, projection_class_embeddings_input_dim=5 * 8 + 48)
    unet = UNet2DConditionModel.from_config(config)
    base = StableDiffusionXLImg2ImgPipeline.from_pretrained(str(sdxl_folder), local_files_only=True)
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=base.vae, text_encoder=None, tokenizer=None, text_encoder_2=base.text_encoder_2,
        tokenizer_2=base.tokenizer_2, unet=unet, scheduler=base.scheduler, requires_aesthetics_score=True,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def esrgan_state_dict(scale: int = 2, filters: int = 8, seed: int = 3) -> dict[str, Any]:
    """A real RRDBNet (ESRGAN) state dict in the original ESRGAN key layout (``model.0.weight``,
    ``model.1.sub.0.RDB1.conv1.0.weight`` ...), built by spandrel's own class with random weights."""
    import torch
    from invoke_spandrel_nodes.spandrel_import import import_spandrel

    import_spandrel()
    rrdb = importlib.import_module("spandrel.architectures.ESRGAN.__arch.RRDB")
    torch.manual_seed(seed)
    net = rrdb.RRDBNet(in_nc=3, out_nc=3, num_filters=filters, num_blocks=1, scale=scale)
    return {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}


def write_esrgan(path: Path, scale: int = 2, *, pickle: bool = False) -> Path:
    """The tiny ESRGAN as ``.safetensors`` or, like most upscalers people download, a pickled ``.pth``."""
    import torch
    from safetensors.torch import save_file

    state = esrgan_state_dict(scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    if pickle:
        torch.save(state, str(path))
    else:
        save_file(state, str(path))
    return path


def write_embedding(path: Path, widths: tuple[int, ...], vectors: int = 2, seed: int = 5, *,
                    a1111_pt: bool = False) -> Path:
    """A textual inversion: one width -> A1111 ``emb_params`` (or a ``.pt`` with ``string_to_param``);
    two widths -> SDXL ``clip_l`` + ``clip_g``."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(widths) == 2:
        save_file({"clip_l": torch.randn(vectors, widths[0], generator=generator),
                   "clip_g": torch.randn(vectors, widths[1], generator=generator)}, str(path))
    elif a1111_pt:
        torch.save({"string_to_token": {"*": 265}, "name": path.stem, "step": 500,
                    "string_to_param": {"*": torch.randn(vectors, widths[0], generator=generator)}}, str(path))
    else:
        save_file({"emb_params": torch.randn(vectors, widths[0], generator=generator)}, str(path))
    return path
