"""The ``invoke-host`` program's entry point: ``serve`` and ``worker`` start again on the system allocator before
the command line module (click) is imported.

``invoke-host serve`` and ``invoke-host worker`` replace their process with one on the C allocator, jemalloc where
installed (:mod:`invoke_host.allocator` and :func:`invoke_host.memory.use_system_allocator` say why). Everything
imported before that ``os.execv`` is imported again by the new interpreter, so it is paid twice: reaching the
restart through :mod:`invoke_host.cli` imported click (40-45 ms of CPU), and that module ``ctypes`` and the memory
module's own imports. This module decides with ``os``, ``sys``, ``ctypes`` and :mod:`invoke_host.allocator` (which
imports ``os`` and ``sys`` alone) and restarts first; every other command, and anything it cannot tell, goes on to
:func:`invoke_host.cli.main` unchanged, where ``serve`` and ``worker`` still call ``use_system_allocator`` (which
does nothing in the restarted process, whose ``PYTHONMALLOC`` is set).

Restarting here changes nothing but the cost: the restarted process runs the same command line through the same
click commands (``serve --help`` or a bad option prints the same text and exits the same way).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["exec_on_system_allocator", "main", "restarts_first"]

_RESTARTING_COMMANDS = frozenset({"serve", "worker"})


def exec_on_system_allocator() -> None:
    """Replace this process with the same program and arguments on the C allocator (``PYTHONMALLOC=malloc``, and
    jemalloc or tcmalloc preloaded where installed: :func:`invoke_host.allocator.restart_environ`), as
    :func:`~invoke_host.memory.use_system_allocator` does (not imported from there: that module's own imports,
    logging, threading and concurrent.futures among them, are what this one keeps out of the first interpreter).

    A bad ``INVOKE_HOST_ALLOCATOR`` ends the program with its message and exit status 2, as a bad option does."""
    from invoke_host.allocator import AllocatorError, restart_environ

    try:
        os.environ.update(restart_environ(os.environ))  # it only adds: the restart inherits os.environ
    except AllocatorError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(2)
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _glibc_with_malloc_trim() -> bool:
    """Whether this is glibc and its ``malloc_trim`` is found by the soname, as :mod:`invoke_host.memory` finds it.

    Anything else (no glibc, or a glibc named otherwise that memory.py would look for with ``find_library``, which
    runs ``ldconfig``) is left to :func:`~invoke_host.memory.use_system_allocator`.
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (AttributeError, ValueError, OSError):
        return False
    import ctypes  # 4 ms; only where the answer above says glibc

    try:
        ctypes.CDLL("libc.so.6").malloc_trim  # noqa: B018 - looked up to know it is there
    except (OSError, AttributeError):
        return False
    return True


def restarts_first(argv: list[str], environ: Mapping[str, str]) -> bool:
    """Whether ``argv`` (``sys.argv``) is a ``serve`` or ``worker`` command of the ``invoke-host`` program that
    :func:`~invoke_host.memory.use_system_allocator` would restart, told without importing click."""
    if "PYTHONMALLOC" in environ or not sys.platform.startswith("linux"):
        return False
    if len(argv) < 2 or os.path.basename(argv[0]) != "invoke-host" or argv[1] not in _RESTARTING_COMMANDS:
        return False
    # `serve --help` prints and exits without reaching the restart; not worth a second interpreter.
    if "--help" in argv[2:]:
        return False
    return _glibc_with_malloc_trim()


def main() -> None:
    """``invoke-host``: restart ``serve`` and ``worker`` on the system allocator first, then run the command."""
    if restarts_first(sys.argv, os.environ):
        exec_on_system_allocator()
    from invoke_host.cli import main as cli_main

    cli_main()
