"""The library's request and response bodies: a workflow as clients send and read it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from invoke_host.queue.batch import BatchDatum

__all__ = [
    "WorkflowEnqueueBody", "WorkflowIn", "WorkflowListItem", "WorkflowListPage", "WorkflowUpdate", "WorkflowView",
]

WorkflowCategory = Literal["user", "pack"]
"""Where an entry comes from: saved over the API (``user``) or shipped by a pack (``pack``, read-only)."""


class WorkflowIn(BaseModel):
    """A workflow to save: the graph it runs, its workflow (editor) JSON, and how it is found."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    tags: list[str] = Field(default_factory=list, description="Words to find it by (each 1-100 characters)")
    graph: dict[str, Any] = Field(description="The graph: {'nodes': {node_id: node}, 'edges': [...]}")
    workflow: dict[str, Any] | None = Field(default=None, description="The workflow (editor) JSON, kept as given")


class WorkflowUpdate(BaseModel):
    """The fields of a saved workflow to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    tags: list[str] | None = None
    graph: dict[str, Any] | None = None
    workflow: dict[str, Any] | None = Field(default=None, description="null removes the workflow JSON")


class WorkflowListItem(BaseModel):
    """A library entry without its graph and workflow JSON."""

    workflow_id: str = Field(description="A saved workflow's id, or 'pack:<id>' for a pack's")
    name: str
    description: str
    tags: list[str]
    category: WorkflowCategory
    read_only: bool = Field(description="True for a pack's workflow: it can be run, not changed or deleted")
    pack: str | None = Field(default=None, description="The distribution (and version) that ships it, for a pack's")
    created_at: datetime | None = Field(default=None, description="None for a pack's workflow")
    updated_at: datetime | None = None


class WorkflowView(WorkflowListItem):
    """A library entry, whole."""

    graph: dict[str, Any] = Field(
        description="The graph as saved, each node with the version of its type it was saved for (a Graph; not "
        "validated until it runs, so its nodes may name types or fields this server lacks)"
    )
    workflow: dict[str, Any] | None = None


class WorkflowListPage(BaseModel):
    """One page of the library: saved workflows first (in the order asked for), then packs' (by name)."""

    page: int
    pages: int
    per_page: int
    total: int
    items: list[WorkflowListItem]


class WorkflowEnqueueBody(BaseModel):
    """How to run a workflow: values for its nodes' fields, or batch data, and the batch's options."""

    model_config = ConfigDict(extra="forbid")

    queue_id: str = Field(default="default", min_length=1, max_length=200)
    values: dict[str, Any] | None = Field(
        default=None, description="'<node id>.<field>' -> value, written into the graph before it is enqueued"
    )
    data: list[list[BatchDatum]] | None = Field(
        default=None, description="Batch data, as in enqueue_batch: zipped within a group, product across groups"
    )
    runs: int = Field(default=1, ge=1)
    prepend: bool = False
    origin: str | None = Field(default=None, max_length=200)
    destination: str | None = Field(default=None, max_length=200)
