"""Handing freed memory back to the operating system after a large session.

A 100,000-item session allocates millions of small objects (outputs, prepared nodes, events). When it ends
Python frees them all, yet the server's RSS stayed 120-440 MB above idle (bench/server_path.py). Two allocators
keep what was freed:

- Python's own small-object allocator (pymalloc) takes memory in 1 MiB arenas and returns an arena only when
  every object in it is gone. After a large run a few hundred survivors (a statement cache, the output cache, a
  date header) are scattered over a hundred arenas: measured after a 50,000-item run, 120 arenas (126 MB) were
  held for 38 MB of live objects, the same 38 MB as at idle. Nothing can release part of an arena.
- glibc's malloc keeps freed pages in its heaps; ``malloc_trim(0)`` gives back every whole free page, wherever
  it lies.

So ``invoke-host serve`` runs on the C allocator (``PYTHONMALLOC=malloc``, see :func:`use_system_allocator`):
jemalloc or tcmalloc where installed, which cost a running session less CPU than glibc's malloc
(:mod:`invoke_host.allocator`), else glibc's. A processor with no item running calls :func:`release_if_grown`
(every half second, from its heartbeat): once RSS has grown ``memory_release_bytes`` since the last release, the
allocator gives back what is free (jemalloc's purge, tcmalloc's ``MallocExtension_ReleaseFreeMemory``, glibc's
``malloc_trim(0)``). Freed memory is given back whatever freed it (a session's state, a large ``GET`` answered
after the item ended, a prune), and not between items of a busy queue, where the next item reuses it. No
``gc.collect()`` comes with it: a finished session's state is freed by reference counting (the processor checks
that, and collects only if not), and a full collection of a server holding a large output cache took 90 ms for
nothing (it found a few dozen objects). Elsewhere than glibc (musl, macOS, Windows) both do nothing.

What stays after that is what live objects pin: each of a page or so, wherever it was allocated. The output
cache's entries were made among a session's objects, so a full cache of 70,000 small outputs (64 MiB) kept the
server 197 MiB above idle after trimming; so on glibc an idle processor first has the cache copy its new entries in
the thread of :func:`in_own_arena` (``OutputCache.compact``), where they lie together (docs/benchmarks.md).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from invoke_host.allocator import AllocatorError, forget_preload, restart_environ

__all__ = [
    "allocator", "free_in_steps", "in_own_arena", "on_system_allocator", "release_due", "release_free_memory",
    "release_if_grown", "rss_bytes", "start_own_arena", "use_system_allocator",
]

logger = logging.getLogger("invoke_host.memory")


def _is_glibc() -> bool:
    """Whether this interpreter runs on glibc, told without a subprocess (glibc alone answers this name)."""
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False  # no os.confstr (Windows), or a libc that does not know the name (musl, macOS)


def _load_malloc_trim() -> Callable[[int], int] | None:
    # On glibc its library is opened by its soname: ctypes.util.find_library("c") runs `ldconfig -p` in a
    # subprocess (and imports subprocess), 40-50 ms of every `serve` start before the restart of
    # use_system_allocator, which finds it again (docs/benchmarks.md, start-up).
    if _is_glibc():
        try:
            glibc_trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
            return glibc_trim
        except (OSError, AttributeError):
            pass  # a glibc whose library has another name: searched for below
    from ctypes.util import find_library

    name = find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _preloaded_release() -> tuple[str, Callable[[], object]] | None:
    """(name, release) of the allocator the restart preloaded (its symbols are in the program's global scope):
    jemalloc's purge of every arena, or tcmalloc's ``MallocExtension_ReleaseFreeMemory``; None for neither."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        program = ctypes.CDLL(None)
    except OSError:
        return None
    mallctl = getattr(program, "mallctl", None)
    if mallctl is not None:
        # "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages back to the system now.
        return "jemalloc", lambda: mallctl(b"arena.4096.purge", None, None, None, ctypes.c_size_t(0))
    tcmalloc_release = getattr(program, "MallocExtension_ReleaseFreeMemory", None)
    if tcmalloc_release is not None:
        return "tcmalloc", tcmalloc_release
    return None


_PRELOADED = _preloaded_release()


def allocator() -> str:
    """What Python objects are allocated with here, for the start-up log: ``jemalloc``, ``tcmalloc``, ``glibc``,
    ``malloc`` (another C library's, ``PYTHONMALLOC=malloc``), or ``python`` (Python's own, or what
    ``PYTHONMALLOC`` names)."""
    if not os.environ.get("PYTHONMALLOC", "").startswith("malloc"):
        return "python"
    if _PRELOADED is not None:
        return _PRELOADED[0]
    return "glibc" if _MALLOC_TRIM is not None else "malloc"


def _can_release() -> bool:
    return _PRELOADED is not None or _MALLOC_TRIM is not None

# Entries free_in_steps frees between two offers of the interpreter lock to other threads.
_FREE_STEP = 1_000
# References to a container held only by the object being freed, as free_in_steps counts them.
_OWN_REFERENCES = 4


def release_free_memory() -> bool:
    """Give free heap pages back to the system (jemalloc's purge or tcmalloc's ``MallocExtension_ReleaseFreeMemory``
    where one is the allocator, else ``malloc_trim(0)``; no collection: the processor frees a finished state by
    reference counting and collects only if that failed); return whether the allocator could (the preloaded ones
    do not say: True).

    Blocking (a trim of a large heap takes milliseconds): call it in a worker thread.
    """
    if _PRELOADED is not None:
        name, release = _PRELOADED
        release()
        logger.debug("%s gave back its free memory", name)
        return True
    if _MALLOC_TRIM is None:
        return False
    released = bool(_MALLOC_TRIM(0))
    logger.debug("malloc_trim(0): %s", "released memory" if released else "nothing to release")
    return released


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_release_lock = threading.Lock()
# RSS right after the last release (None: not read yet), shared by every processor of this process.
_rss_after_release: int | None = None


def rss_bytes() -> int | None:
    """This process's resident set size (``/proc/self/statm``: one read), or None where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def release_due(threshold_bytes: int) -> bool:
    """Whether :func:`release_if_grown` would release now: one read of ``/proc/self/statm``, fit for the loop."""
    if threshold_bytes <= 0 or not _can_release():
        return False
    rss = rss_bytes()
    level = _rss_after_release
    return rss is not None and (level is None or rss < level or rss - level >= threshold_bytes)


def release_if_grown(threshold_bytes: int) -> bool:
    """Give freed memory back (``malloc_trim(0)``, no collection) if RSS has grown ``threshold_bytes`` since the
    last release (the first call only notes where it stands); return whether it released. 0 never releases.

    The level is taken after each release, so memory that stays in use is never trimmed for again and again:
    each release follows a growth of ``threshold_bytes``. Blocking while it trims: call it in a worker thread.
    """
    global _rss_after_release
    if threshold_bytes <= 0 or not _can_release():
        return False
    with _release_lock:
        rss = rss_bytes()
        if rss is None:
            return False
        if _rss_after_release is None or rss < _rss_after_release:
            _rss_after_release = rss  # first look, or memory went back by itself: the level to grow from
            return False
        if rss - _rss_after_release < threshold_bytes:
            return False
        release_free_memory()
        _rss_after_release = rss_bytes() or rss
        logger.debug("RSS %.0f MiB after giving back freed memory (was %.0f MiB)", _rss_after_release / 2**20,
                     rss / 2**20)
        return True


def free_in_steps(held: list[Any]) -> None:
    """Free what ``held`` holds (emptying it) an entry at a time: each object's dicts, lists and sets are emptied
    one entry after another, then the object goes. Blocking: call it in a worker thread.

    Dropping the last reference to a large session's state frees its hundreds of thousands of objects in one
    call that never lets go of the interpreter lock (a ``del`` is one bytecode): in a worker thread, after a
    10,000-item run, that kept the event loop from answering the item's ``GET`` for 0.8 s on a loaded machine.
    Freed in steps (slices of :data:`_FREE_STEP` entries), the same objects go in bytecodes between which the
    other threads run.
    """
    while held:
        obj = held.pop()
        for value in list(vars(obj).values()) if hasattr(obj, "__dict__") else ():
            # Only a container nothing else refers to (this loop's, the list's and the object's references, and
            # getrefcount's own) is emptied: one shared with other objects is left as it is.
            if not isinstance(value, dict | list | set) or sys.getrefcount(value) > _OWN_REFERENCES:
                continue
            if isinstance(value, list):
                entries = value
            else:
                # Moved into a list first (C loops that free nothing: the list holds every entry), so that they
                # go in slices below: a pop per entry in Python cost as much again as the freeing itself.
                entries = list(value.values()) if isinstance(value, dict) else list(value)
                if isinstance(value, dict):
                    entries.extend(value)
                value.clear()
            while entries:
                del entries[-_FREE_STEP:]
                time.sleep(0)  # hands the lock to a waiting thread now, not at the end of its switch interval
        del obj


_own_arena: concurrent.futures.ThreadPoolExecutor | None = None
_own_arena_lock = threading.Lock()


def on_system_allocator() -> bool:
    """Whether Python objects come from glibc's malloc here (``PYTHONMALLOC=malloc``, see
    :func:`use_system_allocator`, and not tcmalloc), so that a thread's objects come from that thread's arena."""
    return allocator() == "glibc"


def in_own_arena() -> concurrent.futures.Executor:
    """One long-lived thread (the same for the whole process) for objects that should lie together.

    glibc's malloc gives each new thread an arena of its own (up to 8 per core), so what this thread allocates
    lies apart from what the sessions' threads allocate and free. Make it early (:func:`start_own_arena`):
    a thread started after another thread ended may be handed that thread's arena, fragments and all.
    """
    global _own_arena
    with _own_arena_lock:
        if _own_arena is None:
            _own_arena = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="invoke-own-arena")
        return _own_arena


def start_own_arena() -> None:
    """Start the thread of :func:`in_own_arena` now, and have it take its arena (its first allocation)."""
    in_own_arena().submit(lambda: bytearray(64)).result()


def use_system_allocator() -> None:
    """Start this program again (same process, same arguments) on the system allocator, where that helps.

    Only on Linux with glibc, only when ``PYTHONMALLOC`` is not set (a person who set it, ``pymalloc`` to keep
    Python's allocator or ``debug`` to debug, keeps their choice), and only when this process is the
    ``invoke-host`` program (``invoke-host ...`` or ``python -m invoke_host.cli ...``): a test runner or another
    program that calls the command in-process is never replaced. Call it first thing, before any thread starts
    or any file is opened: ``os.execv`` replaces the process and keeps its id, so a supervisor sees no change.
    """
    # The restarted process: what the restart preloaded goes out of the environment its own children inherit.
    forget_preload(os.environ)
    if "PYTHONMALLOC" in os.environ or not sys.platform.startswith("linux") or _MALLOC_TRIM is None:
        return
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    if program != "invoke-host" and not sys.argv[0].endswith(os.path.join("invoke_host", "cli.py")):
        return
    try:
        os.environ.update(restart_environ(os.environ))  # PYTHONMALLOC=malloc, and tcmalloc where installed
    except AllocatorError as exc:
        raise SystemExit(f"Error: {exc}") from None
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
