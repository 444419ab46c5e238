"""InvokeAI's workflow shape (packs import it for annotations; workflows are stored by the host)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WorkflowWithoutID"]


class WorkflowWithoutID(BaseModel):
    """A workflow as InvokeAI's editor saves it, without its id; fields beyond these are kept."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(default="", description="The name of the workflow")
    author: str = Field(default="", description="The author of the workflow")
    description: str = Field(default="", description="The description of the workflow")
    version: str = Field(default="", description="The version of the workflow")
    nodes: list[dict[str, Any]] = Field(default_factory=list, description="The nodes of the workflow")
    edges: list[dict[str, Any]] = Field(default_factory=list, description="The edges of the workflow")
