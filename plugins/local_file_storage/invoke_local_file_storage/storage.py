"""PNG files with embedded text chunks and WebP thumbnails in a folder of the data root."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke_sdk.images import EmbeddedImageData, ImageNotFoundError, InvalidImageNameError
from invoke_sdk.storage import StorageOptions

from invoke_local_file_storage.names import check_image_name

if TYPE_CHECKING:
    from PIL import Image  # the type hints only: Pillow is imported where images are decoded

__all__ = ["CHUNK_KEYS", "LEFTOVER_AGE_S", "THUMBNAIL_SIZE", "LocalImageFileStorage"]

logger = logging.getLogger("invoke_local_file_storage")

THUMBNAIL_SIZE = 256
"""The longest side of a thumbnail, in pixels."""

CHUNK_KEYS = {"metadata": "invokeai_metadata", "graph": "invokeai_graph", "workflow": "invokeai_workflow"}
"""PNG text-chunk keys of the embedded data; InvokeAI's own keys, so either program reads the other's images."""

# The temporary names _save writes (".<32 hex>.png.tmp" beside the images, ".<32 hex>.webp.tmp" beside the
# thumbnails): only these are removed at start, only in their own folder.
_PNG_TMP = re.compile(r"^\.[0-9a-f]{32}\.png\.tmp$")
_WEBP_TMP = re.compile(r"^\.[0-9a-f]{32}\.webp\.tmp$")

LEFTOVER_AGE_S = 600.0
"""How long a temporary file must have been left untouched before start counts it as a dead write's: far longer
than any save takes, so a save in flight in another process on the same data root is never removed."""

# O_NOFOLLOW makes the final open fail on a symlink swapped in after the containment check.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


class LocalImageFileStorage:
    """Implements :class:`invoke_sdk.images.ImageFileStorage` under ``<root>/images``.

    Full images are ``<root>/images/<name>`` (PNG); thumbnails ``<root>/images/thumbnails/<stem>.webp``.
    Every path is resolved and must lie inside the (resolved) images folder, so neither a crafted
    name nor a symlink planted in the folder reaches a file outside it.
    """

    def __init__(self, root: Path, *, compress_level: int = 1) -> None:
        self.images_dir = Path(root) / "images"
        self.thumbnails_dir = self.images_dir / "thumbnails"
        # PNG level 1 is several times faster than the default 6 for a few percent more bytes.
        self.compress_level = compress_level

    @classmethod
    def from_options(cls, options: StorageOptions) -> LocalImageFileStorage:
        return cls(options.root, compress_level=int(options.settings.get("png_compress_level", 1)))

    def path(self, image_name: str, *, thumbnail: bool = False) -> Path:
        check_image_name(image_name)
        base = self.images_dir.resolve()
        # The thumbnail folder is judged by where it should be, not where it resolves to: a
        # 'thumbnails' symlink pointing elsewhere does not move the allowed area with it.
        allowed = base / "thumbnails" if thumbnail else base
        candidate = allowed / (f"{Path(image_name).stem}.webp" if thumbnail else image_name)
        resolved = candidate.resolve()
        if not resolved.is_relative_to(allowed) or resolved.parent != allowed:
            raise InvalidImageNameError(image_name, "its file resolves to a place outside the image store")
        return resolved

    @contextmanager
    def _open(self, image_name: str, *, thumbnail: bool) -> Iterator[io.BufferedReader]:
        path = self.path(image_name, thumbnail=thumbnail)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            what = "thumbnail" if thumbnail else "file"
            raise ImageNotFoundError(image_name, f"the {what} of image {image_name!r} is missing") from None
        except OSError as exc:
            raise ImageNotFoundError(image_name, f"the file of image {image_name!r} cannot be opened: {exc}") from exc
        with os.fdopen(fd, "rb") as f:
            yield f

    # --- the protocol: every method does its file work in a worker thread ---

    async def start(self) -> None:
        """Remove the temporary files of writes that a killed or crashed process never finished."""
        await asyncio.to_thread(self.remove_leftovers)

    async def save(self, image_name: str, image: Any, embedded: EmbeddedImageData) -> None:
        await asyncio.to_thread(self._save, image_name, image, embedded)

    async def read(self, image_name: str, *, thumbnail: bool = False) -> bytes:
        return await asyncio.to_thread(self._read, image_name, thumbnail)

    async def get_pil(self, image_name: str) -> Any:
        return await asyncio.to_thread(self._get_pil, image_name)

    async def embedded(self, image_name: str) -> EmbeddedImageData:
        return await asyncio.to_thread(self._embedded, image_name)

    async def delete(self, image_name: str) -> None:
        await asyncio.to_thread(self._delete, image_name)

    # --- blocking work ---

    def _save(self, image_name: str, image: Image.Image, embedded: EmbeddedImageData) -> None:
        from PIL.PngImagePlugin import PngInfo
        png_path = self.path(image_name)
        thumb_path = self.path(image_name, thumbnail=True)
        self.thumbnails_dir.mkdir(parents=True, exist_ok=True)
        info = PngInfo()
        for field, key in CHUNK_KEYS.items():
            value = getattr(embedded, field)
            if value is not None:
                # Latin-1 text becomes tEXt, anything else iTXt: stored exactly as given either way.
                info.add_text(key, value)
        # Temporary names start with '.', which no image name may, so they are never served.
        token = uuid.uuid4().hex
        tmp_png = png_path.with_name(f".{token}.png.tmp")
        tmp_thumb = thumb_path.with_name(f".{token}.webp.tmp")
        placed: list[Path] = []
        try:
            image.save(tmp_png, format="PNG", pnginfo=info, compress_level=self.compress_level)
            _thumbnail(image).save(tmp_thumb, format="WEBP", quality=80, method=4)
            os.replace(tmp_png, png_path)
            placed.append(png_path)
            os.replace(tmp_thumb, thumb_path)
            placed.append(thumb_path)
        except BaseException:
            for path in (tmp_png, tmp_thumb, *placed):
                path.unlink(missing_ok=True)
            raise

    def remove_leftovers(self) -> list[Path]:
        """Remove ``.<hex>.png.tmp`` / ``.<hex>.webp.tmp`` files of interrupted saves; return what was removed.

        A save renames its temporary files into place as its last step, so one still there long after it was
        written belongs to a process that died mid-write; a younger one may be a write in flight in another
        process on the same data root (a server beside ``invoke-host run``), and stays.
        """
        removed: list[Path] = []
        written_before = time.time() - LEFTOVER_AGE_S
        for folder, pattern in ((self.images_dir, _PNG_TMP), (self.thumbnails_dir, _WEBP_TMP)):
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                if (pattern.match(entry.name) and entry.is_file(follow_symlinks=False)
                        and entry.stat(follow_symlinks=False).st_mtime < written_before):
                    Path(entry.path).unlink(missing_ok=True)
                    removed.append(Path(entry.path))
        if removed:
            logger.info(
                "Removed %d unfinished image file(s) that writes interrupted by a crash or kill left behind: %s",
                len(removed), ", ".join(str(p) for p in removed[:5]) + (" ..." if len(removed) > 5 else ""),
            )
        return removed

    def _read(self, image_name: str, thumbnail: bool) -> bytes:
        with self._open(image_name, thumbnail=thumbnail) as f:
            return f.read()

    def _get_pil(self, image_name: str) -> Image.Image:
        from PIL import Image  # here, not at import: Pillow kept off start-up
        with self._open(image_name, thumbnail=False) as f:
            image = Image.open(f)
            image.load()
        return image

    def _embedded(self, image_name: str) -> EmbeddedImageData:
        from PIL import Image  # here, not at import: Pillow kept off start-up
        with self._open(image_name, thumbnail=False) as f, Image.open(f) as image:
            # Our chunks sit before the pixel data, so the header read by open() holds them: no decode.
            info = image.info
            values = {field: info.get(key) for field, key in CHUNK_KEYS.items()}
        return EmbeddedImageData(**{k: (str(v) if v is not None else None) for k, v in values.items()})

    def _delete(self, image_name: str) -> None:
        for thumbnail in (False, True):
            self.path(image_name, thumbnail=thumbnail).unlink(missing_ok=True)


def _thumbnail(image: Image.Image) -> Image.Image:
    from PIL import Image  # here, not at import: Pillow kept off start-up
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    thumb = image.convert("RGBA" if has_alpha else "RGB")
    thumb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    return thumb
