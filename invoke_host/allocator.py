"""Which allocator ``invoke-host serve`` and ``invoke-host worker`` restart on: jemalloc where it is installed, else
gperftools' tcmalloc, else glibc's malloc.

Both programs start themselves again (``os.execv``, same process id) with ``PYTHONMALLOC=malloc``, so that every
Python object comes from the C allocator and what a large session freed can be given back to the system
(:mod:`invoke_host.memory`; Python's own allocator keeps 1 MiB arenas that a few survivors pin: +162 MiB after a
100,000-item run). glibc's malloc costs the server CPU while a session runs, where its threads (the runner, the
event loop, the database's, the one encoding rows) allocate and free at once; a run in one thread costs the same on
glibc as on Python's allocator. Servers side by side, medians of alternating runs (docs/benchmarks.md, "The
allocator"): a chain of 1,000 ``add`` 0.089 s of server CPU on glibc, 0.083 s on jemalloc, 0.094 s on tcmalloc;
a 10,000-item iterate 0.68, 0.56 and 0.65 s (in-process 0.07 and 0.50 s).

jemalloc runs here with a background thread that gives memory freed a second ago back to the system
(``MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0``, unless ``MALLOC_CONF`` is set): RSS
back to +25 MiB over idle within two seconds of a 100,000-item run. tcmalloc keeps what is freed until asked; the
idle processor asks (:func:`invoke_host.memory.release_free_memory`).

The library is loaded by the dynamic linker (``LD_PRELOAD`` of the restarted process), found by path in the system's
library folders, without ``ldconfig`` (a subprocess, 40-50 ms of every start). The restarted process takes the
preload and the settings it added out of its own environment again, so programs it starts run as they would have.
``INVOKE_HOST_ALLOCATOR`` chooses: ``auto`` (the default: the first of jemalloc and tcmalloc installed, else glibc's
malloc), ``jemalloc`` or ``tcmalloc`` (refuse to start without it), ``malloc`` (glibc's). ``PYTHONMALLOC`` set by a
person still means no restart at all, and an ``LD_PRELOAD`` already set is left alone by ``auto``: whoever set it
chose.

This module is imported by :mod:`invoke_host.launcher` before the restart, so it imports ``os`` and ``sys`` only.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping, Sequence

__all__ = [
    "ALLOCATOR_ENV", "CHOICES", "PRELOADABLE", "AllocatorError", "forget_preload", "library_folders",
    "preloadable_library", "restart_environ",
]

ALLOCATOR_ENV = "INVOKE_HOST_ALLOCATOR"
# The library the restart preloaded, so that the restarted process can take it out of LD_PRELOAD again.
_PRELOADED_ENV = "INVOKE_HOST_PRELOADED"

PRELOADABLE: dict[str, tuple[tuple[str, ...], dict[str, str], str]] = {
    # name: (its library's file names, best first; the settings it runs with unless set; how to install it)
    "jemalloc": (
        ("libjemalloc.so.2",),
        # The background thread gives back pages freed a second ago (the default waits 10 s, and only on the next
        # allocations): a server idle after a large run goes back near idle by itself.
        {"MALLOC_CONF": "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"},
        "Debian and Ubuntu: apt install libjemalloc2; Fedora: dnf install jemalloc",
    ),
    "tcmalloc": (
        # The minimal build first: the full one adds a heap profiler nobody here asked for.
        ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
        # tcmalloc writes "tcmalloc: large alloc ..." to stderr for every allocation above 1 GiB: a model's weights
        # loaded on the CPU would fill the log with them.
        {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 62)},
        "Debian and Ubuntu: apt install libtcmalloc-minimal4; Fedora: dnf install gperftools-libs",
    ),
}
CHOICES = ("auto", *PRELOADABLE, "malloc")


class AllocatorError(RuntimeError):
    """``INVOKE_HOST_ALLOCATOR`` names no allocator, or one that is not installed; the message says what to do."""


def library_folders() -> tuple[str, ...]:
    """Where Linux distributions install shared libraries (Debian's multiarch folders, Fedora's lib64, Arch's lib)."""
    multiarch = getattr(sys.implementation, "_multiarch", None) or f"{os.uname().machine}-linux-gnu"
    return (f"/usr/lib/{multiarch}", f"/lib/{multiarch}", "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/lib")


def preloadable_library(name: str, folders: Sequence[str] | None = None) -> str | None:
    """The path of the installed library of allocator ``name`` (a key of :data:`PRELOADABLE`), or None."""
    for file_name in PRELOADABLE[name][0]:
        for folder in library_folders() if folders is None else folders:
            path = os.path.join(folder, file_name)
            if os.path.isfile(path):
                return path
    return None


def restart_environ(environ: Mapping[str, str], folders: Sequence[str] | None = None) -> dict[str, str]:
    """The environment of the restarted ``serve``/``worker``: ``environ`` with ``PYTHONMALLOC=malloc`` and, as
    ``INVOKE_HOST_ALLOCATOR`` chooses, an allocator preloaded. Raises :class:`AllocatorError` for a bad choice."""
    choice = environ.get(ALLOCATOR_ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise AllocatorError(
            f"{ALLOCATOR_ENV}={environ[ALLOCATOR_ENV]!r} is not an allocator this program knows: set it to one of "
            f"{', '.join(CHOICES)} (auto: the first of {' and '.join(PRELOADABLE)} installed, else glibc's malloc)"
        )
    env = {**environ, "PYTHONMALLOC": "malloc"}
    if choice == "malloc" or (choice == "auto" and environ.get("LD_PRELOAD")):
        return env
    for name in PRELOADABLE if choice == "auto" else (choice,):
        library = preloadable_library(name, folders)
        if library is not None:
            break
    else:
        if choice != "auto":
            searched = ", ".join(library_folders() if folders is None else folders)
            raise AllocatorError(
                f"{ALLOCATOR_ENV}={choice}, but no {' or '.join(PRELOADABLE[choice][0])} is in {searched}: install "
                f"it ({PRELOADABLE[choice][2]}), or set {ALLOCATOR_ENV}=auto"
            )
        return env
    env["LD_PRELOAD"] = f"{library}:{environ['LD_PRELOAD']}" if environ.get("LD_PRELOAD") else library
    env[_PRELOADED_ENV] = library
    for key, value in PRELOADABLE[name][1].items():
        env.setdefault(key, value)
    return env


def forget_preload(environ: MutableMapping[str, str]) -> str | None:
    """(The restarted process.) Take the library the restart preloaded, and the settings it added for it, out of
    ``environ`` (``os.environ``), so that programs started from here run as they would have; return the library
    (None: nothing was preloaded by the restart)."""
    library = environ.pop(_PRELOADED_ENV, None)
    if library is None:
        return None
    rest = [entry for entry in environ.get("LD_PRELOAD", "").split(":") if entry and entry != library]
    if rest:
        environ["LD_PRELOAD"] = ":".join(rest)
    else:
        environ.pop("LD_PRELOAD", None)
    for _files, settings, _install in PRELOADABLE.values():
        for key, value in settings.items():
            if environ.get(key) == value:
                del environ[key]
    return library
