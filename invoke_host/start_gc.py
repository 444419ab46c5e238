"""The cyclic garbage collector during start-up: paused while modules and node classes are made (what start-up made
is then frozen out of later collections by :mod:`invoke_host.heap_freeze`, in the ``serve`` and ``worker`` processes).

Start-up allocates hundreds of thousands of objects that live as long as the process (modules, functions, pydantic
classes and their schemas) and almost no garbage: 2,379 unreachable objects after building the host. The collector
cannot know that; it scans them again and again as their number grows. Measured (docs/benchmarks.md, start-up,
2026-12-02), the empty host spent 0.09-0.10 s of CPU in 233 collections while importing and building, and with
1,000 pack node types 0.30-0.38 s in 447 collections, 0.18-0.23 s of that in three full ones.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collections_paused"]


@contextmanager
def collections_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, then turn it back on if it was on (nested pauses keep it off).

    Reference counting still frees everything that is not in a cycle; the few cycles made meanwhile are collected
    by the first collection after the block.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

