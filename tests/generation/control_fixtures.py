"""The tiny control models, built once per session (the ``control_files`` fixture, declared in conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from control_models import (
    build_clip_vision,
    build_controlnet,
    build_t2i_adapter,
    write_controlnet_checkpoint,
    write_ip_adapter,
    write_t2i_checkpoint,
)

__all__ = ["ControlFiles", "control_files"]


@dataclass
class ControlFiles:
    root: Path

    def __truediv__(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="session")
def control_files(tiny_models: Any, tmp_path_factory: pytest.TempPathFactory) -> ControlFiles:
    root = tmp_path_factory.mktemp("control-models")
    build_controlnet(tiny_models.root / "sd1", root / "cn_sd1", seed=11)
    build_controlnet(tiny_models.root / "sd1", root / "cn_sd1_b", seed=12)
    build_controlnet(tiny_models.root / "sdxl", root / "cn_sdxl", seed=13)
    write_controlnet_checkpoint(root / "cn_sd1", root / "cn_sd1.safetensors")
    build_t2i_adapter(root / "t2i_sd1", seed=14)
    write_t2i_checkpoint(root / "t2i_sd1", root / "t2i_sd1.safetensors")
    build_clip_vision(root / "ip_adapter_sd_image_encoder", seed=15)
    write_ip_adapter(tiny_models.root / "sd1", root / "ip_sd1.safetensors", seed=16)
    folder = root / "ip_sd1_invokeai"
    folder.mkdir()
    (folder / "ip_adapter.safetensors").write_bytes((root / "ip_sd1.safetensors").read_bytes())
    (folder / "image_encoder.txt").write_text("InvokeAI/ip_adapter_sd_image_encoder\n")
    return ControlFiles(root)
