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

Once started, the same process also freezes what survived later, when no item runs (``freeze_survivors``, called by
the idle session processor): mostly the output cache's entries, about four objects a node (the output model, its
``__dict__`` and fields set, the key), tens of thousands after a few items, that every full collection of a run
walked again (h-rows: 0.14 -> 0.05 s of collector CPU per 10,000-item run with them frozen). Why freezing them is
safe: a cache entry refers to nothing that refers back to it (an output's fields are values and the key is a
string), so when the cache evicts or clears it, reference counting frees it, frozen or not; only an object that
becomes garbage *in a cycle* after it was frozen stays, and objects that survive an idle collection are, like the
start-up objects, the long-lived ones (the cache, the host's services and connections), not a run's.
"""

from __future__ import annotations

import gc
import logging
import time

__all__ = ["freeze_startup_objects", "freeze_survivors", "stop_freezing"]

logger = logging.getLogger("invoke_host")

_freezing = False
"""Whether this process froze its start-up objects (``serve``/``worker``): only then are survivors frozen too."""


def freeze_startup_objects() -> int:
    """Collect garbage, then freeze every object the collector tracks; return how many are frozen now.

    The collection first, so no garbage is frozen: only objects still reachable then are kept out of later scans.
    """
    global _freezing
    gc.collect()
    gc.freeze()
    _freezing = True
    frozen = gc.get_freeze_count()
    logger.debug("%d start-up objects frozen out of the garbage collector's scans", frozen)
    return frozen


def freeze_survivors(min_objects: int) -> int:
    """Collect and freeze what the collector tracks, if this process froze its start-up objects and at least
    ``min_objects`` tracked objects are outside the frozen set; return how many were frozen now (0: nothing done).

    For a moment when no run's objects are alive (an idle processor): what survives the collection then is
    long-lived, so later runs' full collections walk their own objects only. The check lists the tracked objects
    (about 1 ms for 100,000); the collection walks only those, never the frozen ones.
    """
    if not _freezing or len(gc.get_objects()) < min_objects:
        return 0
    before, started = gc.get_freeze_count(), time.process_time()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count() - before
    logger.debug("%d objects that survived since the last freeze frozen out of the collector's scans (%.1f ms CPU)",
                 frozen, (time.process_time() - started) * 1000)
    return frozen


def stop_freezing() -> None:
    """Give every frozen object back to the collector and freeze nothing more (tests, or a process that ends its
    server and goes on)."""
    global _freezing
    _freezing = False
    gc.unfreeze()
