"""InvokeAI's ``ImageDTO``: an image record as nodes and clients see it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from invokeai.app.services.image_records.image_records_common import ImageCategory, ResourceOrigin

__all__ = ["ImageDTO"]

_API_IMAGES = "api/v1/images/i"


class ImageDTO(BaseModel):
    """A stored image: name, size, category, where it came from, and the URLs of its file and thumbnail.

    ``board_id`` is always None: this host keeps no boards (see docs/invokeai-packs.md).
    """

    image_name: str
    image_url: str
    thumbnail_url: str
    image_origin: ResourceOrigin
    image_category: ImageCategory
    width: int
    height: int
    created_at: datetime | str
    updated_at: datetime | str
    deleted_at: datetime | str | None = None
    is_intermediate: bool
    session_id: str | None = None
    node_id: str | None = None
    starred: bool = False
    has_workflow: bool = False
    board_id: str | None = Field(default=None, description="Always None here: boards are not kept")

    @classmethod
    def from_record(cls, record: Any) -> ImageDTO:
        """The DTO of an invoke_sdk ``ImageRecord`` (anything with its fields)."""
        name = record.image_name
        return cls(
            image_name=name,
            image_url=f"{_API_IMAGES}/{name}/full",
            thumbnail_url=f"{_API_IMAGES}/{name}/thumbnail",
            image_origin=ResourceOrigin(getattr(record.image_origin, "value", record.image_origin)),
            image_category=ImageCategory(getattr(record.image_category, "value", record.image_category)),
            width=record.width,
            height=record.height,
            created_at=record.created_at,
            updated_at=record.updated_at,
            deleted_at=getattr(record, "deleted_at", None),
            is_intermediate=record.is_intermediate,
            session_id=getattr(record, "session_id", None),
            node_id=getattr(record, "node_id", None),
            starred=getattr(record, "starred", False),
            has_workflow=getattr(record, "has_workflow", False),
        )
