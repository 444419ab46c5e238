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

While a large session runs, its own objects are what the collector walks: a 100,000-item iterate makes about two
million, and each of its full collections (15 of them) walked all that had survived so far, about 2 s of CPU. So
while a processor runs an item (:func:`run_started` / :func:`run_ended`), a full collection that leaves at least
``RUN_FREEZE_MIN_OBJECTS`` tracked objects behind freezes them, and so does every full collection after it in
that run: the next one walks only what was made since; from then on every younger collection of the run
freezes what it leaves too (see :func:`_after_collection`). A frozen object that becomes garbage is still freed by
reference counting (the finished state is); one that becomes garbage in a cycle is not until it is unfrozen, so
once no item runs any more, :func:`thaw_run_objects` (the processor, after freeing the item's state) gives every
frozen object back, collects once and freezes what survives, as at start-up.
"""

from __future__ import annotations

import gc
import logging
import time

__all__ = [
    "RUN_FREEZE_MIN_OBJECTS", "freeze_startup_objects", "freeze_survivors", "run_ended", "run_started",
    "stop_freezing", "thaw_due", "thaw_run_objects",
]

logger = logging.getLogger("invoke_host")

_freezing = False
"""Whether this process froze its start-up objects (``serve``/``worker``): only then are survivors frozen too."""

RUN_FREEZE_MIN_OBJECTS = 200_000
"""Tracked objects a full collection during a run must leave behind for them to be frozen: a 10,000-item iterate
leaves fewer (about 150,000 with the output cache's entries), so its two full collections stay as they were and
it pays no thaw; a 100,000-item one passes it at its sixth."""

_runs = 0
"""Items running now in this process (event loop: :func:`run_started`, :func:`run_ended`)."""
_froze_in_runs = False
"""Whether a full collection during a run froze what it left, since the last :func:`thaw_run_objects`."""


def freeze_startup_objects() -> None:
    """Freeze every object the collector tracks, without collecting first, then turn the collector on.

    ``serve`` and ``worker`` keep the collector paused from their first import until this freeze (not only while
    the app is built): everything made while it was paused sits in the youngest generation, so the first
    collection after the pause walked every start-up object, 60-90 ms of CPU in ``serve`` between building the app
    and this call (uvicorn's import and set-up; measured with ``gc.callbacks``, docs/benchmarks.md, start-up,
    h-start5). Frozen first, those objects are never walked; the collector works as usual from here.

    No full collection before the freeze: it walks every start-up object (85,000-97,000 for the empty host) and was
    65-114 ms of CPU, 7-10% of an empty host's start to its first answer, and in ``serve`` it found nothing to free
    (0 unreachable objects, measured with ``gc.DEBUG_SAVEALL``, docs/benchmarks.md, start-up, h-start4): start-up
    runs with the collector paused and makes almost no cyclic garbage. What a cycle left unreachable at this moment
    would be kept until :func:`thaw_run_objects` or :func:`stop_freezing` give the frozen objects back, at most what
    start-up left (a few hundred objects at most ever counted, once per process), never anything made later.
    """
    global _freezing
    gc.freeze()
    gc.enable()
    _freezing = True
    if _after_collection not in gc.callbacks:
        gc.callbacks.append(_after_collection)
    # Counted only for the debug line: gc.get_freeze_count() walks the whole frozen list, and the start-up objects lie
    # scattered over the heap, so the walk took 4-12 ms of every `serve` start (h-start5).
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%d start-up objects frozen out of the garbage collector's scans", gc.get_freeze_count())


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


def _after_collection(phase: str, info: dict[str, int]) -> None:
    """(``gc.callbacks``; whichever thread's allocation started the collection) after a full collection during a
    run: freeze what it left, once that is at least :data:`RUN_FREEZE_MIN_OBJECTS` (always, once it was in this
    run): it just walked all of them, and the next full collection need walk only what comes after.

    Once that happened in this run, what survives each youngest collection is frozen too: a large session's
    objects outlive the run, so each was otherwise walked twice more (by a middle-generation collection, then by
    a full one) before the next freeze took it; now the youngest collection is the only one that walks it. In the
    100,000-item iterate those two walks were 1.5 s of the server's collector CPU (h-iter)."""
    global _froze_in_runs
    if phase != "stop" or not _runs or not _freezing:
        return
    if info["generation"] != 2:
        if _froze_in_runs:
            gc.freeze()
        return
    if not _froze_in_runs and len(gc.get_objects(2)) < RUN_FREEZE_MIN_OBJECTS:
        return
    gc.freeze()
    _froze_in_runs = True


def run_started() -> None:
    """(Event loop) an item starts running: full collections until :func:`run_ended` may freeze what they leave."""
    global _runs
    _runs += 1


def run_ended() -> None:
    """(Event loop) an item stopped running (before its state is freed and :func:`thaw_run_objects`)."""
    global _runs
    _runs = max(0, _runs - 1)


def thaw_due() -> bool:
    """Whether :func:`thaw_run_objects` would do anything now (cheap, for the event loop)."""
    return _froze_in_runs and not _runs


def thaw_run_objects() -> bool:
    """If full collections froze objects during runs and no item runs now: give every frozen object back, collect
    once (what became garbage in a cycle after it was frozen goes now) and freeze what survives; return whether it
    did. Blocking (one full collection of everything alive): call it in a worker thread, after the item's state was
    freed."""
    global _froze_in_runs
    if not _froze_in_runs or _runs:
        return False
    _froze_in_runs = False
    started = time.process_time()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    if _runs:
        _froze_in_runs = True  # an item started meanwhile and its first objects were frozen too: thawed after it
    logger.debug("objects frozen during runs given back and collected; %d frozen again (%.1f ms CPU)",
                 gc.get_freeze_count(), (time.process_time() - started) * 1000)
    return True


def stop_freezing() -> None:
    """Give every frozen object back to the collector and freeze nothing more (tests, or a process that ends its
    server and goes on)."""
    global _freezing, _froze_in_runs
    _freezing = False
    _froze_in_runs = False
    if _after_collection in gc.callbacks:
        gc.callbacks.remove(_after_collection)
    gc.unfreeze()
