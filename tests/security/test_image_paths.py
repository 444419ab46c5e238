"""Threat: an image name or a link in the image folder makes the store read a file outside it.

The name checks and the containment check run before the file is opened; these tests swap a symlink in
*between* the check and the open (what a local attacker racing the server would do) and expect the open
itself to refuse it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.images import EmbeddedImageData, ImageNotFoundError, InvalidImageNameError
from PIL import Image

NAME = "0b9f2c3e-7d1a-4c59-9a43-2f1e0d9c8b7a.png"


def _swap_after_check(files: LocalImageFileStorage, outside: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make every path check replace its (checked) file with a symlink to ``outside`` just after it passed."""
    checked = files.path
    swapped: list[Path] = []

    def path_then_swap(image_name: str, *, thumbnail: bool = False) -> Path:
        path = checked(image_name, thumbnail=thumbnail)
        path.unlink(missing_ok=True)
        os.symlink(outside, path)
        swapped.append(path)
        return path

    monkeypatch.setattr(files, "path", path_then_swap)
    return swapped


READERS = {
    "read": lambda files: files.read(NAME),
    "read thumbnail": lambda files: files.read(NAME, thumbnail=True),
    "get_pil": lambda files: files.get_pil(NAME),
    "embedded": lambda files: files.embedded(NAME),
}


@pytest.mark.parametrize("reader", list(READERS))
async def test_a_symlink_swapped_in_after_the_check_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    files = LocalImageFileStorage(tmp_path / "root")
    await files.save(NAME, Image.new("RGB", (4, 4)), EmbeddedImageData(metadata="{}"))
    outside = tmp_path / "outside.png"
    Image.new("RGB", (9, 9)).save(outside)
    swapped = _swap_after_check(files, outside, monkeypatch)
    with pytest.raises(ImageNotFoundError, match="cannot be opened"):
        await READERS[reader](files)
    assert len(swapped) == 1 and swapped[0].is_symlink()  # the race really happened


async def test_a_planted_symlink_to_another_file_of_the_store_is_refused(tmp_path: Path) -> None:
    # Inside the store, but not an image file of its own: a name must reach exactly its own file.
    files = LocalImageFileStorage(tmp_path / "root")
    other = "1c8e2d4f-0000-4000-8000-000000000000.png"
    await files.save(other, Image.new("RGB", (4, 4)), EmbeddedImageData())
    thumbnail = files.path(other, thumbnail=True)
    os.symlink(thumbnail, files.images_dir / NAME)
    with pytest.raises(InvalidImageNameError, match="resolves to a place outside the image store"):
        await files.read(NAME)
