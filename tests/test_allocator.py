"""What `invoke-host serve` and `worker` restart on (invoke_host/allocator.py): jemalloc or tcmalloc where installed,
chosen by INVOKE_HOST_ALLOCATOR, and nothing of the restart's own left in the environment of the programs they
start."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoke_host.allocator import AllocatorError, forget_preload, preloadable_library, restart_environ

JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"


def _folders(tmp_path: Path, *libraries: str) -> list[str]:
    """Two library folders; the second holds ``libraries`` (the finder looks for the files, as the linker will)."""
    (tmp_path / "lib64").mkdir()
    (tmp_path / "lib").mkdir()
    for name in libraries:
        (tmp_path / "lib" / name).write_bytes(b"")
    return [str(tmp_path / "lib64"), str(tmp_path / "lib")]


@pytest.fixture
def both(tmp_path: Path) -> list[str]:
    return _folders(tmp_path, "libjemalloc.so.2", "libtcmalloc_minimal.so.4")


def test_auto_preloads_jemalloc_first_with_its_background_purge(both: list[str]) -> None:
    env = restart_environ({"HOME": "/home/me"}, both)
    assert env["PYTHONMALLOC"] == "malloc"
    assert env["LD_PRELOAD"] == str(Path(both[1]) / "libjemalloc.so.2")
    assert env["MALLOC_CONF"] == JEMALLOC_CONF
    assert env["HOME"] == "/home/me"
    assert "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD" not in env


def test_auto_takes_tcmalloc_where_jemalloc_is_missing(tmp_path: Path) -> None:
    folders = _folders(tmp_path, "libtcmalloc_minimal.so.4")
    env = restart_environ({}, folders)
    assert env["LD_PRELOAD"] == str(Path(folders[1]) / "libtcmalloc_minimal.so.4")
    # A model's weights loaded on the CPU must not print a "tcmalloc: large alloc" line per tensor.
    assert int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) > 2**40
    assert "MALLOC_CONF" not in env


def test_a_malloc_conf_someone_set_is_kept(both: list[str]) -> None:
    env = restart_environ({"MALLOC_CONF": "narenas:2"}, both)
    assert env["MALLOC_CONF"] == "narenas:2"
    assert forget_preload(env) is not None and env["MALLOC_CONF"] == "narenas:2"


def test_the_minimal_tcmalloc_is_preferred_and_the_full_one_is_found_too(tmp_path: Path) -> None:
    (tmp_path / "libtcmalloc.so.4").write_bytes(b"")
    assert preloadable_library("tcmalloc", [str(tmp_path)]) == str(tmp_path / "libtcmalloc.so.4")
    (tmp_path / "libtcmalloc_minimal.so.4").write_bytes(b"")
    assert preloadable_library("tcmalloc", [str(tmp_path)]) == str(tmp_path / "libtcmalloc_minimal.so.4")


def test_with_neither_installed_auto_restarts_on_glibc_malloc(tmp_path: Path) -> None:
    assert restart_environ({}, [str(tmp_path)]) == {"PYTHONMALLOC": "malloc"}


@pytest.mark.parametrize("choice", ["malloc", "MALLOC", " malloc "])
def test_malloc_keeps_glibc_even_where_others_are_installed(both: list[str], choice: str) -> None:
    env = restart_environ({"INVOKE_HOST_ALLOCATOR": choice}, both)
    assert "LD_PRELOAD" not in env and env["PYTHONMALLOC"] == "malloc"


def test_tcmalloc_asked_for_is_taken_though_jemalloc_is_there(both: list[str]) -> None:
    env = restart_environ({"INVOKE_HOST_ALLOCATOR": "tcmalloc"}, both)
    assert env["LD_PRELOAD"] == str(Path(both[1]) / "libtcmalloc_minimal.so.4")


def test_auto_leaves_a_preload_someone_set_alone(both: list[str]) -> None:
    env = restart_environ({"LD_PRELOAD": "/opt/hoard.so"}, both)
    assert env == {"LD_PRELOAD": "/opt/hoard.so", "PYTHONMALLOC": "malloc"}
    assert forget_preload(env) is None and env["LD_PRELOAD"] == "/opt/hoard.so"


def test_an_allocator_asked_for_goes_first_among_other_preloads(both: list[str]) -> None:
    env = restart_environ({"INVOKE_HOST_ALLOCATOR": "jemalloc", "LD_PRELOAD": "/opt/hook.so"}, both)
    assert env["LD_PRELOAD"] == f"{Path(both[1]) / 'libjemalloc.so.2'}:/opt/hook.so"


@pytest.mark.parametrize(("choice", "install"), [("jemalloc", "apt install libjemalloc2"),
                                                 ("tcmalloc", "apt install libtcmalloc-minimal4")])
def test_an_allocator_asked_for_and_missing_is_refused_with_what_to_install(
        tmp_path: Path, choice: str, install: str) -> None:
    with pytest.raises(AllocatorError) as caught:
        restart_environ({"INVOKE_HOST_ALLOCATOR": choice}, [str(tmp_path)])
    message = str(caught.value)
    assert f"INVOKE_HOST_ALLOCATOR={choice}" in message
    assert str(tmp_path) in message and install in message
    assert "INVOKE_HOST_ALLOCATOR=auto" in message


def test_an_unknown_allocator_is_refused_naming_the_choices(both: list[str]) -> None:
    with pytest.raises(AllocatorError, match=r"INVOKE_HOST_ALLOCATOR='hoard'.*auto, jemalloc, tcmalloc, malloc"):
        restart_environ({"INVOKE_HOST_ALLOCATOR": "hoard"}, both)


@pytest.mark.parametrize(
    "before",
    [
        {"HOME": "/home/me"},
        {"LD_PRELOAD": "/opt/hook.so", "INVOKE_HOST_ALLOCATOR": "jemalloc"},
        {"LD_PRELOAD": "/opt/hook.so", "INVOKE_HOST_ALLOCATOR": "tcmalloc"},
        {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": "1000", "INVOKE_HOST_ALLOCATOR": "tcmalloc"},
    ],
)
def test_the_restarted_process_gives_its_children_the_environment_it_was_started_with(
        both: list[str], before: dict[str, str]) -> None:
    env = restart_environ(before, both)
    preloaded = env["LD_PRELOAD"].split(":")[0]
    assert forget_preload(env) == preloaded
    assert env == {**before, "PYTHONMALLOC": "malloc"}
    assert forget_preload(env) is None  # a second call (or a process nobody restarted) changes nothing
