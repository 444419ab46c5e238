"""`invoke-host serve` runs on the system allocator (so freed memory can go back), unless PYTHONMALLOC says not to."""

from __future__ import annotations

import ctypes.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from invoke_host.allocator import PRELOADABLE, preloadable_library
from invoke_host.memory import free_in_steps, release_free_memory, use_system_allocator

glibc_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None, reason="needs Linux with a libc"
)
INSTALLED = {name: path for name in PRELOADABLE
             if sys.platform.startswith("linux") and (path := preloadable_library(name)) is not None}
needs_preloadable = pytest.mark.skipif(
    not INSTALLED, reason="needs jemalloc or tcmalloc installed (scripts/system-packages installs both)"
)


@contextmanager
def _serve(root: Path, **env: str) -> Iterator[subprocess.Popen[str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "invoke-host"), "serve", "--port", str(port), "--root", str(root),
         "--log-level", "warning"],
        env={**environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/app/version", timeout=5):
                    break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=20)


def _mapped(pid: int, library: str) -> bool:
    """Whether the process has ``library`` loaded."""
    return library in Path(f"/proc/{pid}/maps").read_text()


def _allocator(pid: int) -> str | None:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"PYTHONMALLOC=")]
    return found[0] if found else None


@glibc_linux
def test_serve_restarts_itself_on_the_system_allocator_in_the_same_process(tmp_path: Path) -> None:
    with _serve(tmp_path) as process:
        # The process that answers is the one started (exec keeps the id), now with PYTHONMALLOC=malloc.
        assert _allocator(process.pid) == "malloc"


@glibc_linux
def test_an_allocator_chosen_by_the_user_is_kept(tmp_path: Path) -> None:
    with _serve(tmp_path, PYTHONMALLOC="pymalloc") as process:
        assert _allocator(process.pid) == "pymalloc"


@glibc_linux
@needs_preloadable
def test_serve_runs_on_the_first_installed_allocator_and_on_glibc_when_told(tmp_path: Path) -> None:
    first = INSTALLED[next(name for name in PRELOADABLE if name in INSTALLED)]
    with _serve(tmp_path / "auto") as process:
        assert _allocator(process.pid) == "malloc" and _mapped(process.pid, first)
    with _serve(tmp_path / "malloc", INVOKE_HOST_ALLOCATOR="malloc") as process:
        assert _allocator(process.pid) == "malloc"
        assert not any(_mapped(process.pid, library) for library in INSTALLED.values())


@glibc_linux
def test_serve_refuses_an_allocator_it_does_not_know_before_starting(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "invoke-host"), "serve", "--root", str(tmp_path / "root")],
        env={**environ, "INVOKE_HOST_ALLOCATOR": "hoard"}, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "INVOKE_HOST_ALLOCATOR='hoard'" in out.stderr and "auto, jemalloc, tcmalloc, malloc" in out.stderr
    assert not (tmp_path / "root").exists()  # refused before anything was made


RELEASE_UNDER_PRELOAD = """
import json, sys
from invoke_host.memory import allocator, release_free_memory, rss_bytes

before = rss_bytes()
blocks = [bytes(200) for _ in range(1_000_000)]  # ~230 MB of small objects, each from the allocator
grown = rss_bytes()
del blocks
freed = rss_bytes()
released = release_free_memory()
print(json.dumps({"allocator": allocator(), "before": before, "grown": grown, "freed": freed,
                  "released": released, "after": rss_bytes()}))
"""


@glibc_linux
@pytest.mark.parametrize("name", list(PRELOADABLE))
def test_release_free_memory_has_the_preloaded_allocator_give_back_what_was_freed(name: str) -> None:
    if name not in INSTALLED:
        pytest.skip(f"needs {name} installed (scripts/system-packages installs it)")
    # The allocator keeps what is freed for the next allocations (jemalloc for its decay time: long here, so
    # that only the release can give it back within this test).
    env = {**os.environ, "PYTHONMALLOC": "malloc", "LD_PRELOAD": INSTALLED[name], "MALLOC_CONF": "dirty_decay_ms:-1"}
    out = subprocess.run([sys.executable, "-c", RELEASE_UNDER_PRELOAD], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["allocator"] == name and seen["released"] is True
    mib = 2**20
    assert seen["grown"] - seen["before"] > 150 * mib
    assert seen["freed"] - seen["before"] > 100 * mib
    assert seen["after"] - seen["before"] < 50 * mib


@glibc_linux
def test_release_free_memory_gives_back_pages_freed_in_the_middle_of_the_heap() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(512)]  # 32 MiB from glibc's heap (below its mmap threshold)
    pin = bytearray(1024)  # above them, so free() alone cannot shrink the heap from the top
    del blocks
    assert release_free_memory() is True  # malloc_trim(0) found whole free pages to give back
    del pin


