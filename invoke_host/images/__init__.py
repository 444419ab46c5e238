"""The images service: records and files kept in step, uploads, and the node-side images interface."""

from invoke_host.images.naming import ImageNamer
from invoke_host.images.node_images import NodeImages
from invoke_host.images.service import ImagesService
from invoke_host.images.uploads import ImageTooLargeError, UnsupportedImageError, decode_upload
from invoke_host.images.wiring import add_images_service, find_images_service

__all__ = [
    "ImageNamer",
    "ImageTooLargeError",
    "ImagesService",
    "NodeImages",
    "UnsupportedImageError",
    "add_images_service",
    "decode_upload",
    "find_images_service",
]
