"""Control images to tensors of the generation's size, with InvokeAI's resize modes."""

from __future__ import annotations

from typing import Any

__all__ = ["resize_control_image", "to_tensor"]


def resize_control_image(image: Any, width: int, height: int, mode: str) -> Any:
    """``image`` at ``width`` x ``height``.

    ``just_resize`` / ``just_resize_simple`` stretch, ``crop_resize`` fills the frame and crops the overhang
    (centred), ``fill_resize`` fits the whole image and pads the rest with black.
    """
    from PIL import Image, ImageOps  # here, not at import: Pillow kept off start-up
    if image.size == (width, height):
        return image
    if mode == "crop_resize":
        return ImageOps.fit(image, (width, height), Image.Resampling.BICUBIC)
    if mode == "fill_resize":
        return ImageOps.pad(image, (width, height), Image.Resampling.BICUBIC, color=(0,) * len(image.getbands()))
    return image.resize((width, height), Image.Resampling.BICUBIC)


def to_tensor(image: Any, *, device: Any, dtype: Any) -> Any:
    """A PIL image as a ``(1, channels, height, width)`` tensor in ``[0, 1]``."""
    import numpy as np
    import torch

    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].to(device=device, dtype=dtype)
