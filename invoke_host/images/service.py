"""The images service: one record and its files, saved, read and deleted together."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Unpack

from invoke_sdk.events import BaseEvent
from invoke_sdk.image_json_pages import ImageJsonListingStore, ImageRecordJsonPage, NameField
from invoke_sdk.images import (
    EmbeddedImageData,
    ImageAddedEvent,
    ImageCategory,
    ImageDeletedEvent,
    ImageFileStorage,
    ImageListFilters,
    ImageNotFoundError,
    ImageOrigin,
    ImageRecord,
    ImageRecordChanges,
    ImageRecordPage,
    ImageRecordStore,
    ImageUpdatedEvent,
    ImageVersionedRecordStore,
    NewImageRecord,
    StartableFileStorage,
)
from pydantic import BaseModel

from invoke_host.images.naming import ImageNamer
from invoke_host.images.page_cache import ImagePageCache
from invoke_host.images.uploads import decode_upload

__all__ = ["EmitEvent", "ImagesService", "JsonText"]

logger = logging.getLogger("invoke_host.images")

EmitEvent = Callable[[BaseEvent], None]
"""Where the service sends its events (the event bus's ``emit``, once there is one)."""

JsonText = str | Mapping[str, Any] | Sequence[Any] | BaseModel
"""Metadata, graph or workflow: JSON text (kept exactly as given) or an object (dumped once)."""


def _json_text(value: JsonText | None, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        # Checked to be JSON so that /graph and friends always answer JSON, but never re-written:
        # an old graph keeps its old shape.
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(f"the {what} must be JSON text: {exc}") from None
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value)


class ImagesService:
    """Saves images as a record (in the storage backend) plus files (in the file-storage backend).

    A save writes the files first and the record last; if the record cannot be written the files
    are removed, so a failure leaves neither. A delete removes the record first, so no record ever
    points at files that are half gone.
    """

    def __init__(
        self,
        records: ImageRecordStore,
        files: ImageFileStorage,
        *,
        namer: ImageNamer | None = None,
        emit: EmitEvent | None = None,
        max_image_pixels: int = 6144 * 6144,
        page_cache_bytes: int = 0,
    ) -> None:
        self.records = records
        self.files = files
        self.namer = namer or ImageNamer()
        self.emit = emit
        self.max_image_pixels = max_image_pixels
        # Checked once: isinstance against a runtime protocol costs microseconds, and the version is read per request.
        self._versioned = records if isinstance(records, ImageVersionedRecordStore) else None
        self._json_listing = records if isinstance(records, ImageJsonListingStore) else None
        # Only a store that can tell when its records changed can have its pages cached (page_cache says why).
        self.page_cache: ImagePageCache | None = (
            ImagePageCache(page_cache_bytes) if page_cache_bytes > 0 and self._versioned is not None else None
        )

    async def start(self) -> None:
        if isinstance(self.files, StartableFileStorage):
            await self.files.start()

    async def stop(self) -> None:
        """Nothing to let go of: the records and files belong to their backends, which stop themselves."""

    def _emit(self, event: BaseEvent) -> None:
        if self.emit is None:
            return
        try:
            self.emit(event)
        except Exception:
            logger.exception("Delivering %s failed", event.event_name)

    async def save(
        self,
        image: Any,
        *,
        image_origin: ImageOrigin | str = ImageOrigin.internal,
        image_category: ImageCategory | str = ImageCategory.general,
        session_id: str | None = None,
        node_id: str | None = None,
        is_intermediate: bool = False,
        starred: bool = False,
        metadata: JsonText | None = None,
        graph: JsonText | None = None,
        workflow: JsonText | None = None,
        image_name: str | None = None,
    ) -> ImageRecord:
        """Store a PIL image with its embedded data; return its record.

        ``image_name`` (from ``namer.node_image_name``) makes the save idempotent: when a record of that name
        exists already (a node that ran again on a retry) its files are replaced and that record is returned;
        no second record is added and no second ``image_added`` event is sent.
        """
        origin = ImageOrigin(image_origin)
        category = ImageCategory(image_category)
        embedded = EmbeddedImageData(
            metadata=_json_text(metadata, "metadata"),
            graph=_json_text(graph, "graph"),
            workflow=_json_text(workflow, "workflow"),
        )
        width, height = image.size
        name = image_name or self.namer.new_name()
        if image_name is not None:
            existing = await self.records.get(image_name)
            if existing is not None:
                await self.files.save(name, image, embedded)
                logger.info("Saved image %s again (its node ran again on a retry); kept its record", name)
                return existing
        await self.files.save(name, image, embedded)
        try:
            record = await self.records.save(
                NewImageRecord(
                    image_name=name,
                    image_origin=origin,
                    image_category=category,
                    width=width,
                    height=height,
                    session_id=session_id,
                    node_id=node_id,
                    is_intermediate=is_intermediate,
                    starred=starred,
                    has_workflow=embedded.workflow is not None,
                    metadata=embedded.metadata,
                )
            )
        except BaseException:
            # Shielded: a cancelled caller must not leave the files behind.
            await asyncio.shield(self.files.delete(name))
            raise
        logger.info("Saved image %s (%dx%d, %s%s)", name, width, height, category.value,
                    ", intermediate" if is_intermediate else "")
        self._emit(ImageAddedEvent.build(record))
        return record

    async def save_upload(
        self,
        data: bytes,
        *,
        image_category: ImageCategory | str = ImageCategory.user,
        is_intermediate: bool = False,
    ) -> ImageRecord:
        """Decode uploaded bytes (refusing bombs and non-images) and save them as an external image.

        Raises :class:`~invoke_host.images.uploads.UnsupportedImageError` or
        :class:`~invoke_host.images.uploads.ImageTooLargeError`.
        """
        image, embedded = await asyncio.to_thread(decode_upload, data, max_pixels=self.max_image_pixels)
        return await self.save(
            image,
            image_origin=ImageOrigin.external,
            image_category=image_category,
            is_intermediate=is_intermediate,
            metadata=_valid_or_none(embedded.metadata),
            graph=_valid_or_none(embedded.graph),
            workflow=_valid_or_none(embedded.workflow),
        )

    async def get(self, image_name: str) -> ImageRecord:
        """The record; unknown name: :class:`ImageNotFoundError`."""
        record = await self.records.get(image_name)
        if record is None:
            raise ImageNotFoundError(image_name)
        return record

    async def records_version(self) -> int | None:
        """The record store's records version (see :class:`~invoke_sdk.images.ImageVersionedRecordStore`), or None
        when it keeps none or cannot tell now."""
        if self._versioned is None:
            return None
        return await self._versioned.records_version()

    async def get_many(self, **filters: Unpack[ImageListFilters]) -> ImageRecordPage:
        """A page of records (see :meth:`invoke_sdk.images.ImageRecordStore.get_many` for the filters)."""
        return await self.records.get_many(**filters)

    async def get_many_json(
        self, name_fields: Sequence[NameField], **filters: Unpack[ImageListFilters]
    ) -> ImageRecordJsonPage | None:
        """The page of :meth:`get_many` with its records encoded by the store and ``name_fields`` added
        (:class:`~invoke_sdk.image_json_pages.ImageJsonListingStore`); None when the store cannot do that for this
        page or at all: then :meth:`get_many` lists it."""
        if self._json_listing is None:
            return None
        return await self._json_listing.get_many_json(name_fields=name_fields, **filters)

    async def read_file(self, image_name: str, *, thumbnail: bool = False) -> bytes:
        """The PNG (or WebP thumbnail) of a recorded image; a missing record or file: :class:`ImageNotFoundError`."""
        await self.get(image_name)
        return await self.files.read(image_name, thumbnail=thumbnail)

    async def get_pil(self, image_name: str) -> Any:
        """A recorded image, decoded."""
        await self.get(image_name)
        return await self.files.get_pil(image_name)

    async def embedded(self, image_name: str) -> EmbeddedImageData:
        """The metadata, graph and workflow text embedded in a recorded image, as saved."""
        await self.get(image_name)
        return await self.files.embedded(image_name)

    async def update(self, image_name: str, changes: ImageRecordChanges) -> ImageRecord:
        """Change category, intermediate flag or star; return the record as it is now."""
        record = await self.records.update(image_name, changes)
        self._emit(ImageUpdatedEvent.build(record))
        return record

    async def delete(self, image_name: str) -> None:
        """Delete one image, record and files; unknown name: :class:`ImageNotFoundError`."""
        if not await self.records.delete(image_name):
            raise ImageNotFoundError(image_name)
        await self._delete_files([image_name])

    async def delete_many(self, image_names: Sequence[str]) -> list[str]:
        """Delete these images; return the names that existed (unknown names are skipped)."""
        deleted = await self.records.delete_many(image_names)
        await self._delete_files(deleted)
        return deleted

    async def delete_intermediates(self) -> list[str]:
        """Delete every intermediate image; return their names."""
        deleted = await self.records.delete_intermediates()
        await self._delete_files(deleted)
        return deleted

    async def _delete_files(self, names: Sequence[str]) -> None:
        for name in names:
            try:
                await self.files.delete(name)
            except Exception:
                # The record is gone, so the image is gone for every client; a leftover file is only disk.
                logger.exception("Deleting the files of image %s failed; its record is already deleted", name)
        if names:
            self._emit(ImageDeletedEvent.build(names))


def _valid_or_none(text: str | None) -> str | None:
    """An uploaded chunk that is not JSON is dropped rather than refusing the whole image."""
    if text is None:
        return None
    try:
        json.loads(text)
    except ValueError:
        return None
    return text
