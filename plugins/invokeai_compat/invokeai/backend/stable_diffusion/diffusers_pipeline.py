"""InvokeAI's denoising progress state, and the image-to-tensor helper packs borrow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PipelineIntermediateState", "image_resized_to_grid_as_tensor"]


@dataclass
class PipelineIntermediateState:
    """One denoising step, as ``context.util.sd_step_callback`` takes it."""

    step: int
    order: int
    total_steps: int
    timestep: int
    latents: Any
    predicted_original: Any = None


def image_resized_to_grid_as_tensor(image: Any, normalize: bool = True, multiple_of: int = 8) -> Any:
    """A PIL image resized down to a multiple of ``multiple_of``, as a CHW float tensor (-1..1 if ``normalize``)."""
    import numpy as np
    import torch
    from PIL import Image

    w, h = (x - x % multiple_of for x in image.size)
    array = np.array(image.resize((w, h), resample=Image.Resampling.LANCZOS, reducing_gap=1.0)).astype(np.float32)
    tensor = torch.from_numpy(array / 255.0)
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor * 2.0 - 1.0 if normalize else tensor
