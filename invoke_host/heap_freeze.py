"""A long-running node's start-up objects taken out of the cyclic garbage collector's scans.

A started server holds about 100,000 objects the collector tracks (modules, classes, the frozen registry, the
app and its routes) that live as long as the process. Every full collection walks all of them, and a run
triggers full collections as its session grows (Python starts one whenever the objects that survived since the
last have grown by a quarter): through the server a 10,000-item iterate spent about 0.5 s of CPU per run in
full collections, against 0.15 s for the same run in-process, where far fewer objects are alive (measured with
``gc.callbacks``; docs/benchmarks.md, "The run path: ..."). ``gc.freeze()`` moves what exists into a permanent
generation the collector no longer scans; what is made later is collected as before.

Only for the ``invoke-host serve`` and ``worker`` processes, once, before their services start: an object frozen
then that later becomes part of an unreachable cycle is never freed, which is fine for objects made to live as long
as the server, but not for a test runner or a program that builds hosts one after another.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["freeze_startup_objects"]

logger = logging.getLogger("invoke_host")


def freeze_startup_objects() -> int:
    """Collect garbage, then freeze every object the collector tracks; return how many are frozen now.

    The collection first, so no garbage is frozen: only objects still reachable then are kept out of later scans.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.debug("%d start-up objects frozen out of the garbage collector's scans", frozen)
    return frozen
