"""What the API answers about one queue item: the item with counts of its results, pages of results, the session.

Results are stored one row per node with their output as JSON text (``session_progress.py``). The answers
are built from that text as it is: an output is never decoded, validated and encoded again on its way out,
so a page costs what its rows weigh, and the whole session of a 100,000-item run is streamed page by page
instead of being held in memory as objects. The pydantic models here describe the answers in the OpenAPI
document; only the small parts (the item itself, its errors) go through them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from invoke_sdk.session_queue import QueueItem, SessionNodeError, SessionNodeResult
from pydantic import BaseModel, Field

from invoke_host.queue.service import QueueService

__all__ = [
    "QueueItemResults",
    "QueueItemView",
    "SessionNodeErrorView",
    "SessionResultPage",
    "SessionResultView",
    "item_view",
    "item_view_json",
    "result_page_json",
    "stream_item_with_session",
]

# Rows read per query while the whole session is streamed.
_STREAM_PAGE = 5_000


class QueueItemResults(BaseModel):
    """How many results the item's session has stored, in all and per node of the submitted graph."""

    count: int
    by_node: dict[str, int] = Field(description="Source node id -> how many of its instances produced a result")


class SessionNodeErrorView(BaseModel):
    """Why one prepared node failed."""

    node_id: str
    source_node_id: str
    error_type: str
    message: str
    traceback: str
    field: str | None = None


class QueueItemView(QueueItem):
    """A queue item, its session as enqueued, how many results it has stored, and its node errors.

    The results themselves are read from ``GET /i/{item_id}/results`` (paged, per node if asked), or all at
    once with the whole session (``GET /i/{item_id}?include=session``).
    """

    results: QueueItemResults
    errors: list[SessionNodeErrorView] = Field(description="Node errors (the session stops at the first)")


class SessionResultView(BaseModel):
    """The output of one prepared node."""

    seq: int = Field(description="Execution order within the session (0 for the first node that ran)")
    node_id: str = Field(description="The prepared node's id")
    source_node_id: str = Field(description="The node of the submitted graph it is an instance of")
    path: list[int] = Field(description="Its iteration path: the iterate indexes it sits under, outermost first")
    output: dict[str, Any] = Field(description="The node's output, with its output type in 'type'")


class SessionResultPage(BaseModel):
    """One page of an item's results: all in execution order, or one node's in iteration order."""

    items: list[SessionResultView]
    limit: int
    has_more: bool
    next_cursor: str | None = Field(default=None, description="Pass as cursor to read the next page")


def _error_view(error: SessionNodeError) -> SessionNodeErrorView:
    return SessionNodeErrorView(node_id=error.node_id, source_node_id=error.source_node_id,
                                error_type=error.error_type, message=error.message, traceback=error.traceback,
                                field=error.field)


async def item_view(queue: QueueService, item: QueueItem) -> QueueItemView:
    """The item with its result counts and errors (two small queries, at once; no result is read).

    The session stays as the item has it: the stored text, if it was not decoded (see ``session_json``)."""
    counts, errors = await asyncio.gather(queue.result_counts(item.item_id), queue.list_errors(item.item_id))
    fields = {name: value for name, value in item.__dict__.items() if name != "session"}
    view = QueueItemView.model_construct(
        **fields, results=QueueItemResults(count=sum(counts.values()), by_node=counts),
        errors=[_error_view(e) for e in errors],
    )
    view.take_session_of(item)
    return view


# Tokens json.dumps writes for non-finite floats, which are not JSON: a session text holding one of these words
# anywhere (in a string too, to keep the check a substring search) is decoded and encoded again instead.
_NOT_JSON = ("NaN", "Infinity")


def _session_json(view: QueueItem) -> bytes:
    """The session as JSON for an answer: the stored text as it is, unless it may hold a non-finite number."""
    if not view.session_decoded:
        text = view.session_json
        if not any(word in text for word in _NOT_JSON):
            return text.encode()
    # msgspec writes non-finite numbers as null, as the answers always did.
    return msgspec.json.encode(view.session)


def item_view_json(view: QueueItemView) -> bytes:
    """The item view as JSON: the small fields through the model, the session (a whole graph) apart.

    The session is the stored text spliced in as it is (decoding a 1,000-node session, freeing it and encoding it
    again was half of this answer's CPU time, issue #11); the same JSON as ``model_dump(mode="json")``.
    """
    head = view.model_dump_json(exclude={"session"})
    return b"".join((head[:-1].encode(), b',"session":' if len(head) > 2 else b'"session":', _session_json(view),
                     b"}"))


def _row_json(row: SessionNodeResult) -> str:
    # The output is stored JSON text, written by the engine's own encoder: spliced in, not decoded.
    return (f'{{"seq":{row.seq},"node_id":{json.dumps(row.node_id)},'
            f'"source_node_id":{json.dumps(row.source_node_id)},"path":{json.dumps(list(row.path))},'
            f'"output":{row.output_json}}}')


def result_page_json(rows: list[SessionNodeResult], limit: int) -> bytes:
    """A :class:`SessionResultPage` as JSON, from ``limit + 1`` rows read (the extra one says there is more)."""
    has_more = len(rows) > limit
    shown = rows[:limit]
    cursor = json.dumps(str(shown[-1].seq)) if has_more and shown else "null"
    body = ",".join(_row_json(r) for r in shown)
    return (f'{{"items":[{body}],"limit":{limit},"has_more":{"true" if has_more else "false"},'
            f'"next_cursor":{cursor}}}').encode()


async def stream_item_with_session(queue: QueueService, view: QueueItemView) -> AsyncIterator[bytes]:
    """The item view with ``session`` holding the whole session, as JSON in pieces (a page of rows each).

    ``session`` = ``{"id", "batch_id", "graph", "validated_with"`` (as enqueued) ``, "results": {prepared id: output},
    "executed_history": [prepared ids in execution order], "source_results": {source id: [prepared ids in
    iteration order]}, "errors": {prepared id: error}, "source_errors": {source id: [prepared ids]}}``.
    """
    head = view.model_dump_json(exclude={"session"})
    enqueued = _session_json(view).decode().rstrip()[:-1].rstrip()  # the object without its closing brace
    yield f'{head[:-1]},"session":{enqueued}{"," if enqueued != "{" else ""}"results":{{'.encode()
    history: list[str] = []
    by_source: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    after: int | None = None
    first = True
    while True:
        rows = await queue.list_results(view.item_id, after_seq=after, limit=_STREAM_PAGE)
        if not rows:
            break
        parts = []
        for row in rows:
            history.append(row.node_id)
            by_source.setdefault(row.source_node_id, []).append((row.path, row.node_id))
            parts.append(f"{json.dumps(row.node_id)}:{row.output_json}")
        yield (("" if first else ",") + ",".join(parts)).encode()
        first = False
        if len(rows) < _STREAM_PAGE:
            break
        after = rows[-1].seq
    source_results = {source: [node_id for _, node_id in sorted(entries)] for source, entries in by_source.items()}
    errors = {e.node_id: e.model_dump() for e in view.errors}
    source_errors: dict[str, list[str]] = {}
    for e in view.errors:
        source_errors.setdefault(e.source_node_id, []).append(e.node_id)
    tail = msgspec.json.encode({"executed_history": history, "source_results": source_results, "errors": errors,
                                "source_errors": source_errors}).decode()
    yield f"}},{tail[1:]}}}".encode()
