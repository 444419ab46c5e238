"""Which strings may name an image: every rule of the name check, each with the reason it gives."""

from __future__ import annotations

import re
import uuid

import pytest
from invoke_local_file_storage import check_image_name
from invoke_sdk.images import InvalidImageNameError

from invoke_host.images import ImageNamer

SHAPE = "image names are letters, digits, '-' and '_' followed by '.png' (at most 132 characters)"


def _reason(name: object) -> str:
    with pytest.raises(InvalidImageNameError) as caught:
        check_image_name(name)  # type: ignore[arg-type]
    shown = name if isinstance(name, str) else repr(name)
    prefix = f"{shown!r} is not an image name: "
    message = str(caught.value)
    assert message.startswith(prefix), message
    return message.removeprefix(prefix)


@pytest.mark.parametrize("name", [
    "0b9f2c3e-7d1a-4c59-9a43-2f1e0d9c8b7a.png",
    "a.png",
    "Z.png",
    "7.png",
    "a_b-C.png",
    "a" + "b" * 127 + ".png",  # the longest stem: 128 characters, 132 with the suffix
])
def test_names_the_store_accepts_come_back_unchanged(name: str) -> None:
    assert check_image_name(name) == name


@pytest.mark.parametrize(("name", "reason"), [
    ("", "it is empty"),
    ("a/b.png", "it contains a path separator"),
    ("/etc/passwd", "it contains a path separator"),
    ("a\\b.png", "it contains a path separator"),
    ("..", "it contains '..'"),
    ("a..png", "it contains '..'"),
    ("%2e%2e.png", "it contains an encoded character"),
    ("a%20b.png", "it contains an encoded character"),
    ("a\x00.png", "it is not a plain file name"),
    (".hidden.png", "it is not a plain file name"),
    ("~root.png", "it is not a plain file name"),
    (".png", "it is not a plain file name"),
])
def test_each_path_like_shape_is_refused_with_its_reason(name: str, reason: str) -> None:
    assert _reason(name) == reason


@pytest.mark.parametrize("name", [
    "a" + "b" * 128 + ".png",  # one character too long
    "a.b.png",  # a dot inside the stem
    "a.png.png",
    "a.pngx",  # the suffix must end the name: a prefix match is not enough
    "a.png\n",
    "xa.png.txt",
    "a.PNG",
    "a.jpg",
    "a",
    "-a.png",  # the stem starts with a letter or digit
    "_a.png",
    "a b.png",
    "é.png",
    "a:b.png",
    "thumbnails",
])
def test_anything_else_that_is_not_a_plain_png_name_is_refused(name: str) -> None:
    assert _reason(name) == SHAPE


@pytest.mark.parametrize(("value", "reason"), [(None, "it is not text but NoneType"), (5, "it is not text but int"),
                                               (b"a.png", "it is not text but bytes")])
def test_a_name_that_is_not_text_is_refused(value: object, reason: str) -> None:
    assert _reason(value) == reason


def test_the_namer_makes_fresh_uuid_png_names_that_the_store_accepts() -> None:
    namer = ImageNamer()
    names = [namer.new_name() for _ in range(50)]
    assert len(set(names)) == 50
    for name in names:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.png", name), name
        assert uuid.UUID(name.removesuffix(".png")).version == 4
        assert check_image_name(name) == name
