"""Listing pages of image records encoded by the record store itself: the optional fast path of a listing.

A listing page that misses the host's page cache used to cost a millisecond and more of Python at 100,000 records:
rows into dicts, the records validated, the host's DTOs validated again from them, then dumped and encoded. A store
whose database can write text builds each record's JSON in the query instead, and the host sends those bytes on
as they are. The encoding must be byte for byte the one the host gives an :class:`~invoke_sdk.images.ImageRecord`
(pydantic's ``mode="json"`` dump, encoded compactly: no spaces, non-ASCII as UTF-8, the fields in the model's
order, timestamps in UTC as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` with no fraction when it is zero), then the
``name_fields`` the host asks for. Where a store cannot promise that for a page (a timestamp stored in another
form, a value the model would not take as it is), it answers None and the host takes the typed listing
(:meth:`~invoke_sdk.images.ImageRecordStore.get_many`) for that page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Unpack, runtime_checkable

from invoke_sdk.images import ImageListFilters

__all__ = ["ImageJsonListingStore", "ImageRecordJsonPage", "NameField"]


@dataclass(frozen=True)
class NameField:
    """A string field added to every record's object after the record's own: the image's name between ``prefix``
    and ``suffix`` (the host's file URLs, such as ``/api/v1/images/i/<name>/full``)."""

    key: str
    prefix: str
    suffix: str


@dataclass(frozen=True)
class ImageRecordJsonPage:
    """One page of a listing with its records already encoded; the rest as in
    :class:`~invoke_sdk.images.ImageRecordPage`."""

    items_json: str
    """The JSON array of the page's records (see the module's docstring for the exact encoding)."""
    offset: int | None
    limit: int
    total: int
    next_cursor: str | None

    @classmethod
    def of_records(
        cls, records_json: Sequence[str | None], *, offset: int | None, limit: int, total: int, next_cursor: str | None
    ) -> ImageRecordJsonPage | None:
        """The page of these encoded records; None when one of them could not be encoded (a store's query answers
        NULL for a row it cannot copy exactly), so that the host lists the page the typed way."""
        texts = [text for text in records_json if text is not None]
        if len(texts) < len(records_json):
            return None
        return cls(f"[{','.join(texts)}]", offset, limit, total, next_cursor)


@runtime_checkable
class ImageJsonListingStore(Protocol):
    """An :class:`~invoke_sdk.images.ImageRecordStore` that can hand out a listing page already encoded.

    Optional: the host lists through ``get_many`` from a store without it.
    """

    async def get_many_json(
        self, *, name_fields: Sequence[NameField] = (), **filters: Unpack[ImageListFilters]
    ) -> ImageRecordJsonPage | None:
        """The page ``get_many`` gives for the same filters (its keywords, with its defaults), its records encoded
        with ``name_fields`` added; None when this page cannot be encoded here exactly as the host would (the host
        then calls ``get_many``).
        Raises as ``get_many`` does (``ValueError``, :class:`~invoke_sdk.images.InvalidImageCursorError`)."""
        ...
