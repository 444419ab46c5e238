"""The images service: records and files kept in step, uploads, and the node-side images interface."""

from invoke_host.images.naming import ImageNamer
from invoke_host.images.node_images import NodeImages, NodeImagesFactory
from invoke_host.images.service import ImagesService
from invoke_host.images.uploads import ImageTooLargeError, UnsupportedImageError, decode_upload

__all__ = [
    "ImageNamer",
    "ImageTooLargeError",
    "ImagesService",
    "NodeImages",
    "NodeImagesFactory",
    "UnsupportedImageError",
    "decode_upload",
]
