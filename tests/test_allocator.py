"""What `invoke-host serve` and `worker` restart on (invoke_host/allocator.py): tcmalloc where installed, chosen by
INVOKE_HOST_ALLOCATOR, and nothing of the restart's own left in the environment of the programs they start."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoke_host.allocator import AllocatorError, forget_preload, restart_environ, tcmalloc_library


@pytest.fixture
def folders(tmp_path: Path) -> list[str]:
    """Two library folders; the second holds a tcmalloc (the finder looks for the file, as the linker will)."""
    (tmp_path / "lib64").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libtcmalloc_minimal.so.4").write_bytes(b"")
    return [str(tmp_path / "lib64"), str(tmp_path / "lib")]


def test_auto_preloads_an_installed_tcmalloc_on_malloc(folders: list[str]) -> None:
    env = restart_environ({"HOME": "/home/me"}, folders)
    library = str(Path(folders[1]) / "libtcmalloc_minimal.so.4")
    assert env["PYTHONMALLOC"] == "malloc"
    assert env["LD_PRELOAD"] == library
    assert env["HOME"] == "/home/me"
    # A model's weights loaded on the CPU must not print a "tcmalloc: large alloc" line per tensor.
    assert int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) > 2**40


def test_the_minimal_build_is_preferred_and_the_full_one_is_found_too(tmp_path: Path) -> None:
    (tmp_path / "libtcmalloc.so.4").write_bytes(b"")
    assert tcmalloc_library([str(tmp_path)]) == str(tmp_path / "libtcmalloc.so.4")
    (tmp_path / "libtcmalloc_minimal.so.4").write_bytes(b"")
    assert tcmalloc_library([str(tmp_path)]) == str(tmp_path / "libtcmalloc_minimal.so.4")


def test_without_tcmalloc_auto_restarts_on_glibc_malloc(tmp_path: Path) -> None:
    env = restart_environ({}, [str(tmp_path)])
    assert env == {"PYTHONMALLOC": "malloc"}


@pytest.mark.parametrize("choice", ["malloc", "MALLOC", " malloc "])
def test_malloc_keeps_glibc_even_where_tcmalloc_is_installed(folders: list[str], choice: str) -> None:
    env = restart_environ({"INVOKE_HOST_ALLOCATOR": choice}, folders)
    assert "LD_PRELOAD" not in env and env["PYTHONMALLOC"] == "malloc"


def test_auto_leaves_a_preload_someone_set_alone(folders: list[str]) -> None:
    env = restart_environ({"LD_PRELOAD": "/opt/jemalloc.so"}, folders)
    assert env["LD_PRELOAD"] == "/opt/jemalloc.so"
    assert forget_preload(env) is None and env["LD_PRELOAD"] == "/opt/jemalloc.so"


def test_tcmalloc_asked_for_goes_first_among_other_preloads(folders: list[str]) -> None:
    env = restart_environ({"INVOKE_HOST_ALLOCATOR": "tcmalloc", "LD_PRELOAD": "/opt/hook.so"}, folders)
    assert env["LD_PRELOAD"] == f"{Path(folders[1]) / 'libtcmalloc_minimal.so.4'}:/opt/hook.so"


def test_tcmalloc_asked_for_and_missing_is_refused_with_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(AllocatorError) as caught:
        restart_environ({"INVOKE_HOST_ALLOCATOR": "tcmalloc"}, [str(tmp_path)])
    message = str(caught.value)
    assert "INVOKE_HOST_ALLOCATOR=tcmalloc" in message
    assert str(tmp_path) in message and "apt install libtcmalloc-minimal4" in message
    assert "INVOKE_HOST_ALLOCATOR=auto" in message


def test_an_unknown_allocator_is_refused_naming_the_choices(folders: list[str]) -> None:
    with pytest.raises(AllocatorError, match=r"INVOKE_HOST_ALLOCATOR='jemalloc'.*auto, tcmalloc, malloc"):
        restart_environ({"INVOKE_HOST_ALLOCATOR": "jemalloc"}, folders)


@pytest.mark.parametrize(
    "before",
    [
        {"HOME": "/home/me"},
        {"LD_PRELOAD": "/opt/hook.so", "INVOKE_HOST_ALLOCATOR": "tcmalloc"},
        {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": "1000", "INVOKE_HOST_ALLOCATOR": "tcmalloc"},
    ],
)
def test_the_restarted_process_gives_its_children_the_environment_it_was_started_with(
    folders: list[str], before: dict[str, str]
) -> None:
    env = restart_environ(before, folders)
    assert forget_preload(env) == str(Path(folders[1]) / "libtcmalloc_minimal.so.4")
    assert env == {**before, "PYTHONMALLOC": "malloc"}
    assert forget_preload(env) is None  # a second call (or a process nobody restarted) changes nothing
