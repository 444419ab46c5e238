"""One registered thing and the plugin that gave it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Registered"]

T = TypeVar("T")


@dataclass(frozen=True)
class Registered(Generic[T]):
    """One registered thing and the plugin that gave it."""

    key: str
    value: T
    plugin: str