@glibc_linux
def test_a_program_that_calls_serve_in_process_is_never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    monkeypatch.setattr(os, "execv", lambda path, args: calls.append([path, *args]))
    use_system_allocator()  # sys.argv[0] is pytest's: a test calling `serve` through click's runner
    assert calls == [] and "PYTHONMALLOC" not in os.environ
    monkeypatch.setattr(sys, "argv", ["/venv/bin/invoke-host", "serve"])
    use_system_allocator()
    assert calls == [[sys.executable, sys.executable, *sys.orig_argv[1:]]]
    assert os.environ["PYTHONMALLOC"] == "malloc"


def test_free_in_steps_frees_what_the_held_objects_hold_and_empties_the_list() -> None:
    import weakref

    class Thing:
        pass

    shared = {"also": "elsewhere"}

    class State:
        def __init__(self) -> None:
            self.by_id = {str(i): Thing() for i in range(3)}
            self.order = [Thing(), Thing()]
            self.seen = {1, 2}
            self.name = "kept as it is"
            self.shared = shared

    state, other = State(), State()
    refs = [weakref.ref(t) for t in [*state.by_id.values(), *state.order]]
    kept = state.by_id["1"]  # still used elsewhere: it lives on
    held: list[object] = [state, other]
    watch = weakref.ref(other)
    del other
    free_in_steps(held)
    assert held == [] and watch() is None
    # Emptied entry by entry, not just let go: even an object referenced elsewhere (here) holds nothing more.
    assert (state.by_id, state.order, state.seen, state.name) == ({}, [], set(), "kept as it is")
    assert shared == {"also": "elsewhere"}  # a container other objects refer to is left as it is
    assert [r() is None for r in refs] == [True, False, True, True, True] and refs[1]() is kept


@glibc_linux
def test_release_if_grown_trims_once_per_growth_of_the_threshold() -> None:
    from invoke_host import memory

    threshold = 16 * 1024 * 1024
    memory.release_if_grown(1)  # wherever the level stood, it is now this process's RSS (or just below it)
    assert not memory.release_if_grown(threshold), "nothing has grown since"
    # 64 MiB from glibc's heap (pages touched), each block followed by a small one that stays: free() alone cannot
    # give the big ones back, as after a session whose objects lay among ones that live on.
    both = [(bytearray(64 * 1024), bytearray(1024)) for _ in range(1024)]
    pins = [pin for _, pin in both]
    assert memory.release_due(threshold)
    del both
    assert memory.release_if_grown(threshold) is True  # RSS had grown by 64 MiB: trimmed
    # The level is taken after the release: the same memory is not trimmed for again.
    assert not memory.release_due(threshold) and not memory.release_if_grown(threshold)
    del pins


def test_no_release_with_the_threshold_at_zero() -> None:
    from invoke_host import memory

    assert not memory.release_due(0) and not memory.release_if_grown(0)


@glibc_linux
def test_glibc_is_found_without_running_a_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    from invoke_host import memory

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("looking up malloc_trim on glibc must not start a process (`ldconfig -p`)")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_subprocess)
    trim = memory._load_malloc_trim()
    assert trim is not None and trim(0) in (0, 1)


def test_a_libc_other_than_glibc_is_still_searched_for_and_may_have_no_malloc_trim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from invoke_host import memory

    def not_glibc(name: str) -> str:
        raise ValueError(f"unrecognized configuration name {name!r}")  # what musl's and macOS's Python raise

    searched: list[str] = []
    monkeypatch.setattr(os, "confstr", not_glibc)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: searched.append(name))
    assert memory._is_glibc() is False
    assert memory._load_malloc_trim() is None and searched == ["c"]  # no libc found: nothing to trim with
