"""The workflow library: saved graphs (with their workflow JSON, name, description and tags), run by id.

Two sources fill the library. Users save, update and delete workflows over the API; a storage backend keeps them
in a :class:`WorkflowStore`, offered as the backend's ``workflows`` attribute (a backend without one serves no
library: the API says so). Packs ship read-only workflows through the ``register_workflows`` hook, each a
:class:`PackWorkflow`; they are listed beside the saved ones and can be run, not changed.

The store keeps the graph and the workflow as JSON text, stored and returned exactly as given: it never looks
inside them, only at the name, description and tags it lists and filters by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

__all__ = [
    "PackWorkflow",
    "WorkflowChanges",
    "WorkflowOrder",
    "WorkflowPage",
    "WorkflowQuery",
    "WorkflowRecord",
    "WorkflowStore",
    "WorkflowSummary",
]

_WORKFLOW_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")

WorkflowOrder = Literal["name", "created_at", "updated_at"]
"""What a page of the library is sorted by."""


class WorkflowSummary(BaseModel):
    """A stored workflow without its graph and workflow JSON: what a page of the library lists."""

    workflow_id: str
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class WorkflowRecord(WorkflowSummary):
    """A stored workflow, whole."""

    graph_json: str = Field(description="The graph as JSON text, as it was saved")
    workflow_json: str | None = Field(default=None, description="The workflow (editor) JSON text, or None")


class WorkflowChanges(BaseModel):
    """What an update changes: only the fields given (``model_fields_set``); the others stay as stored."""

    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    graph_json: str | None = None
    workflow_json: str | None = None


class WorkflowQuery(BaseModel):
    """Which stored workflows a page lists, and in what order."""

    query: str | None = Field(default=None, description="Text the name or the description contains (any case)")
    tags: list[str] = Field(default_factory=list, description="Listed if it has any of these tags (exact match)")
    order_by: WorkflowOrder = "updated_at"
    direction: Literal["ASC", "DESC"] = "DESC"


class WorkflowPage(BaseModel):
    """One page of stored workflows and how many match in all."""

    items: list[WorkflowSummary]
    total: int


@runtime_checkable
class WorkflowStore(Protocol):
    """Saved workflows, shared by every node of a deployment (offered as ``StorageBackend.workflows``)."""

    async def create(
        self,
        workflow_id: str,
        *,
        name: str,
        description: str,
        tags: Sequence[str],
        graph_json: str,
        workflow_json: str | None,
    ) -> WorkflowRecord:
        """Store a new workflow under ``workflow_id`` (the host makes ids); ``StorageError`` if the id is taken."""
        ...

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        """One workflow, or None."""
        ...

    async def update(self, workflow_id: str, changes: WorkflowChanges) -> WorkflowRecord | None:
        """Change the fields set in ``changes`` (``updated_at`` too) and return the workflow; None if unknown."""
        ...

    async def delete(self, workflow_id: str) -> bool:
        """Delete one workflow; False if there was none."""
        ...

    async def list(self, query: WorkflowQuery, *, offset: int, limit: int) -> WorkflowPage:
        """A page of the workflows matching ``query`` in its order (ties by ``workflow_id``), and the total."""
        ...

    async def count(self) -> int:
        """How many workflows are stored."""
        ...


@dataclass(frozen=True)
class PackWorkflow:
    """A workflow a pack ships, offered read-only in the library (register it with ``register_workflows``).

    The library lists it as ``pack:<id>``; ``graph`` may carry node versions like any saved graph, so a pack that
    later migrates its nodes keeps its shipped workflows running.
    """

    id: str
    """Unique among the pack workflows of every pack (letters, digits, ``_``, ``-``, ``.``)."""
    name: str
    graph: Mapping[str, Any]
    """The graph: ``{"nodes": {...}, "edges": [...]}``."""
    description: str = ""
    tags: tuple[str, ...] = ()
    workflow: Mapping[str, Any] | None = None
    """The workflow (editor) JSON, if the pack has one."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _WORKFLOW_ID.match(self.id):
            raise ValueError(f"invalid pack workflow id {self.id!r}: use letters, digits, '_', '-' and '.'")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"pack workflow {self.id!r} needs a name")
        if not isinstance(self.graph, Mapping) or not isinstance(self.graph.get("nodes"), Mapping):
            raise ValueError(f"pack workflow {self.id!r} needs a graph with 'nodes'")
