"""Old import path of ``ImageOutput`` and PIL's resampling names."""

from __future__ import annotations

from typing import Literal

from PIL import Image

from invokeai.app.invocations.primitives import ImageOutput

__all__ = ["PIL_RESAMPLING_MAP", "PIL_RESAMPLING_MODES", "ImageOutput"]

PIL_RESAMPLING_MODES = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]
PIL_RESAMPLING_MAP = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
