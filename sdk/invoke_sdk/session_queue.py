"""The records a session-queue store keeps and returns: batches, queue items, counts and pages.

These are plain pydantic models shared by the host, every storage backend and the events, so a
backend written by a third party returns exactly what the host and the API expect. The two records
of session progress (:class:`SessionNodeResult`, :class:`SessionNodeError`) are a named tuple and a
frozen dataclass instead: a session writes one per node it runs, 100,000 and more for a large iterate,
and they carry their output as JSON text that nobody between the runner and the database looks into.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

__all__ = [
    "TERMINAL_STATUSES",
    "BatchRecord",
    "BatchStatus",
    "EnqueueResult",
    "NewQueueItem",
    "NodeFieldValue",
    "QueueCounts",
    "QueueItem",
    "QueueItemError",
    "QueueItemPage",
    "QueueItemStatus",
    "QueueItemSummary",
    "SessionNodeError",
    "SessionNodeResult",
]

QueueItemStatus = Literal["pending", "in_progress", "completed", "failed", "canceled"]
"""Where a queue item is in its life: it only ever moves forward, and the last three are final."""

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "canceled"})
"""Statuses an item never leaves."""


class NodeFieldValue(BaseModel):
    """One value a batch put into one field of one node of the item's graph."""

    node_path: str
    field_name: str
    value: Any


class NewQueueItem(BaseModel):
    """What the host hands a store to enqueue: the session (as JSON text) and the values that made it."""

    session_id: str
    session_json: str = Field(
        description="The item's session as enqueued (JSON text: id, batch_id, graph), stored as given and never "
        "rewritten; what the session produces is stored per node (SessionNodeResult, SessionNodeError)"
    )
    field_values: list[NodeFieldValue] | None = None
    model_key: str | None = Field(
        default=None,
        description="The key of the item's main model (the first main-model field of its graph), or None: what "
        "a worker's claim prefers when it holds that model already (model affinity)",
    )


class BatchRecord(BaseModel):
    """A batch as stored: where it came from and how many items it asked for."""

    batch_id: str
    queue_id: str
    runs: int = 1
    requested: int = Field(description="How many items the batch expanded to")
    origin: str | None = Field(default=None, description="A free tag the client chose, e.g. 'canvas'")
    destination: str | None = Field(default=None, description="A free tag for where results should go")
    created_at: datetime | None = None


class QueueItemError(BaseModel):
    """Why an item failed: the exception type, its message and the traceback."""

    error_type: str
    error_message: str
    error_traceback: str | None = None


class QueueItemSummary(BaseModel):
    """A queue item without its session: what lists and events carry."""

    item_id: int
    queue_id: str
    batch_id: str
    session_id: str
    status: QueueItemStatus
    priority: int = Field(description="Higher runs first; equal priorities run in enqueue order")
    field_values: list[NodeFieldValue] | None = None
    error_type: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    worker_id: str | None = Field(
        default=None, description="The worker that runs the item now, or ran it last (None: never claimed)"
    )
    attempts: int = Field(
        default=0, description="How many times a worker claimed the item (1 for a first run; more after a retry)"
    )
    model_key: str | None = Field(default=None, description="The item's main model key, if its graph names one")


class QueueItem(QueueItemSummary):
    """A queue item with its session as enqueued (id, batch_id, graph) and the full error.

    What the session produced is not in here: results and node errors are stored per node
    (:class:`SessionNodeResult`, :class:`SessionNodeError`) and read page by page.
    """

    error_traceback: str | None = None
    session: dict[str, Any] = Field(description="The session as enqueued: id, batch_id and graph")


class SessionNodeResult(NamedTuple):
    """The output of one prepared node of a running session, as a store keeps it: one row per node that ran.

    A store appends these as the session runs (never rewriting one) and gives them back in ``seq`` order,
    which is all the engine needs to rebuild the session's state for a retry: replaying the outputs in the
    order they were produced prepares exactly the same nodes with the same ids (docs/queue.md, "Resuming").
    A node instance is identified by ``source_node_id`` and ``path``; a store keeps at most one row for each.
    (A named tuple: one is made per node run, on the runner's thread, and a tuple is the cheapest to make.)

    Fields: ``seq``, execution order within the item (0 for the first node that ran, then 1, 2, ... without
    gaps); ``node_id``, the prepared node's id (``<source node id>#<n>``); ``source_node_id``, the node of the
    submitted graph that this is an instance of; ``path``, the iteration path (indexes of the iterates the
    node sits under, outermost first: the order in which a source node's results are listed); ``output_json``,
    the node's output as JSON text (``{"type": <output type>, ...}``), stored and returned as given.
    """

    seq: int
    node_id: str
    source_node_id: str
    path: tuple[int, ...]
    output_json: str


@dataclass(frozen=True, slots=True)
class SessionNodeError:
    """Why one prepared node of a session failed (the session stops at its first node error)."""

    node_id: str
    source_node_id: str
    error_type: str
    message: str
    traceback: str
    field: str | None = None
    """The input field whose incoming value the node refused, for an input error."""


class EnqueueResult(BaseModel):
    """What enqueuing a batch did: the stored batch and the new item ids in execution order."""

    queue_id: str
    enqueued: int
    requested: int
    batch: BatchRecord
    priority: int
    item_ids: list[int]


class QueueCounts(BaseModel):
    """How many items of a queue are in each status."""

    queue_id: str
    pending: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    total: int = 0


class BatchStatus(QueueCounts):
    """The counts of one batch's items, with the batch's tags."""

    batch_id: str
    origin: str | None = None
    destination: str | None = None


class QueueItemPage(BaseModel):
    """One page of a queue's items, in execution order (priority, then enqueue order).

    Page on with ``next_cursor`` (stable while items are added) or with ``offset``.
    """

    items: list[QueueItemSummary]
    limit: int
    has_more: bool
    next_cursor: str | None = None
    offset: int | None = None
    total: int
