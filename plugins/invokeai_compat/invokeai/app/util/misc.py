"""InvokeAI's seed helpers."""

from __future__ import annotations

import random
import uuid

__all__ = ["SEED_MAX", "get_random_seed", "uuid_string"]

SEED_MAX = 2**32 - 1
"""The largest seed (numpy's seeds are 32-bit)."""


def get_random_seed() -> int:
    """A random seed between 0 and :data:`SEED_MAX`."""
    return random.randint(0, SEED_MAX)


def uuid_string() -> str:
    return str(uuid.uuid4())
