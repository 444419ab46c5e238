"""Loading a spandrel model: the state dict read safely, the architecture built by spandrel.

``.safetensors`` files are read directly; pickled files only through torch's ``weights_only`` loader, so
nothing in a file runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke_sdk.models.loading import ModelConfigLike

__all__ = ["SpandrelLoader", "Upscaler"]


class Upscaler:
    """A loaded image-to-image model: ``scale``, ``input_channels``, and ``run`` on a ``(1, C, H, W)`` 0..1 tensor.

    It offers ``to``/``parameters``/``buffers`` so the model cache measures it and moves it between devices.
    """

    def __init__(self, descriptor: Any) -> None:
        self.descriptor = descriptor
        self.scale = int(descriptor.scale)
        self.input_channels = int(descriptor.input_channels)
        self.architecture = str(descriptor.architecture.id)

    def to(self, *args: Any, **kwargs: Any) -> Upscaler:
        self.descriptor.to(*args, **kwargs)
        return self

    def parameters(self) -> Any:
        return self.descriptor.model.parameters()

    def buffers(self) -> Any:
        return self.descriptor.model.buffers()

    @property
    def device(self) -> Any:
        return self.descriptor.device

    @property
    def dtype(self) -> Any:
        return self.descriptor.dtype

    def run(self, image: Any) -> Any:
        import torch

        with torch.inference_mode():
            return self.descriptor(image)


class SpandrelLoader:
    """``spandrel_image_to_image/checkpoint``."""

    model_type = "spandrel_image_to_image"
    model_format = "checkpoint"

    def device_available(self, device: str) -> bool:
        import torch

        if device == "cpu":
            return True
        kind, _, index = device.partition(":")
        if kind == "cuda":
            return bool(torch.cuda.is_available()) and (not index or int(index) < torch.cuda.device_count())
        return kind == "mps" and bool(torch.backends.mps.is_available())

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        import torch

        from invoke_spandrel_nodes.spandrel_import import import_spandrel

        spandrel = import_spandrel()
        path = Path(config.path)
        with path.open("rb") as fh:
            head = fh.read(9)
        if len(head) == 9 and head[8:9] == b"{":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("params_ema") or state.get("params"), dict):
                state = state.get("params_ema") or state["params"]  # BasicSR's training checkpoints
        descriptor = spandrel.ModelLoader(device="cpu").load_from_state_dict(state)
        if not isinstance(descriptor, spandrel.ImageModelDescriptor):
            raise ValueError(f"model {config.key} is a {descriptor.architecture.name} model, which does not map an "
                             f"image to an image")
        # Many upscaler architectures misbehave in half precision on some devices; run them in float32 unless
        # the model says it supports half (spandrel records that per architecture).
        wanted = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype, torch.float32)
        supported = (wanted is torch.float16 and descriptor.supports_half) or (
            wanted is torch.bfloat16 and descriptor.supports_bfloat16)
        descriptor.to(wanted if supported else torch.float32)
        descriptor.eval()
        return Upscaler(descriptor)
