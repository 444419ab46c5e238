"""Images: the record model, the record store and file-storage protocols, and the image events.

An image lives in two places: a *record* (who made it, its category, flags) in the storage
backend's :class:`ImageRecordStore` (``StorageBackend.images``), and its *files* (a PNG with the
generation metadata, graph and workflow embedded as text chunks, and a WebP thumbnail) in an
:class:`ImageFileStorage` registered by name through the ``register_file_storage_backends`` hook.
The host's images service keeps the two in step; plugins never write either directly.

Category and origin are checked against :class:`ImageCategory` and :class:`ImageOrigin` in code
and stored as plain strings, so a backend needs no enum support.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypedDict, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from invoke_sdk.event_base import BaseEvent
from invoke_sdk.storage_base import StorageError, StorageOptions

__all__ = [
    "IMAGE_EVENTS",
    "RUN_MANIFEST_KEY",
    "EmbeddedImageData",
    "FileStorageBackendFactory",
    "ImageAddedEvent",
    "ImageCategory",
    "ImageDeletedEvent",
    "ImageFileStorage",
    "ImageListFilters",
    "ImageNotFoundError",
    "ImageOrigin",
    "ImageRecord",
    "ImageRecordChanges",
    "ImageRecordPage",
    "ImageRecordStore",
    "ImageUpdatedEvent",
    "ImageVersionedRecordStore",
    "InvalidImageCursorError",
    "InvalidImageNameError",
    "NewImageRecord",
    "OrderDir",
    "StartableFileStorage",
]


RUN_MANIFEST_KEY = "invoke_host_run_manifest"
"""The key of an image's metadata under which the host records what made it: the packs (distribution, version) of
the graph's nodes and the hashes of the models it names. The host writes it on every image a node saves; a node's
own metadata under this key is replaced."""


class ImageOrigin(StrEnum):
    """Where an image came from."""

    internal = "internal"
    """Made by a node of this host."""
    external = "external"
    """Uploaded by a client."""


class ImageCategory(StrEnum):
    """What an image is for; clients filter their galleries by it."""

    general = "general"
    """An ordinary generated image."""
    mask = "mask"
    """A mask (white = keep, black = change, or as a node defines it)."""
    control = "control"
    """A control image (edges, depth, pose ...)."""
    user = "user"
    """An image a user uploaded to work from."""
    other = "other"
    """Anything else."""


OrderDir = Literal["ASC", "DESC"]


class ImageListFilters(TypedDict, total=False):
    """The keyword arguments of :meth:`ImageRecordStore.get_many`, for code that passes them through."""

    offset: int
    limit: int
    image_origin: ImageOrigin | None
    categories: Sequence[ImageCategory] | None
    exclude_categories: Sequence[ImageCategory] | None
    is_intermediate: bool | None
    starred_first: bool
    order_dir: OrderDir
    search_term: str | None
    cursor: str | None
"""Sort direction of an image listing, by creation time."""


class ImageNotFoundError(StorageError, LookupError):
    """No image (record or file) has this name; the API answers 404."""

    def __init__(self, image_name: str, detail: str | None = None) -> None:
        super().__init__(detail or f"there is no image named {image_name!r}")
        self.image_name = image_name


class InvalidImageNameError(ImageNotFoundError):
    """A name that can never be an image's (a path, ``..``, separators ...); treated as not found."""

    def __init__(self, image_name: str, reason: str) -> None:
        super().__init__(image_name, f"{image_name!r} is not an image name: {reason}")


class InvalidImageCursorError(ValueError):
    """A listing ``cursor`` the store did not give out, or one from a listing in another order; the API answers 400."""


class NewImageRecord(BaseModel):
    """What the images service asks a record store to keep for a newly saved image."""

    model_config = ConfigDict(extra="forbid")

    image_name: str
    image_origin: ImageOrigin
    image_category: ImageCategory
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    session_id: str | None = None
    node_id: str | None = None
    is_intermediate: bool = False
    starred: bool = False
    has_workflow: bool = False
    metadata: str | None = Field(default=None, description="The generation metadata as JSON text (searchable)")


