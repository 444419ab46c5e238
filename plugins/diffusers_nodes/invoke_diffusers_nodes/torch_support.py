"""The few torch facts every loader and node needs: dtypes by name and which devices exist."""

from __future__ import annotations

from typing import Any

__all__ = ["TorchLoader", "device_available", "torch_dtype"]


def torch_dtype(name: str) -> Any:
    """The torch dtype for ``"float16"``, ``"bfloat16"`` or ``"float32"``."""
    import torch

    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    if name not in dtypes:
        raise ValueError(f"unknown precision {name!r}: use one of {', '.join(dtypes)}")
    return dtypes[name]


def device_available(device: str) -> bool:
    """Whether torch can run on ``device`` here."""
    import torch

    if device == "cpu":
        return True
    if device == "cuda":
        return bool(torch.cuda.is_available())
    if device == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit():  # one GPU of several (--devices cuda:0,cuda:1)
        return bool(torch.cuda.is_available()) and int(index) < torch.cuda.device_count()
    return False


class TorchLoader:
    """What every loader of this plugin shares: its registry key, and the devices torch can use."""

    model_type = ""
    model_format = ""

    def device_available(self, device: str) -> bool:
        return device_available(device)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_type}/{self.model_format}>"
