"""``/api/v1/queue/{queue_id}/...``: enqueue batches, read, cancel, clear and prune items, pause the processor."""

from typing import Annotated, Any, Literal

from invoke_sdk.session_queue import BatchStatus, EnqueueResult, QueueItem, QueueItemPage, QueueItemStatus
from invoke_sdk.storage import QueueItemNotFoundError, StorageError
from invoke_sdk.storage_base import StorageUnavailableError, StorageValueError
from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.response import Stream
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import from_json

from invoke_host.api.injected import Injected, ensure_available
from invoke_host.openapi_document import body_schema_operation
from invoke_host.queue import BatchError, EnqueueBatchBody, QueueService
from invoke_host.queue.item_view import (
    QueueItemView,
    SessionResultPage,
    item_view,
    item_view_json,
    result_page_json,
    stream_item_with_session,
)

_MAX_OFFSET = 2**63 - 1  # SQLite integers are 64-bit: a larger OFFSET would overflow the driver
# The cursors' shapes, in the document: a client (or a fuzzer) that keeps to them sends one the server can read.
# A cursor of the right shape that no listing gave out (out of range) is well formed but unusable: 422.
# Litestar leaves a falsy bound (ge=0) of an optional parameter out of the document; said again here.
_NOT_NEGATIVE = {"minimum": 0}
_QUEUE_CURSOR = r"^-?[0-9]{1,19}:[0-9]{1,19}$"
_RESULTS_CURSOR = r"^[0-9]{1,19}$"

__all__ = [
    "CancelByBatchIdsBody",
    "CancelResult",
    "DeleteResult",
    "ProcessorStatus",
    "QueueController",
    "QueueStatus",
    "SessionQueueAndProcessorStatus",
]

_ENQUEUE_BODY: TypeAdapter[EnqueueBatchBody] = TypeAdapter(EnqueueBatchBody)


class CancelByBatchIdsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_ids: list[str] = Field(min_length=1, description="The batches whose pending and running items to cancel")


class CancelResult(BaseModel):
    canceled: int = Field(description="How many items were canceled")
    item_ids: list[int]


class DeleteResult(BaseModel):
    deleted: int = Field(description="How many items were deleted")


class ProcessorStatus(BaseModel):
    is_started: bool = Field(description="False while the queue is paused (for every worker, until resumed)")
    is_processing: bool = Field(description="Whether an item of the queue is running now, on any worker")


class QueueStatus(BaseModel):
    queue_id: str
    item_id: int | None = Field(default=None, description="The running item, if any")
    batch_id: str | None = None
    session_id: str | None = None
    pending: int
    in_progress: int
    completed: int
    failed: int
    canceled: int
    total: int


class SessionQueueAndProcessorStatus(BaseModel):
    queue: QueueStatus
    processor: ProcessorStatus


async def _processor_status(queue: QueueService, queue_id: str, running: bool | None = None) -> ProcessorStatus:
    if running is None:
        running = await queue.current(queue_id) is not None
    return ProcessorStatus(is_started=not await queue.is_paused(queue_id), is_processing=running)


