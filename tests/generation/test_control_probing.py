"""Probing and key conversion on the published layouts at full size: real tensor names and shapes, headers only.

The models are built on torch's meta device (shapes, no memory), their state dicts renamed to each published
layout, and written as safetensors headers over sparse files, so a 1.4 GB ControlNet costs a few kilobytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import invoke_sd_probers.plugin
import pytest
from control_models import controlnet_to_ldm, t2i_adapter_to_original
from invoke_diffusers_nodes.control_loaders import t2i_adapter_config, t2i_adapter_to_diffusers

from invoke_host.models.probing import probe_model

PROBERS = sorted((cls() for cls in invoke_sd_probers.plugin.PROBERS), key=lambda p: p.order)

SD1_CONTROLNET: dict[str, Any] = {"cross_attention_dim": 768}
SDXL_CONTROLNET: dict[str, Any] = {
    "cross_attention_dim": 2048, "block_out_channels": [320, 640, 1280], "transformer_layers_per_block": [1, 2, 10],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "attention_head_dim": [5, 10, 20], "use_linear_projection": True, "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
}


def write_header(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A valid safetensors file of zeros (fp16), sparse on disk: only the header is written."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return path


def shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def meta_controlnet(config: dict[str, Any]) -> Any:
    import torch
    from diffusers import ControlNetModel

    with torch.device("meta"):
        return ControlNetModel(**config)


def meta_unet(config: dict[str, Any]) -> Any:
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel(**config)


def probe(path: Path) -> tuple[str, str, str]:
    found = probe_model(path, PROBERS)
    return str(found["type"]), str(found["format"]), str(found["base"])


def test_lllyasviel_sd15_controlnet_probes_and_converts_to_every_diffusers_key(tmp_path: Path) -> None:
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    model = meta_controlnet(SD1_CONTROLNET)
    original = controlnet_to_ldm(model.state_dict(), dict(model.config))
    assert original["control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"].shape == (320, 768)
    path = write_header(tmp_path / "control_v11p_sd15_canny.safetensors", shapes(original))
    assert probe(path) == ("controlnet", "checkpoint", "sd-1")
    converted = convert_controlnet_checkpoint(original, dict(model.config))
    assert set(converted) == set(model.state_dict()), "the loader's conversion fills every parameter"


def test_sdxl_controlnets_probe_as_one_file_and_as_a_folder(tmp_path: Path) -> None:
    model = meta_controlnet(SDXL_CONTROLNET)
    path = write_header(tmp_path / "diffusers_xl_canny_full.safetensors", shapes(model.state_dict()))
    assert probe(path) == ("controlnet", "checkpoint", "sdxl")
    folder = tmp_path / "controlnet-canny-sdxl-1.0"
    write_header(folder / "diffusion_pytorch_model.safetensors", shapes(model.state_dict()))
    (folder / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", **dict(model.config)}))
    assert probe(folder) == ("controlnet", "diffusers", "sdxl")


@pytest.mark.parametrize(("kwargs", "base", "name"), [
    ({"in_channels": 1, "channels": [320, 640, 1280, 1280], "downscale_factor": 8, "adapter_type": "full_adapter"},
     "sd-1", "t2iadapter_canny_sd15v2"),
    ({"in_channels": 3, "channels": [320, 640, 1280, 1280], "downscale_factor": 16,
      "adapter_type": "full_adapter_xl"}, "sdxl", "t2i-adapter-canny-sdxl-1.0"),
])
def test_t2i_adapters_probe_and_their_config_follows_from_the_tensors(
    tmp_path: Path, kwargs: dict[str, Any], base: str, name: str
) -> None:
    import torch
    from diffusers import T2IAdapter

    with torch.device("meta"):
        model = T2IAdapter(num_res_blocks=2, **kwargs)
    state = model.state_dict()
    original = t2i_adapter_to_original(state, 2)
    for layout in (state, original):
        path = write_header(tmp_path / f"{name}-{len(layout)}-{next(iter(layout))[:7]}.safetensors", shapes(layout))
        assert probe(path) == ("t2i_adapter", "checkpoint", base)
        config = t2i_adapter_config(layout)
        assert config == {**kwargs, "num_res_blocks": 2}
        assert set(t2i_adapter_to_diffusers(layout, 2)) == set(state)


@pytest.mark.parametrize(("unet", "embed", "base"), [
    ({"cross_attention_dim": 768}, 1024, "sd-1"),
    ({"cross_attention_dim": 2048, "block_out_channels": [320, 640, 1280], "transformer_layers_per_block": [1, 2, 10],
      "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
      "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
      "attention_head_dim": [5, 10, 20], "use_linear_projection": True}, 1280, "sdxl"),
])
def test_h94_ip_adapters_probe_as_files_and_as_invokeai_folders(
    tmp_path: Path, unet: dict[str, Any], embed: int, base: str
) -> None:
    model = meta_unet(unet)
    context = unet["cross_attention_dim"]
    layout: dict[str, tuple[int, ...]] = {"image_proj.proj.weight": (4 * context, embed),
                                          "image_proj.proj.bias": (4 * context,),
                                          "image_proj.norm.weight": (context,), "image_proj.norm.bias": (context,)}
    modules = dict(model.named_modules())
    for index, name in enumerate(model.attn_processors):
        if name.endswith("attn2.processor"):
            hidden = modules[name.removesuffix(".processor")].to_k.out_features
            layout[f"ip_adapter.{index}.to_k_ip.weight"] = (hidden, context)
            layout[f"ip_adapter.{index}.to_v_ip.weight"] = (hidden, context)
    assert len([k for k in layout if k.endswith("to_k_ip.weight")]) == (16 if base == "sd-1" else 70)
    path = write_header(tmp_path / f"ip-adapter_{base}.safetensors", layout)
    assert probe(path) == ("ip_adapter", "checkpoint", base)
    folder = tmp_path / f"ip_adapter_{base}"
    write_header(folder / "ip_adapter.safetensors", layout)
    (folder / "image_encoder.txt").write_text("InvokeAI/ip_adapter_sd_image_encoder\n")
    found = probe_model(folder, PROBERS)
    assert (str(found["type"]), str(found["format"]), str(found["base"])) == ("ip_adapter", "invokeai", base)
    assert found["image_encoder_model_id"] == "InvokeAI/ip_adapter_sd_image_encoder"
