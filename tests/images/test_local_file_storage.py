from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.images import EmbeddedImageData, ImageFileStorage, ImageNotFoundError, InvalidImageNameError
from PIL import Image

NAME = "0b9f2c3e-7d1a-4c59-9a43-2f1e0d9c8b7a.png"

BAD_NAMES = [
    "../secret.png",
    "..%2Fsecret.png",
    "%2e%2e%2fsecret.png",
    "..",
    "a/b.png",
    "a\\b.png",
    "..\\secret.png",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "%2Fetc%2Fpasswd",
    "%252e%252e%252fsecret.png",
    ".hidden.png",
    "secret.png\x00.png",
    "",
    "thumbnails",
    "a.txt",
]


def test_it_is_an_image_file_storage(files: LocalImageFileStorage) -> None:
    assert isinstance(files, ImageFileStorage)


async def test_png_round_trip_keeps_embedded_text_exactly(files: LocalImageFileStorage, tmp_path: Path) -> None:
    # The graph is stored as given: odd spacing, key order and fields today's models do not know survive.
    graph = '{"nodes":  {"x": {"type": "old_node_v0", "legacy_field": 1}},\n "edges": []}'
    workflow = json.dumps({"name": "ünïcode ワークフロー"})
    embedded = EmbeddedImageData(metadata='{"prompt": "a cat"}', graph=graph, workflow=workflow)
    image = Image.new("RGBA", (300, 120), (10, 20, 30, 128))
    await files.save(NAME, image, embedded)
    assert (tmp_path / "images" / NAME).is_file()
    assert await files.embedded(NAME) == embedded
    loaded = await files.get_pil(NAME)
    assert loaded.size == (300, 120) and loaded.mode == "RGBA" and loaded.getpixel((5, 5)) == (10, 20, 30, 128)
    raw = await files.read(NAME)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(raw)).text["invokeai_graph"] == graph


async def test_no_embedded_text_reads_back_as_none(files: LocalImageFileStorage) -> None:
    await files.save(NAME, Image.new("L", (4, 4)), EmbeddedImageData())
    assert await files.embedded(NAME) == EmbeddedImageData()


@pytest.mark.parametrize(
    ("size", "expected"), [((1024, 512), (256, 128)), ((100, 400), (64, 256)), ((40, 30), (40, 30))]
)
async def test_thumbnail_is_webp_with_longest_side_256(
    files: LocalImageFileStorage, tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    await files.save(NAME, Image.new("RGB", size, (200, 0, 0)), EmbeddedImageData())
    thumb_path = tmp_path / "images" / "thumbnails" / NAME.replace(".png", ".webp")
    assert thumb_path.is_file()
    thumb = Image.open(io.BytesIO(await files.read(NAME, thumbnail=True)))
    assert thumb.format == "WEBP" and thumb.size == expected


async def test_a_failed_save_leaves_no_files(files: LocalImageFileStorage, tmp_path: Path) -> None:
    # Mode "F" cannot be written as PNG: the save fails, and neither file nor temporary is left behind.
    with pytest.raises(OSError):
        await files.save(NAME, Image.new("F", (8, 8)), EmbeddedImageData())
    leftovers = [p for p in (tmp_path / "images").rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_names_are_refused_everywhere(files: LocalImageFileStorage, tmp_path: Path, name: str) -> None:
    (tmp_path / "secret.png").write_bytes(b"top secret")
    with pytest.raises(InvalidImageNameError):
        files.path(name)
    with pytest.raises(InvalidImageNameError):
        await files.read(name)
    with pytest.raises(InvalidImageNameError):
        await files.embedded(name)
    with pytest.raises(InvalidImageNameError):
        await files.delete(name)
    with pytest.raises(InvalidImageNameError):
        await files.save(name, Image.new("RGB", (2, 2)), EmbeddedImageData())
    assert (tmp_path / "secret.png").read_bytes() == b"top secret"


async def test_a_planted_symlink_is_not_followed_out_of_the_folder(
    files: LocalImageFileStorage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.png"
    Image.new("RGB", (2, 2)).save(outside)
    (tmp_path / "images" / "thumbnails").mkdir(parents=True)
    os.symlink(outside, tmp_path / "images" / NAME)
    with pytest.raises(InvalidImageNameError):
        await files.read(NAME)
    with pytest.raises(InvalidImageNameError):
        await files.get_pil(NAME)
    with pytest.raises(InvalidImageNameError):
        await files.delete(NAME)
    assert outside.exists()


async def test_a_thumbnail_folder_symlinked_elsewhere_is_not_followed(
    files: LocalImageFileStorage, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / NAME.replace(".png", ".webp")).write_bytes(b"not yours")
    (tmp_path / "images").mkdir()
    os.symlink(elsewhere, tmp_path / "images" / "thumbnails")
    with pytest.raises(InvalidImageNameError):
        await files.read(NAME, thumbnail=True)


async def test_missing_files_and_delete(files: LocalImageFileStorage, tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError) as missing:
        await files.read(NAME)
    assert str(missing.value) == f"the file of image {NAME!r} is missing"
    with pytest.raises(ImageNotFoundError) as missing:
        await files.read(NAME, thumbnail=True)
    assert str(missing.value) == f"the thumbnail of image {NAME!r} is missing"
    await files.save(NAME, Image.new("RGB", (8, 8)), EmbeddedImageData())
    await files.delete(NAME)
    assert not (tmp_path / "images" / NAME).exists()
    assert not (tmp_path / "images" / "thumbnails" / NAME.replace(".png", ".webp")).exists()
    await files.delete(NAME)  # already gone: not an error
