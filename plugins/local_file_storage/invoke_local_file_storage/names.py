"""Which strings may name an image file: only what the naming service makes, never anything path-like."""

from __future__ import annotations

import re

from invoke_sdk.images import InvalidImageNameError

__all__ = ["check_image_name"]

# A stem of letters, digits, '-' and '_' and the .png suffix: uuid names fit, and nothing that a
# file system or URL decoder could read as a path does.
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}\.png")


def check_image_name(image_name: str) -> str:
    """Return ``image_name`` if it can name an image file; otherwise raise :class:`InvalidImageNameError`.

    The reasons are spelled out for the log; the API answers every one of them with 404.
    """
    if not isinstance(image_name, str):
        raise InvalidImageNameError(repr(image_name), f"it is not text but {type(image_name).__name__}")
    if not image_name:
        raise InvalidImageNameError(image_name, "it is empty")
    if "/" in image_name or "\\" in image_name:
        raise InvalidImageNameError(image_name, "it contains a path separator")
    if ".." in image_name:
        raise InvalidImageNameError(image_name, "it contains '..'")
    if "%" in image_name:
        raise InvalidImageNameError(image_name, "it contains an encoded character")
    if "\x00" in image_name or image_name.startswith(("~", ".")):
        raise InvalidImageNameError(image_name, "it is not a plain file name")
    if _VALID.fullmatch(image_name) is None:
        raise InvalidImageNameError(
            image_name, "image names are letters, digits, '-' and '_' followed by '.png' (at most 132 characters)"
        )
    return image_name
