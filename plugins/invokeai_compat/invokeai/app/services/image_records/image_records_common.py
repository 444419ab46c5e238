"""InvokeAI's image record enums, with its upper-case spellings (``ImageCategory.GENERAL``)."""

# ruff: noqa: UP042 - InvokeAI's enums are (str, Enum), whose str() and format() packs rely on; StrEnum differs

from __future__ import annotations

from enum import Enum

__all__ = ["ImageCategory", "ImageRecordNotFoundException", "InvalidImageCategoryException", "ResourceOrigin"]


class ResourceOrigin(str, Enum):
    """Where an image came from: made by a node (internal) or uploaded (external)."""

    INTERNAL = "internal"
    EXTERNAL = "external"


class ImageCategory(str, Enum):
    """The category an image is saved under; the values are invoke_sdk's."""

    GENERAL = "general"
    MASK = "mask"
    CONTROL = "control"
    USER = "user"
    OTHER = "other"


class InvalidImageCategoryException(ValueError):  # noqa: N818 - InvokeAI's name
    """Not one of :class:`ImageCategory`."""


class ImageRecordNotFoundException(LookupError):  # noqa: N818 - InvokeAI's name
    """No image of that name."""