class ImageRecord(BaseModel):
    """A stored image's record."""

    image_name: str = Field(description="The image's unique name in the image store")
    image_origin: ImageOrigin
    image_category: ImageCategory
    width: int
    height: int
    session_id: str | None = Field(default=None, description="The session whose node made the image, if any")
    node_id: str | None = Field(default=None, description="The node that made the image, if any")
    is_intermediate: bool = Field(description="Whether the image is an intermediate step, hidden from galleries")
    starred: bool = False
    has_workflow: bool = Field(default=False, description="Whether a workflow is embedded in the image file")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class ImageRecordChanges(BaseModel):
    """The fields of a record a client may change; anything else is refused."""

    model_config = ConfigDict(extra="forbid")

    image_category: ImageCategory | None = None
    # Strict: a change reads exactly what the document says, so 0 or "yes" is refused, not taken for a flag.
    is_intermediate: StrictBool | None = None
    starred: StrictBool | None = None


class ImageRecordPage(BaseModel):
    """One page of a record listing."""

    items: list[ImageRecord]
    offset: int | None = Field(description="Where the page starts; None when it was asked for by cursor")
    limit: int
    total: int = Field(description="How many records match the filters, over all pages")
    next_cursor: str | None = Field(
        default=None,
        description="Pass as ``cursor`` (with the same order) for the page after this one; None on the last page",
    )


@runtime_checkable
class ImageRecordStore(Protocol):
    """Image records. Every method is a coroutine and must not block the event loop."""

    async def save(self, record: NewImageRecord) -> ImageRecord:
        """Store a new record (``created_at``/``updated_at`` are set by the store); a taken name raises."""
        ...

    async def get(self, image_name: str) -> ImageRecord | None:
        """One record, or None."""
        ...

    async def get_many(
        self,
        *,
        offset: int = 0,
        limit: int = 10,
        image_origin: ImageOrigin | None = None,
        categories: Sequence[ImageCategory] | None = None,
        exclude_categories: Sequence[ImageCategory] | None = None,
        is_intermediate: bool | None = None,
        starred_first: bool = True,
        order_dir: OrderDir = "DESC",
        search_term: str | None = None,
        cursor: str | None = None,
    ) -> ImageRecordPage:
        """A page of records, newest first unless ``order_dir="ASC"``; starred ones first if asked.

        ``search_term`` matches the name or the generation metadata, case-insensitively. A page starts at
        ``offset``, or right after the record a ``cursor`` (a page's ``next_cursor``) marks: with a cursor a
        deep page costs what the first does, and records added meanwhile do not shift the pages. Giving both
        raises ``ValueError``; a cursor the store cannot read raises :class:`InvalidImageCursorError`.
        """
        ...

    async def update(self, image_name: str, changes: ImageRecordChanges) -> ImageRecord:
        """Apply the changes that are set and return the record; unknown name: :class:`ImageNotFoundError`."""
        ...

    async def delete(self, image_name: str) -> bool:
        """Delete one record; whether it existed."""
        ...

    async def delete_many(self, image_names: Sequence[str]) -> list[str]:
        """Delete these records; return the names that existed and were deleted."""
        ...

    async def delete_intermediates(self) -> list[str]:
        """Delete every intermediate record; return their names."""
        ...


@runtime_checkable
class ImageVersionedRecordStore(Protocol):
    """An :class:`ImageRecordStore` that can say cheaply whether any record changed: the host then serves
    repeated listing pages and records from a cache of their encoded responses.

    Optional: a store without :meth:`records_version` works as before, every request answered from the store.
    """

    async def records_version(self) -> int | None:
        """A number that changes whenever any image record is added, changed or deleted, by any connection or
        process writing the same database, or None when it cannot be told right now (nothing is then cached).

        The host reads it *before* it reads a page, and serves a page it cached under a version only while the
        version read for a later request is the same. So the number must move in the same transaction as the
        change (a trigger-kept counter does; a sequence, which moves before the commit, does not), and a read
        must see every change committed before it began. Called on every listing request: keep it to one tiny
        read, or less.
        """
        ...


