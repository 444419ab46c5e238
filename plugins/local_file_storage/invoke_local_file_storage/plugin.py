"""Entry point: offers local-disk image files to the host under the name ``local``."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterFileStorageBackend
from invoke_sdk.images import FileStorageBackendFactory, ImageFileStorage
from invoke_sdk.storage import StorageOptions

__all__ = ["register_file_storage_backends"]


def _create(options: StorageOptions) -> ImageFileStorage:
    # Imported here so that loading the plugin does not import Pillow.
    from invoke_local_file_storage.storage import LocalImageFileStorage

    return LocalImageFileStorage.from_options(options)


@hookimpl
def register_file_storage_backends(register: RegisterFileStorageBackend) -> None:
    register(FileStorageBackendFactory(name="local", create=_create, description="PNG files under <root>/images"))
