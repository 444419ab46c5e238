"""Choosing the execution device and precision from the host config.

The host never imports a tensor library: it asks the loader of the model at hand whether its
library can use a device (:meth:`ModelLoader.device_available`).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["resolve_device", "resolve_dtype"]

logger = logging.getLogger("invoke_host.model_cache")

_GPU_ORDER = ("cuda", "mps")


def resolve_device(preference: str, loader: Any) -> str:
    """The device to run on: ``auto`` picks cuda, then mps, then cpu; a named GPU that is missing falls back to cpu."""
    if preference == "cpu":
        return "cpu"
    if preference == "auto":
        for device in _GPU_ORDER:
            if loader.device_available(device):
                return device
        return "cpu"
    if loader.device_available(preference):
        return preference
    logger.warning("Device %r is not available here; models run on the CPU instead", preference)
    return "cpu"


def resolve_dtype(precision: str, device: str) -> str:
    """The dtype to load models in: ``auto`` is float16 on a GPU and float32 on the CPU.

    float16 on the CPU is slow and some operations lack CPU kernels, so it falls back to float32.
    """
    if precision == "auto":
        return "float32" if device == "cpu" else "float16"
    if precision == "float16" and device == "cpu":
        logger.warning("float16 is not supported well on the CPU; models load in float32 instead")
        return "float32"
    return precision
