"""The records a session-queue store keeps and returns: batches, queue items, counts and pages.

These are plain pydantic models shared by the host, every storage backend and the events, so a
backend written by a third party returns exactly what the host and the API expect. The two records
of session progress (:class:`SessionNodeResult`, :class:`SessionNodeError`) are a named tuple and a
frozen dataclass instead: a session writes one per node it runs, 100,000 and more for a large iterate,
and they carry their output as JSON text that nobody between the runner and the database looks into.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, Field, PrivateAttr, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

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


def _leaves_out_session(exclude: Any) -> bool:
    """Whether a dump's ``exclude`` leaves the whole session out (a set of field names, or a dict naming it True)."""
    if isinstance(exclude, dict):
        return exclude.get("session") is True
    return isinstance(exclude, set | frozenset) and "session" in exclude


class QueueItem(QueueItemSummary):
    """A queue item with its session as enqueued (id, batch_id, graph) and the full error.

    What the session produced is not in here: results and node errors are stored per node
    (:class:`SessionNodeResult`, :class:`SessionNodeError`) and read page by page.

    A store builds it with :meth:`from_stored`, handing over the session as the JSON text it holds: ``session`` is
    decoded from that text the first time it is read (or the item is dumped, compared, copied), and
    :attr:`session_json` gives the text itself. A claim whose graph the host still holds, and the API's view of
    an item, need none of the session's objects: decoding a 1,000-node session and freeing it again cost about
    as much as the rest of a ``GET`` (issue #11). ``QueueItem(session={...})`` works as before.
    """

    error_traceback: str | None = None
    session: dict[str, Any] = Field(description="The session as enqueued: id, batch_id and graph")
    _session_json: str | None = PrivateAttr(default=None)
    """The stored text ``session`` is (or will be) decoded from; None for an item built from a dict."""

    @classmethod
    def from_stored(cls, session_json: str, **fields: Any) -> QueueItem:
        """The item with ``fields`` validated as usual and its session left as ``session_json`` until read."""
        item = cls.model_validate({**fields, "session": {}})
        del item.__dict__["session"]
        item._session_json = session_json
        return item

    @property
    def session_json(self) -> str:
        """The session as JSON text: as the store holds it, or (an item built from a dict) encoded now."""
        text = self._session_json
        return text if text is not None else json.dumps(self.session, separators=(",", ":"))

    @property
    def session_decoded(self) -> bool:
        """Whether ``session`` exists as objects (read already, or given as a dict)."""
        return "session" in self.__dict__

    def take_session_of(self, other: QueueItem) -> None:
        """Give this item (built without a session, e.g. by ``model_construct``) the session of ``other``: its
        objects if it has them, else its stored text, still not decoded."""
        if other.session_decoded:
            self.__dict__["session"] = other.session
        else:
            self.__dict__.pop("session", None)
            self._session_json = other._session_json

    def _decode_session(self) -> None:
        if "session" not in self.__dict__:
            self.__dict__["session"] = json.loads(self._session_json or "{}")

    if not TYPE_CHECKING:
        # Only an item from from_stored lacks "session" in its __dict__; pydantic's own lookup raises for the rest.
        def __getattr__(self, name: str) -> Any:
            if name == "session" and self.__pydantic_private__ is not None \
                    and self.__pydantic_private__.get("_session_json") is not None:
                self._decode_session()
                return self.__dict__["session"]
            return super().__getattr__(name)

    # Whatever reads the fields' values straight from __dict__ sees the session decoded first, unless it leaves the
    # session out (the item view dumps the other fields, then splices the text). No return annotation on the
    # serializer: with one, the model's serialization schema would become that type's.
    @model_serializer(mode="wrap")
    def _serialize_decoded(  # type: ignore[no-untyped-def]
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ):
        if not _leaves_out_session(info.exclude):
            self._decode_session()
        return handler(self)

    def __iter__(self) -> Any:
        self._decode_session()
        return super().__iter__()

    def __eq__(self, other: object) -> bool:
        self._decode_session()
        if isinstance(other, QueueItem):
            other._decode_session()
            if type(other) is type(self):
                # By value: the text a session was decoded from (a private attribute) is not part of the item.
                return self.__dict__ == other.__dict__ and self.__pydantic_extra__ == other.__pydantic_extra__
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # as BaseModel's: defining __eq__ would otherwise drop it anyway

    def __repr_args__(self) -> Any:
        self._decode_session()
        return super().__repr_args__()

    def __copy__(self) -> QueueItem:
        self._decode_session()
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> QueueItem:
        self._decode_session()
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        self._decode_session()
        return super().__getstate__()


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
