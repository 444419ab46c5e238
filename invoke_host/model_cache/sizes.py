"""Measuring a model's memory from its real tensors, by duck typing (no tensor library import)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["is_movable", "measure_size"]


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "numel") and hasattr(value, "element_size") and hasattr(value, "data_ptr")


def _tensor_bytes(tensors: Iterable[Any], seen: set[int]) -> int:
    total = 0
    for tensor in tensors:
        # Tied weights share storage: count each storage once.
        ptr = tensor.data_ptr()
        if ptr and ptr in seen:
            continue
        seen.add(ptr)
        total += int(tensor.numel()) * int(tensor.element_size())
    return total


def _measure(model: Any, seen: set[int]) -> int:
    if hasattr(model, "parameters") and hasattr(model, "buffers"):
        return _tensor_bytes(model.parameters(), seen) + _tensor_bytes(model.buffers(), seen)
    if _is_tensor(model):
        return _tensor_bytes([model], seen)
    if isinstance(model, Mapping):
        return sum(_measure(v, seen) for v in model.values())
    components = getattr(model, "components", None)
    if isinstance(components, Mapping):
        # A whole pipeline: the sum of its parts.
        return sum(_measure(v, seen) for v in components.values())
    return 0


def measure_size(model: Any) -> int:
    """Bytes held by a model's tensors (parameters and buffers, a mapping of tensors, or a pipeline's parts).

    Objects without tensors (tokenizers, schedulers) measure 0.
    """
    return _measure(model, set())


def is_movable(model: Any) -> bool:
    """Whether the cache moves this model between devices (a module with ``to()`` and ``parameters()``)."""
    return hasattr(model, "to") and hasattr(model, "parameters")