def _validation_detail(exc: ValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors = [
        {"loc": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in exc.errors(include_url=False)[:20]
    ]
    if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
        return 400, f"the request body is not valid JSON: {errors[0]['message']}", errors
    first = errors[0]
    return 422, f"the batch is invalid at {first['loc']}: {first['message']}", errors


def _read_enqueue_body(raw: bytes) -> EnqueueBatchBody:
    """The body parsed by pydantic's own JSON parser, then validated as Python objects (strict, as the model is).

    The same parser as ``validate_json`` (NaN, big integers, strings alike), but validating a 1,000-node graph's
    ``dict[str, Any]`` from JSON took 4-5x the time of parsing, then validating the objects (8 ms against 1.7 ms;
    issue #11). A body either step refuses goes through ``validate_json`` again, so a refusal says exactly what
    it said before (a few messages differ between the modes: "a valid dictionary" against "an object").
    """
    try:
        return _ENQUEUE_BODY.validate_python(from_json(raw), strict=True)
    except ValueError:  # not JSON (from_json), or not a batch (ValidationError is a ValueError)
        return _ENQUEUE_BODY.validate_json(raw)


class QueueController(Controller):
    path = "/queue/{queue_id:str}"
    tags = ["queue"]

    @post(
        "/enqueue_batch",
        status_code=201,
        summary="Enqueue a batch: one queue item per session it expands to",
        operation_class=body_schema_operation("EnqueueBatchBody", "A batch (graph, data, runs) and whether to prepend"),
    )
    async def enqueue_batch(
        self, request: Request[Any, Any, Any], queue: Injected[QueueService], queue_id: FromPath[str]
    ) -> EnqueueResult:
        ensure_available(queue)  # a server without a queue says so before judging the body
        # Read raw and validated here: the graph's nodes are a union built at the freeze.
        raw = await request.body()
        try:
            body = _read_enqueue_body(raw)
        except ValidationError as exc:
            status, message, errors = _validation_detail(exc)
            raise HTTPException(status_code=status, detail=message, extra={"errors": errors}) from None
        try:
            return await queue.enqueue_batch(queue_id, body.batch, prepend=body.prepend)
        except BatchError as exc:
            raise HTTPException(status_code=exc.status_code, detail=exc.message, extra={"errors": exc.errors}) from None
        except (StorageUnavailableError, StorageValueError):
            raise  # 503 / 400 (api.storage_errors), not a conflict
        except StorageError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None

    @get("/list", summary="List items in execution order (cursor or offset/limit)")
    async def list_items(
        self,
        queue: Injected[QueueService],
        queue_id: FromPath[str],
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        cursor: Annotated[
            str | None, Parameter(pattern=_QUEUE_CURSOR, description="next_cursor from the previous page")
        ] = None,
        offset: Annotated[int | None, Parameter(ge=0, le=_MAX_OFFSET, schema_extra=_NOT_NEGATIVE)] = None,
        status: FromQuery[QueueItemStatus | None] = None,
    ) -> QueueItemPage:
        ensure_available(queue)
        if cursor is not None and offset is not None:
            raise HTTPException(status_code=422, detail="give either cursor or offset, not both")
        try:
            return await queue.list_items(queue_id, limit=limit, cursor=cursor, offset=offset, status=status)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None

    async def _item(self, queue: Injected[QueueService], queue_id: str, item_id: int) -> QueueItem:
        item = await queue.get(item_id)
        if item is None or item.queue_id != queue_id:
            raise NotFoundException(detail=f"queue {queue_id!r} has no item {item_id}")
        return item

    @get("/i/{item_id:int}", summary="One queue item: its session as enqueued, result counts and node errors")
    async def get_item(
        self,
        queue: Injected[QueueService],
        queue_id: FromPath[str],
        item_id: FromPath[int],
        include: Annotated[
            Literal["session"] | None,
            Parameter(description="'session': the whole session in 'session', every result included (streamed)"),
        ] = None,
    ) -> Response[QueueItemView]:
        view = await item_view(queue, await self._item(queue, queue_id, item_id))
        if include == "session":
            # Streamed page by page; the annotation above is what the OpenAPI document describes.
            return Stream(stream_item_with_session(queue, view), media_type="application/json")  # type: ignore[return-value]
        # Encoded here (item_view.py); the annotation above is what the OpenAPI document describes.
        return Response(content=item_view_json(view), media_type="application/json")  # type: ignore[arg-type]

    @get("/i/{item_id:int}/results", summary="A page of one item's node results, all or one node's")
    async def get_item_results(
        self,
        queue: Injected[QueueService],
        queue_id: FromPath[str],
        item_id: FromPath[int],
        node_id: Annotated[
            str | None, Parameter(description="A node of the item's graph: its instances' results in iteration order")
        ] = None,
        cursor: Annotated[
            str | None, Parameter(pattern=_RESULTS_CURSOR, description="next_cursor from the previous page")
        ] = None,
        limit: Annotated[
            int | None, Parameter(ge=1, description="At most max_results_page_size (default 1,000); default 100")
        ] = None,
    ) -> Response[SessionResultPage]:
        ensure_available(queue)  # a server without a queue says so before judging the parameters
        most = queue.max_results_page_size
        if limit is None:
            limit = min(100, most)
        elif limit > most:
            raise HTTPException(
                status_code=422,
                detail=f"limit {limit} is over max_results_page_size (INVOKE_HOST_MAX_RESULTS_PAGE_SIZE={most})",
            )
        after: int | None = None
        if cursor is not None:
            # Its shape is checked by the parameter's pattern; a number past any stored row's is still none we gave.
            after = int(cursor)
            if after > _MAX_OFFSET:
                raise HTTPException(status_code=422, detail=f"cursor {cursor[:40]!r} is not one this server gave "
                                                            "out (pass next_cursor of the previous page)")
        summary = await queue.get_summary(item_id)
        if summary is None or summary.queue_id != queue_id:
            raise NotFoundException(detail=f"queue {queue_id!r} has no item {item_id}")
        rows = await queue.list_results(item_id, source_node_id=node_id, after_seq=after, limit=limit + 1)
        if not rows and node_id is not None and cursor is None:
            item = await queue.get(item_id)
            if item is not None and node_id not in item.session.get("graph", {}).get("nodes", {}):
                raise NotFoundException(detail=f"the graph of item {item_id} has no node {node_id!r}")
        # Built from the stored output texts (item_view.py); the annotation is the schema it follows.
        return Response(content=result_page_json(rows, limit), media_type="application/json")  # type: ignore[arg-type]

    @put("/i/{item_id:int}/cancel", summary="Cancel one item (a running one stops at its next node boundary)")
    async def cancel_item(
        self, queue: Injected[QueueService], queue_id: FromPath[str], item_id: FromPath[int]
    ) -> QueueItem:
        await self._item(queue, queue_id, item_id)
        try:
            return await queue.cancel(item_id)
        except QueueItemNotFoundError:
            raise NotFoundException(detail=f"queue {queue_id!r} has no item {item_id}") from None

    @put("/cancel_by_batch_ids", summary="Cancel the pending and running items of some batches")
    async def cancel_by_batch_ids(
        self, queue: Injected[QueueService], queue_id: FromPath[str], data: JSONBody[CancelByBatchIdsBody]
    ) -> CancelResult:
        ids = await queue.cancel_by_batch_ids(queue_id, data.batch_ids)
        return CancelResult(canceled=len(ids), item_ids=ids)

    @put("/cancel_all_except_current", summary="Cancel every pending item; the running one goes on")
    async def cancel_all_except_current(self, queue: Injected[QueueService], queue_id: FromPath[str]) -> CancelResult:
        ids = await queue.cancel_all_except_current(queue_id)
        return CancelResult(canceled=len(ids), item_ids=ids)

    @put("/clear", summary="Stop the running item and delete every item of the queue")
    async def clear(self, queue: Injected[QueueService], queue_id: FromPath[str]) -> DeleteResult:
        return DeleteResult(deleted=await queue.clear(queue_id))

    @put("/prune", summary="Delete completed, failed and canceled items")
    async def prune(self, queue: Injected[QueueService], queue_id: FromPath[str]) -> DeleteResult:
        return DeleteResult(deleted=await queue.prune(queue_id))

    @get("/status", summary="Counts by status, the running item, and the processor")
    async def status(self, queue: Injected[QueueService], queue_id: FromPath[str]) -> SessionQueueAndProcessorStatus:
        counts = await queue.counts(queue_id)
        current = await queue.current(queue_id)
        return SessionQueueAndProcessorStatus(
            queue=QueueStatus(
                **counts.model_dump(),
                item_id=current.item_id if current else None,
                batch_id=current.batch_id if current else None,
                session_id=current.session_id if current else None,
            ),
            processor=await _processor_status(queue, queue_id, running=current is not None),
        )

    @get("/b/{batch_id:str}/status", summary="Counts by status of one batch")
    async def batch_status(
        self, queue: Injected[QueueService], queue_id: FromPath[str], batch_id: FromPath[str]
    ) -> BatchStatus:
        found = await queue.batch_status(queue_id, batch_id)
        if found is None:
            raise NotFoundException(detail=f"queue {queue_id!r} has no batch {batch_id!r}")
        return found

    @put("/processor/pause", summary="Take no new items (the running one finishes)")
    async def pause(self, queue: Injected[QueueService], queue_id: FromPath[str]) -> ProcessorStatus:
        await queue.pause(queue_id)
        return await _processor_status(queue, queue_id)

    @put("/processor/resume", summary="Take items again")
    async def resume(self, queue: Injected[QueueService], queue_id: FromPath[str]) -> ProcessorStatus:
        await queue.resume(queue_id)
        return await _processor_status(queue, queue_id)
