"""Waiting for a condition with a bound: tests never sleep a fixed time and then assert.

A condition that does not come true within ``timeout`` fails the test with what it waited for; one that
does returns at once, so a fast machine is not slowed and a slow one is not failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["async_wait_until", "wait_until"]


def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = 10.0, interval: float = 0.01) -> None:
    """Return as soon as ``condition()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], bool], what: str, *, timeout: float = 10.0, interval: float = 0.005
) -> None:
    """Like :func:`wait_until`, yielding to the event loop between checks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
