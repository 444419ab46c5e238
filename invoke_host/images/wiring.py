"""Building the images service for a host from the configured backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke_sdk.images import ImageFileStorage, ImageRecordStore
from invoke_sdk.storage import StorageOptions

from invoke_host.images.service import EmitEvent, ImagesService

if TYPE_CHECKING:
    from invoke_host.host import Host

__all__ = ["add_images_service", "file_storage_for", "find_images_service"]


def file_storage_for(host: Host) -> ImageFileStorage:
    """The file-storage backend named by ``config.file_storage_backend``, created for the data root."""
    name = host.config.file_storage_backend
    factories = host.registry.kind("file_storage_backends")
    if name not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise LookupError(
            f"no image file-storage backend is named {name!r} (registered: {known}); install the plugin that "
            "provides it or set file_storage_backend to one of these"
        )
    return factories[name].value.create(StorageOptions(root=host.config.root))  # type: ignore[no-any-return]


def add_images_service(host: Host, records: ImageRecordStore, *, emit: EmitEvent | None = None) -> ImagesService:
    """Create the images service on ``records`` (the storage backend's ``images``) and add it to the host.

    The storage backend must be in ``host.services`` before this service so it starts first.
    """
    service = ImagesService(records, file_storage_for(host), emit=emit, max_image_pixels=host.config.max_image_pixels)
    host.services.append(service)
    return service


def find_images_service(host: Host) -> ImagesService | None:
    """The host's images service, if it has one."""
    return next((s for s in host.services if isinstance(s, ImagesService)), None)
