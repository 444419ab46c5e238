"""Image files on local disk (file-storage backend name ``local``): ``<root>/images/*.png`` and WebP thumbnails."""

from invoke_local_file_storage.names import check_image_name
from invoke_local_file_storage.storage import LocalImageFileStorage

__all__ = ["LocalImageFileStorage", "check_image_name"]
