"""Model load started / complete notifications, emitted from one place in the cache.

The queue's typed event system subscribes with a :data:`ModelLoadListener`; the cache itself
knows nothing about queues or websockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ModelLoadEvent", "ModelLoadListener"]


@dataclass(frozen=True)
class ModelLoadEvent:
    """A model started loading from disk, or finished (``size_bytes`` then says how much it holds)."""

    kind: Literal["started", "complete"]
    config: Any
    submodel: str | None
    size_bytes: int | None = None

    @property
    def key(self) -> str:
        """The model's key."""
        return str(self.config.key)


ModelLoadListener = Callable[[ModelLoadEvent], None]
"""Called synchronously, in the loading thread, for each :class:`ModelLoadEvent`."""
