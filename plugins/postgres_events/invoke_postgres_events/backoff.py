"""How long to wait before connecting again: doubling from a tenth of a second up to a few seconds."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Delays for reconnecting: 0.1, 0.2, 0.4 ... seconds, at most ``maximum``; ``reset`` after a success."""

    def __init__(self, first: float = 0.1, maximum: float = 5.0) -> None:
        self.first = first
        self.maximum = maximum
        self.failures = 0

    def next(self) -> float:
        delay: float = min(self.first * 2.0**self.failures, self.maximum)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