@dataclass(frozen=True)
class EmbeddedImageData:
    """The text embedded in an image file, each exactly as it was given when saved (None when absent)."""

    metadata: str | None = None
    """Generation metadata, JSON text."""
    graph: str | None = None
    """The graph that made the image, JSON text."""
    workflow: str | None = None
    """The workflow (the client's editable form of the graph), JSON text."""


@runtime_checkable
class ImageFileStorage(Protocol):
    """Image files: the full image as PNG with embedded text, and a WebP thumbnail.

    Names are the images service's (uuid-based, ending ``.png``). Every method refuses a name
    that could reach outside the store (separators, ``..``, absolute paths ...) with
    :class:`InvalidImageNameError`, and a missing file with :class:`ImageNotFoundError`. Methods
    are coroutines: file I/O and encoding run off the event loop.
    """

    async def save(self, image_name: str, image: Any, embedded: EmbeddedImageData) -> None:
        """Write the PIL ``image`` as PNG with ``embedded`` as text chunks, and its thumbnail.

        All or nothing: if either file cannot be written, neither is left behind.
        """
        ...

    async def read(self, image_name: str, *, thumbnail: bool = False) -> bytes:
        """The bytes of the PNG (or of the WebP thumbnail)."""
        ...

    async def get_pil(self, image_name: str) -> Any:
        """The image, decoded (a loaded PIL image)."""
        ...

    async def embedded(self, image_name: str) -> EmbeddedImageData:
        """The text embedded in the PNG, exactly as saved; nothing is parsed."""
        ...

    async def delete(self, image_name: str) -> None:
        """Remove the PNG and its thumbnail; missing files are not an error."""
        ...

    def path(self, image_name: str, *, thumbnail: bool = False) -> Path:
        """Where the file is, resolved and checked to lie inside the store (backends without local files raise
        ``NotImplementedError``)."""
        ...


@runtime_checkable
class StartableFileStorage(Protocol):
    """A file-storage backend with work to do once before the first save (such as removing the temporary files
    of writes a killed process left): the images service awaits :meth:`start` when it starts."""

    async def start(self) -> None:
        """Do the start-up work; off the event loop for file I/O."""
        ...


@dataclass(frozen=True)
class FileStorageBackendFactory:
    """An image file-storage backend offered under a name, registered through ``register_file_storage_backends``."""

    name: str
    """The name the host is configured with (``file_storage_backend``), e.g. ``local``."""
    create: Callable[[StorageOptions], ImageFileStorage]
    """Builds the backend for a data root; do no I/O here."""
    description: str = ""


class _ImageEventBase(BaseEvent):
    pass


class ImageAddedEvent(_ImageEventBase):
    """An image was saved (by a node or an upload)."""

    event_name: ClassVar[str] = "image_added"

    image: ImageRecord

    @classmethod
    def build(cls, record: ImageRecord) -> ImageAddedEvent:
        """The event for the newly stored ``record``."""
        return cls(image=record)


class ImageUpdatedEvent(_ImageEventBase):
    """An image's record changed (category, intermediate flag, star)."""

    event_name: ClassVar[str] = "image_updated"

    image: ImageRecord

    @classmethod
    def build(cls, record: ImageRecord) -> ImageUpdatedEvent:
        """The event for ``record`` as it is now."""
        return cls(image=record)


class ImageDeletedEvent(_ImageEventBase):
    """Images were deleted, records and files."""

    event_name: ClassVar[str] = "image_deleted"

    image_names: list[str]

    @classmethod
    def build(cls, image_names: Sequence[str]) -> ImageDeletedEvent:
        """The event for deleting ``image_names``."""
        return cls(image_names=list(image_names))


IMAGE_EVENTS: tuple[type[BaseEvent], ...] = (ImageAddedEvent, ImageDeletedEvent, ImageUpdatedEvent)
"""The image events the host emits; they belong with the host's own events (``CORE_EVENTS``)."""
