"""Which allocator ``invoke-host serve`` and ``invoke-host worker`` restart on: gperftools' tcmalloc where it is
installed, glibc's malloc otherwise.

Both programs start themselves again (``os.execv``, same process id) with ``PYTHONMALLOC=malloc``, so that every
Python object comes from the C allocator and what a large session freed can be given back to the system
(:mod:`invoke_host.memory`; Python's own allocator keeps 1 MiB arenas that a few survivors pin). On glibc's malloc
that costs the server CPU while a session runs, where its threads (the runner, the event loop, the database's, the
one encoding rows) allocate and free at once; a run in one thread costs the same on glibc as on Python's allocator.
The 10,000-item iterate took 0.71 s of server CPU on glibc and 0.65 s on tcmalloc (medians of 25 alternating runs,
docs/benchmarks.md), against 0.51 s in-process. tcmalloc keeps what is freed until asked; the processor asks when
no item runs (``MallocExtension_ReleaseFreeMemory``, see :func:`invoke_host.memory.release_free_memory`): RSS after
a 100,000-item run +21-23 MiB over idle, as on glibc with ``malloc_trim``.

tcmalloc is loaded by the dynamic linker (``LD_PRELOAD`` of the restarted process), found by path in the system's
library folders, without ``ldconfig`` (a subprocess, 40-50 ms of every start). The restarted process takes the
preload out of its own environment again, so programs it starts run as they would have. ``INVOKE_HOST_ALLOCATOR``
chooses: ``auto`` (the default: tcmalloc if installed, else glibc's malloc), ``tcmalloc`` (refuse to start without
it), ``malloc`` (glibc's). ``PYTHONMALLOC`` set by a person still means no restart at all, and an ``LD_PRELOAD``
already set is left alone by ``auto``: whoever set it chose.

This module is imported by :mod:`invoke_host.launcher` before the restart, so it imports ``os`` and ``sys`` only.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping, Sequence

__all__ = [
    "ALLOCATOR_ENV", "CHOICES", "AllocatorError", "forget_preload", "library_folders", "restart_environ",
    "tcmalloc_library",
]

ALLOCATOR_ENV = "INVOKE_HOST_ALLOCATOR"
CHOICES = ("auto", "tcmalloc", "malloc")
# The library the restart preloaded, so that the restarted process can take it out of LD_PRELOAD again.
_PRELOADED_ENV = "INVOKE_HOST_PRELOADED"
# The minimal build first: the full one adds a heap profiler nobody here asked for.
_TCMALLOC_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
# tcmalloc writes "tcmalloc: large alloc ..." to stderr for every allocation above this (1 GiB by default): a
# model's weights loaded on the CPU would fill the log with them.
_REPORT_THRESHOLD_ENV = "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"
_NEVER_REPORT = str(1 << 62)


class AllocatorError(RuntimeError):
    """``INVOKE_HOST_ALLOCATOR`` names no allocator, or one that is not installed; the message says what to do."""


def library_folders() -> tuple[str, ...]:
    """Where Linux distributions install shared libraries (Debian's multiarch folders, Fedora's lib64, Arch's lib)."""
    multiarch = getattr(sys.implementation, "_multiarch", None) or f"{os.uname().machine}-linux-gnu"
    return (f"/usr/lib/{multiarch}", f"/lib/{multiarch}", "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/lib")


def tcmalloc_library(folders: Sequence[str] | None = None) -> str | None:
    """The path of an installed tcmalloc (``libtcmalloc_minimal.so.4`` first), or None."""
    for name in _TCMALLOC_NAMES:
        for folder in library_folders() if folders is None else folders:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def restart_environ(environ: Mapping[str, str], folders: Sequence[str] | None = None) -> dict[str, str]:
    """The environment of the restarted ``serve``/``worker``: ``environ`` with ``PYTHONMALLOC=malloc`` and, as
    ``INVOKE_HOST_ALLOCATOR`` chooses, tcmalloc preloaded. Raises :class:`AllocatorError` for a bad choice."""
    choice = environ.get(ALLOCATOR_ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise AllocatorError(
            f"{ALLOCATOR_ENV}={environ[ALLOCATOR_ENV]!r} is not an allocator this program knows: set it to one of "
            f"{', '.join(CHOICES)} (auto: tcmalloc where installed, else glibc's malloc)"
        )
    env = {**environ, "PYTHONMALLOC": "malloc"}
    if choice == "malloc" or (choice == "auto" and environ.get("LD_PRELOAD")):
        return env
    library = tcmalloc_library(folders)
    if library is None:
        if choice == "tcmalloc":
            searched = ", ".join(library_folders() if folders is None else folders)
            raise AllocatorError(
                f"{ALLOCATOR_ENV}=tcmalloc, but no {' or '.join(_TCMALLOC_NAMES)} is in {searched}: install "
                "gperftools' tcmalloc (Debian and Ubuntu: apt install libtcmalloc-minimal4; Fedora: "
                f"dnf install gperftools-libs), or set {ALLOCATOR_ENV}=auto"
            )
        return env
    env["LD_PRELOAD"] = f"{library}:{environ['LD_PRELOAD']}" if environ.get("LD_PRELOAD") else library
    env[_PRELOADED_ENV] = library
    env.setdefault(_REPORT_THRESHOLD_ENV, _NEVER_REPORT)
    return env


def forget_preload(environ: MutableMapping[str, str]) -> str | None:
    """(The restarted process.) Take the library the restart preloaded out of ``environ`` (``os.environ``), so that
    programs started from here run as they would have; return it (None: nothing was preloaded by the restart)."""
    library = environ.pop(_PRELOADED_ENV, None)
    if library is None:
        return None
    rest = [entry for entry in environ.get("LD_PRELOAD", "").split(":") if entry and entry != library]
    if rest:
        environ["LD_PRELOAD"] = ":".join(rest)
    else:
        environ.pop("LD_PRELOAD", None)
    if environ.get(_REPORT_THRESHOLD_ENV) == _NEVER_REPORT:
        del environ[_REPORT_THRESHOLD_ENV]
    return library
