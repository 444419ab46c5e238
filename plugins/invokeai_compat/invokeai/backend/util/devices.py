"""InvokeAI's device helpers. torch is imported on first use only, so importing this costs nothing."""

from __future__ import annotations

from typing import Any

__all__ = ["TorchDevice", "choose_precision", "choose_torch_device"]  # and CPU_DEVICE ..., made on first use

_DEVICES = {"CPU_DEVICE": "cpu", "CUDA_DEVICE": "cuda", "MPS_DEVICE": "mps"}


def _torch() -> Any:
    import torch

    return torch


def choose_torch_device() -> Any:
    """CUDA if present, else MPS, else the CPU."""
    torch = _torch()
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_precision(device: Any, app_config: Any = None) -> str:
    """``float16`` on CUDA and MPS, ``float32`` on the CPU."""
    return "float32" if getattr(device, "type", str(device)) == "cpu" else "float16"


class TorchDevice:
    """InvokeAI's ``TorchDevice`` helpers."""

    @classmethod
    def choose_torch_device(cls) -> Any:
        return choose_torch_device()

    @classmethod
    def choose_torch_dtype(cls, device: Any = None) -> Any:
        device = device if device is not None else choose_torch_device()
        return getattr(_torch(), choose_precision(device))

    @classmethod
    def empty_cache(cls) -> None:
        torch = _torch()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @classmethod
    def normalize(cls, device: Any) -> Any:
        return _torch().device(device)

    CPU_DEVICE = property(lambda self: _torch().device("cpu"))


def __getattr__(name: str) -> Any:
    if name in _DEVICES:
        return _torch().device(_DEVICES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
