"""InvokeAI's ``BoardDTO``. Boards are not kept on Invoke Host; the class exists so packs import."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["BoardDTO"]


class BoardDTO(BaseModel):
    """A board as InvokeAI describes one."""

    board_id: str
    board_name: str
    created_at: str
    updated_at: str
    deleted_at: str | None = None
    cover_image_name: str | None = None
    archived: bool = False
    image_count: int = 0
    asset_count: int = 0
