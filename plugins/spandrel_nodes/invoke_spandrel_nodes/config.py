"""The model config of a spandrel image-to-image model (InvokeAI's type and format names)."""

from __future__ import annotations

from typing import Literal

from invoke_sdk.models import ModelConfigBase, ModelFormat, ModelType
from pydantic import Field

__all__ = ["SpandrelImageToImageConfig"]


class SpandrelImageToImageConfig(ModelConfigBase):
    """An upscaler or restorer in one file, of an architecture spandrel recognises (ESRGAN, SwinIR, HAT ...)."""

    type: Literal[ModelType.SpandrelImageToImage]
    format: Literal[ModelFormat.Checkpoint]
    architecture: str | None = Field(default=None, description="The architecture spandrel recognised, e.g. ESRGAN")
