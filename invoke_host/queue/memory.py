"""Handing freed memory back to the operating system after a large session.

A 100,000-item session allocates millions of small objects (outputs, prepared nodes, rows). When it ends
Python frees them, but glibc's allocator keeps the pages of its heap and arenas for reuse, so the server's
RSS stays hundreds of MB above idle (measured in bench/server_path.py). ``malloc_trim(0)`` returns the free
pages at the top of the heap and every arena's unused pages. Elsewhere (musl, macOS, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

__all__ = ["release_free_memory"]

logger = logging.getLogger("invoke_host.queue.processor")


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> bool:
    """Collect garbage, then give free heap pages back to the system; return whether the allocator could.

    Blocking (a trim of a large heap takes milliseconds): call it in a worker thread.
    """
    gc.collect()
    if _MALLOC_TRIM is None:
        return False
    released = bool(_MALLOC_TRIM(0))
    logger.debug("malloc_trim(0): %s", "released memory" if released else "nothing to release")
    return released
