"""Writes killed with SIGKILL leave temporary files; the next start removes exactly those, and says so.

Each write goes to a temporary name and is renamed into place last. A child process does one real write
with ``os.replace`` stalled, so it is killed at the worst moment: the temporary file complete, not yet
moved. Each owner must then remove its own leftovers, in its own folder, matching its own temporary
names, and nothing else.
"""

from __future__ import annotations

import logging
import os
import selectors
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.migrations import MIGRATIONS
from invoke_sqlite_storage.migrator import migrate

from invoke_host.config import HostConfig
from invoke_host.engine.object_store import tensor_store
from invoke_host.host import build_host

CHILD = r"""
import os, sys, time, uuid
from pathlib import Path

kind, root = sys.argv[1], Path(sys.argv[2])

def stall(src, dst):
    # One line on stdout, written by one write to the pipe: the parent reads all of it or nothing.
    os.write(1, f"{src}\n".encode())
    time.sleep(3600)  # killed here: the temporary file is written, the rename never happens

os.replace = stall
if kind == "image":
    from PIL import Image
    from invoke_sdk.images import EmbeddedImageData
    from invoke_local_file_storage.storage import LocalImageFileStorage
    LocalImageFileStorage(root)._save(f"{uuid.uuid4()}.png", Image.new("RGB", (32, 32)), EmbeddedImageData())
elif kind == "tensor":
    from invoke_host.engine.object_store import DiskObjectStore
    DiskObjectStore(root / "tensors", "tensor", save=lambda obj, f: f.write(b"t" * 4096), load=None).save(1)
else:  # "database": a new database, or the backup before migrating an old one
    from invoke_sqlite_storage.migrations import MIGRATIONS
    from invoke_sqlite_storage.migrator import migrate
    db = root / "databases" / "invoke.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    migrate(db, MIGRATIONS, db.parent / "backups")
"""


def _kill_mid_write(kind: str, root: Path, *, aged: bool = True) -> Path:
    """Run one write of ``kind`` under ``root`` in a child, SIGKILL it before its rename; the temporary file,
    made to look an hour old unless not ``aged``."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(root)], stdout=subprocess.PIPE)
    try:
        line = _stalled_at(child, kind, timeout=60)
    finally:
        child.kill()  # SIGKILL: no finally block, no cleanup in the child
        child.wait(30)
    leftover = Path(line)
    assert leftover.is_file(), line
    if aged:
        _age(leftover)
    return leftover


def _stalled_at(child: subprocess.Popen[bytes], kind: str, *, timeout: float) -> str:
    """The temporary path the child's stalled rename names: its one line on stdout, read once whole. The pipe, not
    a marker file, because a file is there (empty) before its text is: a reader polling for it could read nothing."""
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout)
    assert ready, f"the {kind} writer did not reach its rename within {timeout:g} s"
    line = child.stdout.readline().decode()
    assert line.endswith("\n"), f"the {kind} writer exited with {child.wait(30)} before stalling"
    return line[:-1]


def _age(path: Path) -> None:
    """Make ``path`` look written an hour ago: a leftover of a process that died, not a write in flight."""
    written = time.time() - 3600
    os.utime(path, (written, written))


def _bystanders(root: Path) -> list[Path]:
    """Files that look alike but are not any owner's leftovers (or not in its folder): all must stay."""
    hex32 = uuid.uuid4().hex
    paths = [
        root / "images" / f"{uuid.uuid4()}.png",  # a finished image
        root / "images" / "notes.png.tmp",  # not our temporary-name shape
        root / "images" / ".keep",
        root / "images" / f".{hex32}.webp.tmp",  # a thumbnail's temporary name, but not in the thumbnails folder
        root / "images" / "thumbnails" / f".{hex32}.png.tmp",  # and the other way round
        root / "tensors" / f"tensor_{hex32}",  # a finished tensor
        root / "tensors" / f".conditioning_{hex32}.abc123.part",  # another store's name
        root / "conditioning" / f".tensor_{hex32}.abc123.part",  # the tensor store's name, in another folder
        root / "databases" / "backups" / "invoke-v1-before-v3-20260101T000000000000Z.db",  # a finished backup
        root / "databases" / ".other.db.new",
    ]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"keep me")
    return paths


async def _old_database(root: Path) -> None:
    backend = SqliteBackend(root / "databases" / "invoke.db", migrations=MIGRATIONS[:1])
    await backend.start()
    await backend.stop()


async def test_the_next_start_removes_what_killed_writes_left_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _old_database(tmp_path)
    png_tmp = _kill_mid_write("image", tmp_path)
    webp_tmp = tmp_path / "images" / "thumbnails" / png_tmp.name.replace(".png.tmp", ".webp.tmp")
    _age(webp_tmp)
    tensor_part = _kill_mid_write("tensor", tmp_path)
    backup_part = _kill_mid_write("database", tmp_path)
    assert png_tmp.parent == tmp_path / "images" and webp_tmp.is_file()
    assert tensor_part.parent == tmp_path / "tensors" and tensor_part.name.endswith(".part")
    assert backup_part.parent == tmp_path / "databases" / "backups" and backup_part.name.endswith(".db.part")
    keep = _bystanders(tmp_path)

    caplog.set_level(logging.INFO)
    config = HostConfig(root=tmp_path, plugins_allow=["sqlite_storage", "local_file_storage"], processor_enabled=False)
    host = build_host(config, entry_points=True)
    await host.start()
    try:
        tensor_store(tmp_path)  # the store the host's node services create
        for leftover in (png_tmp, webp_tmp, tensor_part, backup_part):
            assert not leftover.exists(), leftover
        assert all(path.read_bytes() == b"keep me" for path in keep)
        # The interrupted migration ran this time, after a complete backup.
        backups = sorted(p.name for p in (tmp_path / "databases" / "backups").iterdir())
        assert len(backups) == 2 and all(name.endswith(".db") for name in backups)
    finally:
        await host.stop()
    said = "\n".join(caplog.messages)
    assert f"Removed 2 unfinished image file(s) that writes interrupted by a crash or kill left behind: {png_tmp}, " \
        f"{webp_tmp}" in said
    assert f"Removed 1 unfinished tensor file(s) from {tmp_path / 'tensors'}" in said
    assert f"Removed {backup_part}, left by a start or migration that was interrupted" in said


def test_a_new_database_killed_before_it_was_moved_into_place_is_built_again(tmp_path: Path) -> None:
    new = _kill_mid_write("database", tmp_path)
    db = tmp_path / "databases" / "invoke.db"
    assert new == db.with_name(".invoke.db.new") and not db.exists()
    assert migrate(db, MIGRATIONS, db.parent / "backups") == [m.version for m in MIGRATIONS]
    assert sorted(p.name for p in db.parent.iterdir()) == ["invoke.db"]


async def test_temporary_files_younger_than_any_write_takes_stay_they_may_be_another_process_writing(
    tmp_path: Path,
) -> None:
    """A second process on the data root (``invoke-host run`` beside a server) must not remove a live write."""
    png_tmp = _kill_mid_write("image", tmp_path, aged=False)
    webp_tmp = tmp_path / "images" / "thumbnails" / png_tmp.name.replace(".png.tmp", ".webp.tmp")
    tensor_part = _kill_mid_write("tensor", tmp_path, aged=False)
    config = HostConfig(root=tmp_path, plugins_allow=["sqlite_storage", "local_file_storage"], processor_enabled=False)
    host = build_host(config, entry_points=True)
    await host.start()
    try:
        assert png_tmp.is_file() and webp_tmp.is_file() and tensor_part.is_file()
    finally:
        await host.stop()
