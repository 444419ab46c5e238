"""Turning uploaded bytes into an image we are willing to store, or a reason why not."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from invoke_sdk.images import EmbeddedImageData

if TYPE_CHECKING:
    from PIL import Image  # the type hints only: Pillow is imported where images are decoded

__all__ = ["ImageTooLargeError", "UnsupportedImageError", "decode_upload"]

# Modes a PNG holds as they are; anything else (CMYK, YCbCr, LAB ...) is converted to RGB(A).
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}
_CHUNKS = {"metadata": "invokeai_metadata", "graph": "invokeai_graph", "workflow": "invokeai_workflow"}


class UnsupportedImageError(ValueError):
    """The upload is not an image this server can decode."""


class ImageTooLargeError(ValueError):
    """The upload has more pixels (or bytes) than the configured limit."""


def decode_upload(data: bytes, *, max_pixels: int) -> tuple[Image.Image, EmbeddedImageData]:
    """Decode an upload, refusing anything over ``max_pixels`` before its pixels are decoded.

    Returns the image (upright per its EXIF orientation, in a mode PNG can hold) and the
    InvokeAI text chunks it carried, as given. Blocking: call it in a worker thread.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # here, not at import: Pillow kept off start-up
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning is superseded by our explicit, configurable limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"the image has too many pixels to be decoded safely ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedImageError(
            "the upload is not an image this server can read (PNG, JPEG, WebP, GIF, BMP, TIFF ...): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise UnsupportedImageError(f"the image is {width}x{height} pixels; it must have at least one pixel")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height:,} pixels; this server accepts at most "
            f"{max_pixels:,} pixels: max_image_pixels (INVOKE_HOST_MAX_IMAGE_PIXELS={max_pixels})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Exception as exc:  # noqa: BLE001 - every decoder failure means the same thing to the client
        raise UnsupportedImageError(f"the image data is damaged or incomplete: {type(exc).__name__}: {exc}") from None
    text = getattr(image, "text", None) or {}
    embedded = EmbeddedImageData(**{field: _text(text.get(key)) for field, key in _CHUNKS.items()})
    image = ImageOps.exif_transpose(image)
    if image.mode not in _PNG_MODES:
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    return image, embedded


def _text(value: object) -> str | None:
    return str(value) if value is not None else None
