"""Model load started / complete notifications, emitted from one place in the cache.

The queue's typed event system subscribes with a :data:`ModelLoadListener`; the cache itself
knows nothing about queues or websockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ModelLoadEvent", "ModelLoadListener", "ModelLoadRelay"]


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


class ModelLoadRelay:
    """The cache's one listener: hands each event to whichever listener is set at that moment.

    The cache is built with its listener, but who listens may change later (a test that records the loads, an
    events service connected after the cache exists); swapping ``listener`` here needs no new cache.
    """

    def __init__(self, listener: ModelLoadListener | None = None) -> None:
        self.listener = listener

    def __call__(self, event: ModelLoadEvent) -> None:
        listener = self.listener
        if listener is not None:
            listener(event)
